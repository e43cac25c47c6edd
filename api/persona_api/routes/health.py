"""Service endpoints: ``/``, liveness, readiness and Prometheus metrics."""

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from persona_api import __version__
from persona_api.deps import AppContextDep
from persona_api.schemas import Readiness, ServiceInfo
from persona_infra.health import all_ok

router = APIRouter(tags=["service"])


@router.get("/", summary="Service information")
async def root(context: AppContextDep) -> ServiceInfo:
    settings = context.settings
    return ServiceInfo(
        service=settings.service_name,
        version=__version__,
        generator=settings.active_generator.value,
        model=settings.active_model,
        planner=settings.planner.value,
        links={
            "personas": "/v1/persona",
            "plans": "/v1/plans",
            "search": "/v1/persona/search?q=",
            "stats": "/v1/persona/stats",
            "console": "/ui",
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


@router.get(
    "/ready",
    summary="Readiness: MongoDB and Kafka are reachable",
    responses={503: {"model": Readiness, "description": "A dependency is unreachable."}},
)
async def ready(context: AppContextDep) -> JSONResponse:
    checks = await context.dependencies.check()
    healthy = all_ok(checks)
    body = Readiness(status="ready" if healthy else "unavailable", checks=checks)
    return JSONResponse(body.model_dump(), status_code=200 if healthy else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(context: AppContextDep) -> Response:
    await context.dependencies.check()
    return Response(generate_latest(context.registry), media_type=CONTENT_TYPE_LATEST)
