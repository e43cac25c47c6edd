"""Each part installs alone from its folder and brings only what it needs.

One wheel per part is built from its folder; each part is then installed from those
wheels (the parts it depends on) and the package index (everything else) into a
fresh virtual environment of its own, where every one of its modules must import.
What else landed in that environment is the part's dependency set, and what must
not be in it is what a user of that part was promised not to get.
"""

import json
import subprocess
import sys
import venv
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.workspace import Part, workspace_parts

PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
# What every import of a module proves about its part's declared dependencies.
IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
package = importlib.import_module(sys.argv[1])
for module in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
    importlib.import_module(module.name)
"""
PYDANTIC_ONLY = {
    "persona-pipeline-contracts",
    "pydantic",
    "pydantic-core",
    "annotated-types",
    "typing-extensions",
    "typing-inspection",
}
SERVER_SIDE = {"openai", "fastapi", "pymongo", "uvicorn", "starlette", "faker"}
# What a part must not bring, by distribution: the promises of ARCHITECTURE.md.
MUST_NOT_BRING: dict[str, set[str]] = {
    "persona-pipeline-infra": {"openai", "fastapi", "faker"},
    "persona-pipeline-llm": SERVER_SIDE - {"openai"},
    "persona-pipeline-audience": SERVER_SIDE - {"openai"},
    "persona-pipeline-producers": SERVER_SIDE
    | {"persona-pipeline-worker", "persona-pipeline-api", "persona-pipeline-llm"},
    "persona-pipeline-worker": {"fastapi", "persona-pipeline-api", "persona-pipeline-producers"},
    "persona-pipeline-api": {"faker", "persona-pipeline-worker"},
}


# Installed with every extra, so that every module can import; the light install a
# publisher gets (no extra) is the one persona-pipeline-producers depends on.
WITH_EXTRAS = {"persona-pipeline-infra": "persona-pipeline-infra[mongo,service]"}


@dataclass(frozen=True, slots=True)
class Installed:
    part: Part
    python: Path
    distributions: frozenset[str]


def _normalized(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _install(part: Part, wheels: Path, root: Path) -> Installed:
    environment = root / part.folder
    venv.create(environment, with_pip=False)
    python = environment / "bin" / "python"
    subprocess.run(
        [
            *PIP,
            "--quiet",
            "--python",
            str(python),
            "install",
            "--find-links",
            str(wheels),
            WITH_EXTRAS.get(part.distribution, part.distribution),
        ],
        check=True,
        timeout=600,
    )
    listed = subprocess.run(
        [*PIP, "--python", str(python), "list", "--format", "json"],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    )
    names = frozenset(_normalized(d["name"]) for d in json.loads(listed.stdout))
    return Installed(part, python, names)


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Installed]:
    root = tmp_path_factory.mktemp("parts")
    wheels = root / "wheels"
    parts = workspace_parts()
    subprocess.run(
        [
            *PIP,
            "--quiet",
            "wheel",
            "--no-deps",
            "--wheel-dir",
            str(wheels),
            *(str(p.path) for p in parts),
        ],
        check=True,
        timeout=600,
    )
    with ThreadPoolExecutor(max_workers=3) as pool:
        done = list(pool.map(lambda part: _install(part, wheels, root), parts))
    return {i.part.distribution: i for i in done}


PARTS = [part.distribution for part in workspace_parts()]


def test_the_contracts_bring_pydantic_and_nothing_else(installed: dict[str, Installed]) -> None:
    assert installed["persona-pipeline-contracts"].distributions == PYDANTIC_ONLY


@pytest.mark.parametrize("distribution", sorted(MUST_NOT_BRING))
def test_a_part_brings_nothing_its_users_were_promised_it_would_not(
    installed: dict[str, Installed], distribution: str
) -> None:
    brought = installed[distribution].distributions & MUST_NOT_BRING[distribution]
    assert not brought, f"installing {distribution} alone also installs {sorted(brought)}"


@pytest.mark.parametrize("distribution", PARTS)
def test_every_module_of_a_part_imports_with_only_its_own_dependencies(
    installed: dict[str, Installed], distribution: str
) -> None:
    part = installed[distribution]
    result = subprocess.run(
        [str(part.python), "-c", IMPORT_EVERY_MODULE, part.part.package],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, (
        f"{distribution} installed alone cannot import all of {part.part.package}: "
        f"declare what it imports in {part.part.folder}/pyproject.toml\n{result.stderr[-2000:]}"
    )
