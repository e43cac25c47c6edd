"""What the deployment checks share: where things are, and the names they agree on."""

import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Tools installed by the test extra (hadolint, docker-compose, yamllint, ...).
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    """The path of a tool from the test extra; fails the test with the fix if it is missing."""
    path = BIN / name
    assert path.exists(), f"{path} is missing: run `make install-test`"
    return str(path)


# The alerts deploy/prometheus/rules defines and docs/OPERATIONS.md has a runbook for.
EXPECTED_ALERTS = frozenset(
    {
        "PersonaApiHighErrorRate",
        "PersonaApiHighLatency",
        "PersonaDeadLettersGrowing",
        "PersonaConsumerLagGrowing",
        "PersonaNoPersonasStored",
        "PersonaDependencyDown",
        "PersonaHighMemory",
        "PersonaTargetDown",
        "PersonaLlmFailureRate",
    }
)

_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600, "m": 60, "s": 1, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def duration_seconds(text: str) -> float:
    """A Go-style duration as Docker and compose take it (``30s``, ``1m30s``) in seconds."""
    parts = _DURATION.findall(text)
    assert parts, f"{text!r} is not a duration"
    assert "".join(n + u for n, u in parts) == text, f"{text!r} is not a duration"
    return sum(float(n) * _UNIT_SECONDS[u] for n, u in parts)
