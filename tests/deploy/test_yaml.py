"""Every YAML file of the repository passes ``yamllint --strict`` with .yamllint.yaml.

yamllint finds the files itself (``yamllint .`` from the repository root), skipping
the directories the config ignores; the test also checks that it lints every YAML
file a walk of the repository finds, so nothing is skipped by accident.
"""

import os
import subprocess
from pathlib import Path

import pytest

from tests.deploy.common import ROOT, tool

CONFIG = ROOT / ".yamllint.yaml"

# Directories that hold no project YAML (the config's `ignore` lists the same).
IGNORED_DIRS = {
    ".git",
    ".venv",
    "venv",
    ".data",
    "node_modules",
    "build",
    "dist",
    ".mypy_cache",
    ".ruff_cache",
    ".pytest_cache",
    "htmlcov",
}
# Files that must be linted whenever they exist.
EXPECTED = ["docker-compose.yml", ".yamllint.yaml"]


def yamllint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("yamllint"), "-c", str(CONFIG), *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def yaml_files_in_repository() -> set[Path]:
    found = set()
    for directory, subdirectories, files in os.walk(ROOT):
        subdirectories[:] = [
            d for d in subdirectories if d not in IGNORED_DIRS and not d.endswith(".egg-info")
        ]
        for name in files:
            if name.endswith((".yml", ".yaml")):
                found.add((Path(directory) / name).relative_to(ROOT))
    return found


def test_yamllint_config_exists() -> None:
    assert CONFIG.is_file(), ".yamllint.yaml is missing at the repository root"


def test_yamllint_lints_every_yaml_file_of_the_repository() -> None:
    result = yamllint("--list-files", ".")
    assert result.returncode == 0, result.stderr
    listed = {Path(line) for line in result.stdout.splitlines() if line.strip()}
    missing = sorted(str(p) for p in yaml_files_in_repository() - listed)
    assert not missing, f"yamllint skips these YAML files: {missing}"
    for name in EXPECTED:
        assert Path(name) in listed, f"yamllint does not lint {name}"
    for ignored in (".venv", ".data", "node_modules"):
        assert not [p for p in listed if p.parts[0] == ignored], f"yamllint lints {ignored}/"


@pytest.mark.parametrize("area", ["docker-compose.yml", "deploy", ".github", "docs"])
def test_yaml_files_pass_yamllint_strict(area: str) -> None:
    if not (ROOT / area).exists():
        pytest.skip(f"{area} does not exist")
    result = yamllint("--strict", "--format", "parsable", area)
    assert result.returncode == 0, (
        f"yamllint --strict -c .yamllint.yaml {area} reports problems:\n"
        f"{result.stdout}{result.stderr}"
    )


def test_all_yaml_passes_yamllint_strict() -> None:
    result = yamllint("--strict", "--format", "parsable", ".")
    assert result.returncode == 0, (
        f"yamllint --strict -c .yamllint.yaml . reports problems:\n{result.stdout}{result.stderr}"
    )
