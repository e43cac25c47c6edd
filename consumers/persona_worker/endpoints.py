"""The worker's HTTP endpoints: ``/health``, ``/ready`` and ``/metrics``.

Served by FastStream's ASGI wrapper on ``WORKER_PORT`` so that orchestrators can
probe the worker and Prometheus can scrape it like the API. Readiness checks the
same dependencies as the API's (``DependencyProbe``) and whether the consumer is moving
(``ConsumerWatch``); a scrape refreshes the dependency gauges and the lag first.
"""

import json
from collections.abc import Awaitable, Callable, Mapping

from faststream.asgi import AsgiResponse, get
from faststream.asgi.handlers import GetHandler
from faststream.asgi.types import Scope
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from persona_infra.health import DependencyProbe, all_ok
from persona_worker.progress import ConsumerWatch

JSON = {"content-type": "application/json"}


@get
async def liveness(scope: Scope) -> AsgiResponse:
    return AsgiResponse(b'{"status":"ok"}', status_code=200, headers=JSON)


def readiness(probe: DependencyProbe, watches: Mapping[str, ConsumerWatch]) -> GetHandler:
    @get
    async def ready(scope: Scope) -> AsgiResponse:
        consumers = {name: await watch.check() for name, watch in watches.items()}
        checks = {**await probe.check(), **consumers}
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
