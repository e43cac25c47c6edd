"""The worker's bootstrap: builds every dependency once and wires them explicitly.

``create_worker`` is the only place that knows about concrete classes; the
handler and the use case receive what they need.
"""

import asyncio
import uuid
from dataclasses import dataclass

from faststream import AckPolicy
from faststream.asgi import AsgiFastStream
from faststream.asgi.types import ASGIApp
from faststream.kafka import KafkaBroker
from faststream.kafka.annotations import KafkaMessage
from faststream.kafka.prometheus import KafkaPrometheusMiddleware
from faststream.message import StreamMessage
from loguru import logger
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from persona_audience.gazetteer import Gazetteer
from persona_audience.llm_planner import build_planner
from persona_audience.planner import Planner
from persona_audience.reference import Reference
from persona_contracts import PersonaCreated, PersonaFailed, TokenUsage
from persona_infra import telemetry
from persona_infra.health import DependencyProbe
from persona_infra.kafka import ensure_topics, make_broker
from persona_infra.metrics import ProcessMetrics
from persona_infra.mongo import Collections, Document, connect, disconnect, ensure_indexes
from persona_infra.settings import Settings
from persona_llm.concurrency import ChangeReporter
from persona_llm.pricing import PriceTable
from persona_llm.retry import AttemptHook
from persona_worker import __version__, endpoints
from persona_worker.batch_generation import BatchPoller, batch_generation
from persona_worker.dispatcher import Dispatcher
from persona_worker.emitter import DeadLetters, KafkaEventSink, KafkaShardSink
from persona_worker.generation import RequestGeneration
from persona_worker.generators.base import PersonaGenerator
from persona_worker.generators.factory import build_generator
from persona_worker.grounding import QuotaSampler
from persona_worker.handler import RequestHandler, parse_leniently
from persona_worker.lease_store import LeaseStore
from persona_worker.metrics import PipelineMetrics
from persona_worker.persona_writes import PersonaWriter
from persona_worker.progress import ConsumerWatch, HasConsumer
from persona_worker.reconciler import Reconciler
from persona_worker.request_writes import RequestWriter
from persona_worker.resilience import build_resilient_generator
from persona_worker.shard_writes import ShardWriter
from persona_worker.sharding import Sharding
from persona_worker.stages import DedupPolicy, Stages
from persona_worker.stats_writes import StatsCounter


async def _raw_body(message: StreamMessage[object]) -> bytes:
    """Hand the handler the undecoded bytes, so invalid JSON reaches the DLQ intact."""
    return message.body


def _attempt_metrics(metrics: PipelineMetrics, generator: str, model: str) -> AttemptHook:
    """Count every generator call, including retried and rejected ones (they cost tokens)."""

    def observe(outcome: str, seconds: float, usage: TokenUsage) -> None:
        metrics.count_call(generator, outcome, model, usage)
        metrics.llm_latency.labels(generator).observe(seconds)

    return observe


