"""Kafka plumbing: the broker factory, topic creation and event publishing.

Idempotent producers and transactions are left off on purpose: exactly-once
storage comes from the database's unique index and deterministic ids, which
works on every Kafka-compatible broker.
"""

from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from loguru import logger
from pydantic import BaseModel

from persona_pipeline.core import correlation
from persona_pipeline.core.settings import Settings

JSON_HEADERS = {"content-type": "application/json"}


def make_broker(settings: Settings, client_id: str, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    """A FastStream broker for one process; FastStream's own per-message logs are off."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        client_id=client_id,
        request_timeout_ms=settings.kafka_request_timeout_ms,
        acks="all",
        enable_idempotence=False,
        middlewares=tuple(middlewares),
        logger=None,
    )


async def ensure_topics(settings: Settings) -> list[str]:
    """Create any missing pipeline topic; returns the names it created."""
    topics = settings.topics
    admin = AIOKafkaAdminClient(
        bootstrap_servers=settings.kafka_bootstrap_servers,
        request_timeout_ms=settings.kafka_request_timeout_ms,
    )
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(
                name,
                1 if name == topics.dead_letter else settings.kafka_partitions,
                settings.kafka_replication_factor,
            )
            for name in topics.all()
            if name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
            logger.info("created topics {}", [t.name for t in missing])
        return [t.name for t in missing]
    finally:
        await admin.close()


class Publisher(Protocol):
    """What FastStream's ``broker.publisher(topic)`` returns, reduced to what we call."""

    async def publish(
        self, message: Any, *, key: bytes | None = None, headers: dict[str, str] | None = None
    ) -> Any: ...


async def publish_event(
    publisher: Publisher, event: BaseModel, key: str, headers: dict[str, str] | None = None
) -> None:
    """Publish a contract event as JSON and wait for the broker's acknowledgement.

    The current correlation id, if any, travels along unless ``headers`` name one."""
    await publisher.publish(
        event.model_dump_json().encode(),
        key=key.encode(),
        headers={**JSON_HEADERS, **correlation.headers(), **(headers or {})},
    )
