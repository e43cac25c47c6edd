"""The API's composition root: ``create_app`` builds the app and its lifespan.

The lifespan owns the process's MongoDB client and its own FastStream
``KafkaBroker`` (FastStream's FastAPI router integration is deprecated), so
every dependency is created once, started before the first request and closed
on shutdown.

Security is checked here rather than in ``Settings``, because the worker shares the
settings and needs no API keys: ``create_app`` refuses to build an API that would
run open in production (see ``check_security``).
"""

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial

from fastapi import Depends, FastAPI
from fastapi.params import Depends as DependsParam
from fastapi.routing import APIRoute
from loguru import logger
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from starlette.types import ASGIApp, Receive, Scope, Send

from persona_api import __version__
from persona_api.auth import API_KEY_HEADER, read_gate
from persona_api.console import install_console
from persona_api.cursor import CursorCodec
from persona_api.deps import AppContext
from persona_api.docs_pages import install_docs
from persona_api.idempotency_store import IdempotencyStore
from persona_api.key_ring import InsecureConfigurationError, KeyRing
from persona_api.limits import TokenBuckets
from persona_api.metrics import HttpMetrics
from persona_api.middleware import (
    BodySizeLimitMiddleware,
    ObservabilityMiddleware,
    ProblemCORSMiddleware,
    SecurityHeadersMiddleware,
)
from persona_api.persona_queries import PersonaQueries
from persona_api.problems import install_problem_handlers
from persona_api.query_params import reject_unknown_query_params
from persona_api.request_records import RequestRecords
from persona_api.routes import admin, health, personas, plans, requests
from persona_api.stats_queries import StatsQueries
from persona_api.submissions import Submissions
from persona_audience.llm_planner import build_planner
from persona_audience.planner import RulePlanner
from persona_infra import telemetry
from persona_infra.api_keys import Role
from persona_infra.health import DependencyProbe
from persona_infra.kafka import make_broker
from persona_infra.metrics import ProcessMetrics
from persona_infra.mongo import Collections, connect, disconnect, ensure_indexes
from persona_infra.settings import Environment, Settings
from persona_producers.publisher import RequestPublisher

DESCRIPTION = """
Read API of the persona pipeline. Personas are generated asynchronously:
`POST /v1/persona` queues a request on Kafka and answers 202 with a status URL;
workers generate, store and announce each persona on `persona.created`.
Errors are RFC 9457 problem documents.

Writes need an API key (`Authorization: Bearer <key>` or `X-API-Key: <key>`) unless
the server runs without keys (development only); reads need one when the server
sets `READS_REQUIRE_KEY`. Unknown query parameters are rejected with a 422.
"""
# The service routes (/, /health, /ready, /metrics) stay public when reads need a key.
PUBLIC_PATHS = frozenset(r.path for r in health.router.routes if isinstance(r, APIRoute))
CORS_METHODS = ("GET", "HEAD", "POST")
CORS_REQUEST_HEADERS = (
    "authorization",
    API_KEY_HEADER.lower(),
    "x-correlation-id",
    "if-none-match",
)
CORS_EXPOSED_HEADERS = ("location", "retry-after", "x-correlation-id", "etag", "www-authenticate")


def key_ring(settings: Settings) -> KeyRing:
    return KeyRing.from_settings({role: getattr(settings, role.setting.lower()) for role in Role})


def check_security(settings: Settings, keys: KeyRing) -> None:
    """Refuse configurations that would leave the API open where it must not be."""
    if not keys.open:
        return
    if settings.environment is Environment.PRODUCTION:
        raise InsecureConfigurationError(
            "ENVIRONMENT=production and no API key is configured: set API_KEYS (writers) "
            "and, as needed, ADMIN_API_KEYS and READ_API_KEYS to entries made by "
            "`persona keys hash`. The API does not run open in production."
        )
    if settings.reads_require_key:
        raise InsecureConfigurationError(
            "READS_REQUIRE_KEY=true but no API key is configured: set READ_API_KEYS, "
            "API_KEYS or ADMIN_API_KEYS (entries made by `persona keys hash`)."
        )


class _API(FastAPI):
    """FastAPI whose outermost layers wrap the whole app, Starlette's
    ``ServerErrorMiddleware`` included, so even an unexpected 500 carries the security
    headers, the correlation id and its metric. Wrapping ``__call__`` rather than
    ``build_middleware_stack`` leaves the latter as instrumentation expects it."""

    outermost: tuple[Callable[[ASGIApp], ASGIApp], ...] = ()  # outermost first
    _wrapped: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._wrapped is None:
            app: ASGIApp = super().__call__
            for wrap in reversed(self.outermost):
                app = wrap(app)
            self._wrapped = app
        await self._wrapped(scope, receive, send)


