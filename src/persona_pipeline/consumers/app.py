"""The worker's bootstrap: builds every dependency once and wires them explicitly.

``create_worker`` is the only place that knows about concrete classes; the
handler and the service receive what they need.
"""

from dataclasses import dataclass

from faststream import AckPolicy
from faststream.asgi import AsgiFastStream, AsgiResponse, get, make_ping_asgi
from faststream.asgi.types import ASGIApp, Scope
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from loguru import logger
from prometheus_client import CollectorRegistry, make_asgi_app
from pymongo import AsyncMongoClient

from persona_pipeline import __version__
from persona_pipeline.consumers.emitter import DeadLetters, KafkaEventSink
from persona_pipeline.consumers.generators.base import PersonaGenerator
from persona_pipeline.consumers.generators.factory import build_generator
from persona_pipeline.consumers.grounding import DemographicSampler
from persona_pipeline.consumers.handler import RequestHandler
from persona_pipeline.consumers.service import GenerationService
from persona_pipeline.contracts import PersonaCreated, PersonaFailed
from persona_pipeline.contracts.topics import CONSUMER_GROUP
from persona_pipeline.core.kafka import ensure_topics, make_broker
from persona_pipeline.core.metrics import PipelineMetrics
from persona_pipeline.core.mongo import Collections, Document, connect, ensure_indexes
from persona_pipeline.core.persona_store import PersonaStore
from persona_pipeline.core.request_store import RequestStore
from persona_pipeline.core.settings import Settings
from persona_pipeline.core.stats_store import StatsStore


async def _raw_body(message: StreamMessage[object]) -> bytes:
    """Hand the handler the undecoded bytes, so invalid JSON reaches the DLQ intact."""
    return message.body


@get
async def _liveness(scope: Scope) -> AsgiResponse:
    return AsgiResponse(
        b'{"status":"ok"}', status_code=200, headers={"content-type": "application/json"}
    )


@dataclass(frozen=True, slots=True)
class Worker:
    """The assembled worker: the ASGI app to serve and what tests may want to reach."""

    app: AsgiFastStream
    settings: Settings
    broker: KafkaBroker
    mongo: AsyncMongoClient[Document]
    generator: PersonaGenerator
    registry: CollectorRegistry


def create_worker(settings: Settings, generator: PersonaGenerator | None = None) -> Worker:
    registry = CollectorRegistry()
    metrics = PipelineMetrics.create(registry)
    broker = make_broker(
        settings,
        client_id="persona-worker",
        middlewares=[KafkaPrometheusMiddleware(registry=registry, app_name="persona-worker")],
    )
    mongo = connect(settings)
    collections = Collections.of(mongo[settings.mongodb_database])
    generator = generator or build_generator(settings)
    topics = settings.topics
    created = broker.publisher(
        topics.created,
        title="persona.created",
        schema=PersonaCreated,
        description="A persona was stored. Keyed by request id; dedupe on event_id.",
    )
    failed = broker.publisher(
        topics.failed,
        title="persona.failed",
        schema=PersonaFailed,
        description="One ordinal of a request could not be generated.",
    )
    dead_letter = broker.publisher(
        topics.dead_letter,
        title="persona.requests.dlq",
        description="Invalid request events, byte for byte; x-dlq-* headers say why.",
    )
    service = GenerationService(
        personas=PersonaStore(collections),
        requests=RequestStore(collections),
        stats=StatsStore(collections),
        sampler=DemographicSampler(),
        generator=generator,
        events=KafkaEventSink(created, failed, metrics),
        metrics=metrics,
        concurrency=settings.generation_concurrency,
    )
    handler = RequestHandler(service, DeadLetters(dead_letter, topics.requests, metrics), metrics)

    @broker.subscriber(
        topics.requests,
        group_id=CONSUMER_GROUP,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        decoder=_raw_body,
        title="persona.requests",
        description="Generates the requested personas, stores them, publishes persona.created.",
    )
    async def on_request(body: bytes, message: KafkaMessage) -> None:
        await handler(message)

    async def start() -> None:
        logger.info(
            "worker {} starting: generator={} model={} concurrency={}",
            __version__,
            generator.name,
            generator.model,
            settings.generation_concurrency,
        )
        await ensure_indexes(collections)
        if settings.kafka_create_topics:
            await ensure_topics(settings)

    async def stop() -> None:
        await generator.aclose()
        await mongo.close()

    routes: list[tuple[str, ASGIApp]] = [
        ("/health", _liveness),
        ("/ready", make_ping_asgi(broker, timeout=2.0)),
        ("/metrics", make_asgi_app(registry)),
    ]
    app = AsgiFastStream(
        broker, asgi_routes=routes, on_startup=[start], after_shutdown=[stop], logger=None
    )
    return Worker(
        app=app,
        settings=settings,
        broker=broker,
        mongo=mongo,
        generator=generator,
        registry=registry,
    )
