"""Readiness of a process's dependencies, shared by the API and the worker.

One check serves ``/ready`` (for orchestrators) and each ``/metrics`` scrape (for
``persona_dependency_up``), so an alert and a failing probe always agree on why.
"""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from faststream.kafka import KafkaBroker
from prometheus_client import Gauge
from pymongo import AsyncMongoClient

from persona_infra.mongo import Document, ping

READY_TIMEOUT_S = 2.0
OK = "ok"


async def _check(probe: Awaitable[object], timeout_s: float) -> str:
    try:
        async with asyncio.timeout(timeout_s):
            result = await probe
    except Exception as exc:  # any failure means "not ready"; the type is enough to act on
        return f"unreachable ({type(exc).__name__})"
    return OK if result is not False else "unreachable"


@dataclass(frozen=True, slots=True)
class DependencyProbe:
    mongo: AsyncMongoClient[Document]
    broker: KafkaBroker
    up: Gauge
    timeout_s: float = READY_TIMEOUT_S

    async def check(self) -> dict[str, str]:
        """``{"mongodb": "ok" | "unreachable (...)", "kafka": ...}``; sets the gauge."""
        mongo, kafka = await asyncio.gather(
            _check(ping(self.mongo), self.timeout_s),
            _check(self.broker.ping(timeout=self.timeout_s), self.timeout_s),
        )
        checks = {"mongodb": mongo, "kafka": kafka}
        for dependency, state in checks.items():
            self.up.labels(dependency).set(1 if state == OK else 0)
        return checks


def all_ok(checks: dict[str, str]) -> bool:
    return all(state == OK for state in checks.values())