def _build_context(
    settings: Settings, registry: CollectorRegistry, keys: KeyRing, tracing: TracerProvider | None
) -> AppContext:
    mongo = connect(settings)
    collections = Collections.of(mongo[settings.mongodb_database])
    broker = make_broker(
        settings, client_id="persona-api", middlewares=telemetry.kafka_middlewares(tracing)
    )
    process_metrics = ProcessMetrics.create(registry)
    publisher = RequestPublisher.on(broker, settings.topics, settings.max_event_bytes)
    requests = RequestRecords(collections)
    return AppContext(
        settings=settings,
        mongo=mongo,
        broker=broker,
        personas=PersonaQueries(collections),
        requests=requests,
        stats=StatsQueries(collections),
        publisher=publisher,
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        http_metrics=HttpMetrics.create(registry),
        keys=keys,
        write_limiter=TokenBuckets(settings.write_rate_per_minute, settings.write_burst),
        export_limiter=TokenBuckets(settings.export_rate_per_minute, settings.export_burst),
        dependencies=DependencyProbe(mongo, broker, process_metrics.dependency_up),
        registry=registry,
        submissions=Submissions(
            requests, IdempotencyStore(collections), publisher, settings.kafka_publish_timeout_s
        ),
        rules=RulePlanner.default(),
        planner=build_planner(settings),
    )


def create_app(settings: Settings, tracing: TracerProvider | None = None) -> FastAPI:
    """The API; raises ``InsecureConfigurationError`` for a configuration it refuses.

    ``tracing`` defaults to what ``OTEL_ENABLED`` asks for; the app shuts it down
    (flushing its spans) when it stops."""
    keys = key_ring(settings)
    check_security(settings, keys)
    registry = CollectorRegistry()
    tracing = tracing or telemetry.tracer_provider(settings, "api")
    context = _build_context(settings, registry, keys, tracing)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await ensure_indexes(Collections.of(context.mongo[settings.mongodb_database]))
        await context.broker.start()
        if keys.open:
            logger.warning(
                "no API key is configured (API_KEYS, ADMIN_API_KEYS, READ_API_KEYS): anyone "
                "can POST /v1/persona and use admin routes. Fine for `persona dev`; "
                "ENVIRONMENT=production refuses to start like this"
            )
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
            await context.broker.stop()
            await context.planner.aclose()
            await disconnect(context.mongo)
            if tracing is not None:
                tracing.shutdown()

    # App-wide, so routes added later get them too: the read gate first (401 before 422).
    dependencies: list[DependsParam] = []
    if settings.reads_require_key:
        dependencies.append(Depends(read_gate(PUBLIC_PATHS)))
    dependencies.append(Depends(reject_unknown_query_params))
    app = _API(
        title="Persona pipeline API",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        dependencies=dependencies,
        # Starlette's slash redirects build their Location from the Host header, which the
        # client chooses; without them `/v1/persona/` is a 404 problem like any unknown path.
        redirect_slashes=False,
        # Served from packaged assets instead of FastAPI's CDN pages (docs_pages.py).
        docs_url=None,
        redoc_url=None,
    )
    app.state.context = context
    install_problem_handlers(app)
    for module in (health, personas, plans, requests, admin):
        app.include_router(module.router)
    # Inner to outer: the body limit sees the body first, CORS answers preflights.
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            ProblemCORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=CORS_METHODS,
            allow_headers=CORS_REQUEST_HEADERS,
            expose_headers=CORS_EXPOSED_HEADERS,
            allow_credentials=False,  # keys travel in headers, not cookies
            max_age=600,
        )
    if tracing is not None:
        FastAPIInstrumentor.instrument_app(
            app, tracer_provider=tracing, excluded_urls=",".join(sorted(PUBLIC_PATHS - {"/"}))
        )
    docs = install_docs(app)
    page_csps = dict.fromkeys(docs.pages, docs.csp) | install_console(app)
    app.outermost = (
        partial(ObservabilityMiddleware, metrics=context.http_metrics),
        partial(
            SecurityHeadersMiddleware,
            hsts=settings.environment is Environment.PRODUCTION,
            page_csps=page_csps,
            private_caching=settings.reads_require_key,
        ),
    )
    return app
