"""The workspace's parts as the root pyproject.toml lists them, for the checks that every
part is installed, built, linted, type-checked and kept to its imports."""

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True, slots=True)
class Part:
    folder: str
    distribution: str
    package: str

    @property
    def path(self) -> Path:
        return ROOT / self.folder


def _project(folder: Path) -> dict[str, object]:
    return tomllib.loads((folder / "pyproject.toml").read_text(encoding="utf-8"))


@cache
def workspace_parts() -> tuple[Part, ...]:
    root = _project(ROOT)
    members: list[str] = root["tool"]["uv"]["workspace"]["members"]  # type: ignore[index]
    parts = []
    for folder in members:
        project = _project(ROOT / folder)
        packages = project["tool"]["hatch"]["build"]["targets"]["wheel"]["packages"]  # type: ignore[index]
        parts.append(Part(folder, project["project"]["name"], packages[0]))  # type: ignore[index]
    return tuple(parts)
