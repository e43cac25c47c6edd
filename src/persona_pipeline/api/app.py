"""The API's composition root: ``create_app`` builds the app and its lifespan.

The lifespan owns the process's MongoDB client and its own FastStream
``KafkaBroker`` (FastStream's FastAPI router integration is deprecated), so
every dependency is created once, started before the first request and closed
on shutdown.
"""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from loguru import logger
from prometheus_client import CollectorRegistry

from persona_pipeline import __version__
from persona_pipeline.api.cursor import CursorCodec
from persona_pipeline.api.deps import Services
from persona_pipeline.api.middleware import ObservabilityMiddleware
from persona_pipeline.api.problems import install_problem_handlers
from persona_pipeline.api.routes import personas, requests, service
from persona_pipeline.core.kafka import make_broker
from persona_pipeline.core.metrics import HttpMetrics
from persona_pipeline.core.mongo import Collections, connect, ensure_indexes
from persona_pipeline.core.persona_store import PersonaStore
from persona_pipeline.core.request_store import RequestStore
from persona_pipeline.core.settings import Settings
from persona_pipeline.core.stats_store import StatsStore
from persona_pipeline.producers.publisher import RequestPublisher

DESCRIPTION = """
Read API of the persona pipeline. Personas are generated asynchronously:
`POST /v1/persona` queues a request on Kafka and answers 202 with a status URL;
workers generate, store and announce each persona on `persona.created`.
Errors are RFC 9457 problem documents.
"""


def _build_services(settings: Settings, registry: CollectorRegistry) -> Services:
    mongo = connect(settings)
    collections = Collections.of(mongo[settings.mongodb_database])
    broker = make_broker(settings, client_id="persona-api")
    return Services(
        settings=settings,
        mongo=mongo,
        broker=broker,
        personas=PersonaStore(collections),
        requests=RequestStore(collections),
        stats=StatsStore(collections),
        publisher=RequestPublisher.on(broker, settings.topics),
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        http_metrics=HttpMetrics.create(registry),
    )


def create_app(settings: Settings) -> FastAPI:
    registry = CollectorRegistry()
    services = _build_services(settings, registry)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_indexes(Collections.of(services.mongo[settings.mongodb_database]))
        await services.broker.start()
        logger.info(
            "api {} ready on {}:{} (generator: {})",
            __version__,
            settings.api_host,
            settings.api_port,
            settings.active_generator.value,
        )
        try:
            yield
        finally:
            await services.broker.stop()
            await services.mongo.close()

    app = FastAPI(
        title="Persona pipeline API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.registry = registry
    install_problem_handlers(app)
    for module in (service, personas, requests):
        app.include_router(module.router)
    app.add_middleware(ObservabilityMiddleware, metrics=services.http_metrics)
    return app
