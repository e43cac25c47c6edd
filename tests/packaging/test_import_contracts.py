"""The arrows between the parts hold: the import contracts in pyproject.toml are kept,
and a part that imports across an arrow breaks them."""

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support.workspace import ROOT, workspace_parts

LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(*args: str, pythonpath: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    if pythonpath is not None:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_import_contract_is_kept() -> None:
    result = _lint()
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_the_contracts_cover_every_part() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    roots = set(config["tool"]["importlinter"]["root_packages"])
    assert {part.package for part in workspace_parts()} <= roots


def test_contracts_that_import_the_worker_break_the_contract(tmp_path: Path) -> None:
    contracts = next(p for p in workspace_parts() if p.package == "persona_contracts")
    shadow = tmp_path / contracts.package
    shutil.copytree(contracts.path / contracts.package, shadow)
    with (shadow / "events.py").open("a", encoding="utf-8") as events:
        events.write("\nimport persona_worker.handler  # noqa: E402, F401\n")
    result = _lint("--contract", "contracts-pure", pythonpath=tmp_path)
    assert result.returncode != 0, result.stdout
    assert "persona_contracts.events -> persona_worker.handler" in result.stdout
