"""Service endpoints: ``/``, liveness, readiness and Prometheus metrics."""

import asyncio
from collections.abc import Awaitable

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from persona_pipeline import __version__
from persona_pipeline.api.deps import ServicesDep
from persona_pipeline.api.schemas import Readiness, ServiceInfo
from persona_pipeline.core.mongo import ping

router = APIRouter(tags=["service"])
READY_TIMEOUT_S = 2.0


@router.get("/", summary="Service information")
async def root(services: ServicesDep) -> ServiceInfo:
    settings = services.settings
    return ServiceInfo(
        service=settings.service_name,
        version=__version__,
        generator=settings.active_generator.value,
        model=settings.active_model,
        links={
            "personas": "/v1/persona",
            "search": "/v1/persona/search?q=",
            "stats": "/v1/persona/stats",
            "docs": "/docs",
            "openapi": "/openapi.json",
            "health": "/health",
            "ready": "/ready",
            "metrics": "/metrics",
        },
    )


@router.get("/health", summary="Liveness: the process is serving (no I/O)")
async def health() -> dict[str, str]:
    return {"status": "ok"}


async def _check(probe: Awaitable[object]) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_S):
            result = await probe
    except Exception as exc:  # any failure means "not ready"; the type is enough to act on
        return f"unreachable ({type(exc).__name__})"
    return "ok" if result is not False else "unreachable"


@router.get(
    "/ready",
    summary="Readiness: MongoDB and Kafka are reachable",
    responses={503: {"model": Readiness, "description": "A dependency is unreachable."}},
)
async def ready(services: ServicesDep) -> JSONResponse:
    mongo, kafka = await asyncio.gather(
        _check(ping(services.mongo)), _check(services.broker.ping(timeout=READY_TIMEOUT_S))
    )
    checks = {"mongodb": mongo, "kafka": kafka}
    healthy = all(v == "ok" for v in checks.values())
    body = Readiness(status="ready" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    return Response(generate_latest(request.app.state.registry), media_type=CONTENT_TYPE_LATEST)
