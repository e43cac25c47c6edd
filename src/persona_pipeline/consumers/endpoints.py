"""The worker's HTTP endpoints: ``/health``, ``/ready`` and ``/metrics``.

Served by FastStream's ASGI wrapper on ``WORKER_PORT`` so that orchestrators can
probe the worker and Prometheus can scrape it like the API. Readiness checks the
same dependencies as the API's (``DependencyProbe``); a scrape refreshes the
dependency gauges and the worker's own view of its consumer lag first.
"""

import json
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from faststream.asgi import AsgiResponse, get
from faststream.asgi.handlers import GetHandler
from faststream.asgi.types import Scope
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Gauge, generate_latest

from persona_pipeline.core.health import DependencyProbe, all_ok

JSON = {"content-type": "application/json"}


class HasConsumer(Protocol):
    """A FastStream Kafka subscriber: ``consumer`` is its aiokafka consumer once started."""

    consumer: Any


async def observe_lag(subscriber: HasConsumer, gauge: Gauge) -> None:
    """High watermark minus fetch position for each partition this worker holds.

    Partitions handed to another worker lose their series; partitions not fetched
    yet (no high watermark known) have none until they are."""
    gauge.clear()
    consumer = subscriber.consumer
    if consumer is None:
        return
    for partition in consumer.assignment():
        highwater = consumer.highwater(partition)
        if highwater is None:
            continue
        try:
            position = await consumer.position(partition)
        except Exception:  # a partition revoked between the two calls: no figure
            continue
        gauge.labels(partition.topic, str(partition.partition)).set(max(highwater - position, 0))


@get
async def liveness(scope: Scope) -> AsgiResponse:
    return AsgiResponse(b'{"status":"ok"}', status_code=200, headers=JSON)


def readiness(probe: DependencyProbe) -> GetHandler:
    @get
    async def ready(scope: Scope) -> AsgiResponse:
        checks = await probe.check()
        healthy = all_ok(checks)
        body = {"status": "ready" if healthy else "unavailable", "checks": checks}
        return AsgiResponse(json.dumps(body).encode(), 200 if healthy else 503, JSON)

    return ready


def metrics(
    registry: CollectorRegistry, probe: DependencyProbe, refresh: Callable[[], Awaitable[None]]
) -> GetHandler:
    @get
    async def scrape(scope: Scope) -> AsgiResponse:
        await probe.check()
        await refresh()
        return AsgiResponse(generate_latest(registry), 200, {"content-type": CONTENT_TYPE_LATEST})

    return scrape
