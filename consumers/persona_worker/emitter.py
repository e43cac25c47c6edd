"""Where the worker's outgoing events go: ``persona.created``, ``persona.failed`` and the DLQ."""

import hashlib
from datetime import datetime
from typing import Protocol

from persona_contracts import PersonaCreated, PersonaFailed, ShardRequested
from persona_infra import correlation
from persona_infra.kafka import Publisher, publish_event
from persona_worker.metrics import PipelineMetrics

MAX_ERROR_HEADER_CHARS = 1000


class EventSink(Protocol):
    async def created(self, event: PersonaCreated) -> None: ...

    async def failed(self, event: PersonaFailed) -> None: ...


class KafkaEventSink:
    """Publishes keyed by request id, so one request's events stay in order on one partition."""

    def __init__(self, created: Publisher, failed: Publisher, metrics: PipelineMetrics) -> None:
        self._created = created
        self._failed = failed
        self._metrics = metrics

    async def created(self, event: PersonaCreated) -> None:
        await publish_event(self._created, event, str(event.persona.request_id))
        self._metrics.events_published.labels("persona.created").inc()

    async def failed(self, event: PersonaFailed) -> None:
        await publish_event(self._failed, event, str(event.request_id))
        self._metrics.events_published.labels("persona.failed").inc()


class KafkaShardSink:
    """Publishes a large request's shards keyed apart, so they spread over the partitions."""

    def __init__(self, shards: Publisher) -> None:
        self._shards = shards

    async def publish(self, shard: ShardRequested) -> None:
        await publish_event(self._shards, shard, shard.key)


MAX_DEAD_LETTER_BYTES = 512 * 1024
"""The most of an event's body the DLQ keeps: well under the producers' 1 MiB default
request size, so a dead letter can always be sent and the partition never wedges."""


class DeadLetters:
    """Sends an unusable request event to the DLQ byte for byte, with the why in headers.

    Keeping the original bytes as the body (the Kafka Connect convention) means a
    fixed event can be replayed onto ``persona.requests`` unchanged. A body too large to
    forward is cut to ``MAX_DEAD_LETTER_BYTES`` and says so: ``x-dlq-truncated``, its
    ``x-dlq-original-bytes`` and ``x-dlq-sha256`` identify the original.
    """

    def __init__(self, publisher: Publisher, metrics: PipelineMetrics) -> None:
        self._publisher = publisher
        self._metrics = metrics

    async def send(
        self,
        body: bytes,
        key: bytes | None,
        error: str,
        failed_at: datetime,
        topic: str,
        partition: int,
        offset: int,
    ) -> None:
        headers = {
            **correlation.headers(),
            "x-dlq-error": error[:MAX_ERROR_HEADER_CHARS],
            "x-dlq-failed-at": failed_at.isoformat(),
            "x-dlq-source-topic": topic,
            "x-dlq-source-partition": str(partition),
            "x-dlq-source-offset": str(offset),
        }
        if len(body) > MAX_DEAD_LETTER_BYTES:
            headers |= {
                "x-dlq-truncated": "true",
                "x-dlq-original-bytes": str(len(body)),
                "x-dlq-sha256": hashlib.sha256(body).hexdigest(),
            }
            body = body[:MAX_DEAD_LETTER_BYTES]
        await self._publisher.publish(body, key=key[:1024] if key else key, headers=headers)
        self._metrics.dead_letters.inc()
