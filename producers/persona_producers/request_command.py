"""The work behind ``persona request``: publish one request, optionally follow it to the end.

Following means reading ``persona.created`` / ``persona.failed`` for this request id.
It starts at the offsets for the request's timestamp (minus clock skew), which on
brokers without time indexes degrades to the beginning of the topic: correct,
only slower.
"""

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError

from persona_contracts import Persona, PersonaCreated, PersonaFailed, PersonaRequested
from persona_infra.kafka import client_options, make_broker
from persona_infra.settings import Settings
from persona_producers.publisher import RequestPublisher

CLOCK_SKEW = timedelta(seconds=30)


class NotQueuedError(RuntimeError):
    """Kafka did not confirm a request within ``KAFKA_PUBLISH_TIMEOUT_S``."""


async def publish_requests(settings: Settings, requests: Sequence[PersonaRequested]) -> None:
    """Publish with a short-lived broker connection (the CLI's and scripts' way in).

    Each publish waits at most ``KAFKA_PUBLISH_TIMEOUT_S``; publishing the same request
    again (same id and content) is always safe, the worker treats it as a redelivery."""
    broker = make_broker(settings, client_id="persona-cli")
    publisher = RequestPublisher.on(broker, settings.topics, settings.max_event_bytes)
    for request in requests:
        publisher.check_size(request)
    try:
        async with asyncio.timeout(settings.kafka_publish_timeout_s):
            await broker.start()
        for request in requests:
            async with asyncio.timeout(settings.kafka_publish_timeout_s):
                await publisher.publish(request)
    except (TimeoutError, KafkaError) as exc:
        limit = settings.kafka_publish_timeout_s
        raise NotQueuedError(
            f"Kafka at {settings.kafka_bootstrap_servers} did not take the request within "
            f"KAFKA_PUBLISH_TIMEOUT_S ({limit:g}s): {exc or type(exc).__name__}"
        ) from exc
    finally:
        await broker.stop()


@dataclass(frozen=True, slots=True)
class Outcome:
    """One ordinal settled: either a persona or a failure reason."""

    ordinal: int
    persona: Persona | None = None
    failure: str | None = None


def _outcome(topic: str, created_topic: str, value: bytes, request_id: uuid.UUID) -> Outcome | None:
    try:
        if topic == created_topic:
            created = PersonaCreated.model_validate_json(value)
            persona = created.persona
            return (
                Outcome(persona.ordinal, persona=persona)
                if persona.request_id == request_id
                else None
            )
        failed = PersonaFailed.model_validate_json(value)
    except ValidationError:
        return None  # not ours to judge: some other producer's event
    return (
        Outcome(failed.ordinal, failure=failed.reason) if failed.request_id == request_id else None
    )


async def _start_positions(consumer: AIOKafkaConsumer, topics: list[str], since_ms: int) -> None:
    partitions = [
        TopicPartition(topic, p)
        for topic in topics
        for p in sorted(consumer.partitions_for_topic(topic) or ())
    ]
    consumer.assign(partitions)
    offsets = await consumer.offsets_for_times(dict.fromkeys(partitions, since_ms))
    for tp in partitions:
        found = offsets.get(tp)
        if found is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, found.offset)


async def follow_request(
    settings: Settings, request: PersonaRequested, on_ready: Callable[[], None] | None = None
) -> AsyncIterator[Outcome]:
    """Yield each ordinal of ``request`` once as it settles, until all have."""
    topics = settings.topics
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **client_options(settings))
    await consumer.start()
    try:
        watched = [topics.created, topics.failed]
        await consumer.topics()  # load metadata so partitions are known
        since = request.requested_at - CLOCK_SKEW
        await _start_positions(consumer, watched, int(since.timestamp() * 1000))
        if on_ready is not None:
            on_ready()
        seen: set[int] = set()
        while len(seen) < request.count:
            batches = await consumer.getmany(timeout_ms=500)
            for records in batches.values():
                for record in records:
                    outcome = _outcome(
                        record.topic, topics.created, record.value, request.request_id
                    )
                    if outcome is not None and outcome.ordinal not in seen:
                        seen.add(outcome.ordinal)
                        yield outcome
    finally:
        await consumer.stop()