def shards_in_flight(settings: Settings) -> int:
    """Shards a worker takes at once: enough to keep twice its LLM concurrency fed, no more.

    A shard taken waits in this worker under its lease; holding more than it can start
    would keep them from the other workers, and costs the database a read each."""
    return max(2, -(-2 * settings.generation_concurrency // settings.request_shard_size))


def _consume(
    broker: KafkaBroker,
    settings: Settings,
    dispatcher: Dispatcher,
    topic: str,
    group: str,
    description: str,
) -> HasConsumer:
    """Hand ``topic``'s messages to ``dispatcher``, which commits their offsets itself."""
    subscriber = broker.subscriber(
        topic,
        group_id=group,
        ack_policy=AckPolicy.MANUAL,
        auto_offset_reset="earliest",
        session_timeout_ms=settings.kafka_session_timeout_ms,
        heartbeat_interval_ms=settings.kafka_heartbeat_interval_ms,
        max_poll_interval_ms=settings.kafka_max_poll_interval_ms,
        decoder=_raw_body,
        parser=parse_leniently,
        listener=dispatcher.rebalance_listener(),
        title=topic.removeprefix(settings.kafka_topic_prefix),
        description=description,
    )

    @subscriber
    async def on_message(body: bytes, message: KafkaMessage) -> None:
        await dispatcher.submit(message)

    return subscriber


@dataclass(frozen=True, slots=True)
class Worker:
    """The assembled worker: the ASGI app to serve and what tests may want to reach."""

    app: AsgiFastStream
    settings: Settings
    broker: KafkaBroker
    mongo: AsyncMongoClient[Document]
    generator: PersonaGenerator
    registry: CollectorRegistry


def create_worker(
    settings: Settings,
    generator: PersonaGenerator | None = None,
    tracing: TracerProvider | None = None,
    planner: Planner | None = None,
) -> Worker:
    """The worker; ``generator``, ``tracing`` and ``planner`` default to what the settings
    ask for."""
    tracing = tracing or telemetry.tracer_provider(settings, "worker")
    registry = CollectorRegistry()
    metrics = PipelineMetrics.create(registry)
    process_metrics = ProcessMetrics.create(registry)
    broker = make_broker(
        settings,
        client_id="persona-worker",
        middlewares=[
            KafkaPrometheusMiddleware(registry=registry, app_name="persona-worker"),
            *telemetry.kafka_middlewares(tracing),
        ],
    )
    mongo = connect(settings)
    collections = Collections.of(mongo[settings.mongodb_database])
    inner = generator or build_generator(settings)
    generator = build_resilient_generator(
        inner,
        settings,
        on_attempt=_attempt_metrics(metrics, inner.name, inner.model),
        on_limit_change=ChangeReporter(
            metrics.llm_concurrency_limit.set, logger.bind(component="llm").info
        ),
    )
    metrics.llm_concurrency_limit.set(
        generator.concurrency.limit if generator.concurrency else settings.generation_concurrency
    )
    planner = planner or build_planner(
        settings,
        limiter=generator.limiter,  # plan calls and persona calls share one budget
        on_attempt=_attempt_metrics(metrics, "planner", settings.planner_model or inner.model),
    )
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
    # The workers publish their own shards; the channel is documented by its subscriber.
    shards_out = broker.publisher(topics.shards, include_in_schema=False)
    requests = RequestWriter(collections)
    # One name per process on everything it leases: the reconciler, batches, shards.
    owner = f"worker-{uuid.uuid4().hex[:12]}"
    reconciler = Reconciler(
        requests=requests,
        leases=LeaseStore(collections),
        publisher=broker.publisher(topics.requests, include_in_schema=False),
        metrics=metrics,
        interval_s=settings.reconcile_interval_s,
        stale_after_s=settings.reconcile_stale_after_s,
        max_redrives=settings.reconcile_max_redrives,
        owner=owner,
    )
    stages = Stages(
        personas=PersonaWriter(collections),
        requests=requests,
        stats=StatsCounter(collections),
        planner=planner,
        sampler=QuotaSampler(Gazetteer.load(), Reference.load().population),
        events=KafkaEventSink(created, failed, metrics),
        metrics=metrics,
        prices=PriceTable.with_overrides(settings.price_table),
        dedup=DedupPolicy(
            threshold=settings.near_duplicate_threshold,
            max_regenerations=settings.near_duplicate_max_regenerations,
        ),
        generator_name=generator.name,
        model=generator.model,
    )
    batches = batch_generation(
        inner,
        stages,
        requests,
        poll_s=settings.openai_batch_poll_s,
        max_rounds=settings.openai_batch_max_rounds,
    )
    poller = BatchPoller(batches, settings.openai_batch_poll_s, owner) if batches else None
    sharding = Sharding(
        stages=stages,
        shards=ShardWriter(collections),
        sink=KafkaShardSink(shards_out),
        size=settings.request_shard_size,
        owner=owner,
        # A dead worker's shard is taken over once the request would be re-driven.
        lease_s=settings.reconcile_stale_after_s,
    )
    generation = RequestGeneration(
        stages=stages,
        generator=generator,
        concurrency=settings.generation_concurrency,
        batches=batches,
        batch_threshold=settings.openai_batch_threshold,
        heartbeat_s=settings.reconcile_stale_after_s / 4,
        sharding=sharding,
    )
    handler = RequestHandler(generation, DeadLetters(dead_letter, metrics), metrics)
    dispatcher = Dispatcher(handler, max_in_flight=settings.max_requests_in_flight)
    shard_dispatcher = Dispatcher(handler.on_shard, max_in_flight=shards_in_flight(settings))

    subscriber = _consume(
        broker,
        settings,
        dispatcher,
        topics.requests,
        topics.group,
        "Generates the requested personas, stores them, publishes persona.created.",
    )
    shard_subscriber = _consume(
        broker,
        settings,
        shard_dispatcher,
        topics.shards,
        topics.shard_group,
        "Parts of large requests, published by the worker that planned them and keyed "
        "apart: every worker generates some; the last one settles the request.",
    )

    async def start() -> None:
        logger.info(
            "worker {} starting: generator={} model={} concurrency={}{}",
            __version__,
            generator.name,
            generator.model,
            settings.generation_concurrency,
            " (adaptive, the ceiling)" if generator.concurrency else "",
        )
        await ensure_indexes(collections)
        if settings.kafka_create_topics:
            await ensure_topics(settings)
        reconciler.start()
        if poller is not None:
            poller.start()

    async def drain() -> None:
        await reconciler.stop()
        if poller is not None:
            await poller.stop()
        await asyncio.gather(
            dispatcher.drain(settings.shutdown_grace_s),
            shard_dispatcher.drain(settings.shutdown_grace_s),
        )

    async def stop() -> None:
        await generator.aclose()
        await planner.aclose()
        await disconnect(mongo)
        if tracing is not None:
            tracing.shutdown()

    probe = DependencyProbe(mongo, broker, process_metrics.dependency_up)

    watches = {
        "consumer": ConsumerWatch(subscriber, dispatcher, topics.requests, settings.ready_stall_s),
        "shard_consumer": ConsumerWatch(
            shard_subscriber, shard_dispatcher, topics.shards, settings.ready_stall_s
        ),
    }

    async def refresh_lag() -> None:
        metrics.consumer_lag.clear()
        for watch in watches.values():
            await watch.report(metrics.consumer_lag)

    routes: list[tuple[str, ASGIApp]] = [
        ("/health", endpoints.liveness),
        ("/ready", endpoints.readiness(probe, watches)),
        ("/metrics", endpoints.metrics(registry, probe, refresh_lag)),
    ]
    app = AsgiFastStream(
        broker,
        asgi_routes=routes,
        on_startup=[start],
        on_shutdown=[drain],
        after_shutdown=[stop],
        logger=None,
    )
    return Worker(
        app=app,
        settings=settings,
        broker=broker,
        mongo=mongo,
        generator=generator,
        registry=registry,
    )
