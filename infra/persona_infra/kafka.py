"""Kafka plumbing: the broker factory, topic creation and event publishing.

Idempotent producers and transactions are left off on purpose: exactly-once
storage comes from the database's unique index and deterministic ids, which
works on every Kafka-compatible broker.
"""

import ssl
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from faststream.kafka import KafkaBroker
from faststream.kafka.security import parse_security
from faststream.security import BaseSecurity, SASLPlaintext, SASLScram256, SASLScram512
from loguru import logger
from pydantic import BaseModel

from persona_infra import correlation
from persona_infra.settings import Settings

JSON_HEADERS = {"content-type": "application/json"}


SASL = {"PLAIN": SASLPlaintext, "SCRAM-SHA-256": SASLScram256, "SCRAM-SHA-512": SASLScram512}


def security(settings: Settings) -> BaseSecurity | None:
    """TLS and SASL as the settings ask (``None``: plaintext, the embedded broker's way)."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    tls = protocol in {"SSL", "SASL_SSL"}
    context = _tls_context(settings) if tls else None
    if protocol == "SSL":
        return BaseSecurity(ssl_context=context)
    password = settings.kafka_sasl_password  # Settings require both for SASL
    return SASL[settings.kafka_sasl_mechanism](
        settings.kafka_sasl_username or "",
        password.get_secret_value() if password else "",
        ssl_context=context,
        use_ssl=tls,
    )


def _tls_context(settings: Settings) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=settings.kafka_ssl_ca_file)
    if settings.kafka_ssl_cert_file is not None:
        context.load_cert_chain(settings.kafka_ssl_cert_file, settings.kafka_ssl_key_file)
    return context


def client_options(settings: Settings) -> dict[str, Any]:
    """Connection options for a plain aiokafka client (admin, consumer), TLS/SASL included."""
    return {
        "bootstrap_servers": settings.kafka_bootstrap_servers,
        "request_timeout_ms": settings.kafka_request_timeout_ms,
        **parse_security(security(settings)),
    }


def make_broker(settings: Settings, client_id: str, middlewares: Sequence[Any] = ()) -> KafkaBroker:
    """A FastStream broker for one process; FastStream's own per-message logs are off."""
    return KafkaBroker(
        settings.kafka_bootstrap_servers,
        security=security(settings),
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
    # Dead letters are rare and read by hand: one partition keeps them in order.
    partitions = dict.fromkeys(topics.all(), settings.kafka_partitions)
    partitions |= {topics.dead_letter: 1, topics.shards: settings.kafka_shard_partitions}
    admin = AIOKafkaAdminClient(**client_options(settings))
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        missing = [
            NewTopic(name, partitions[name], settings.kafka_replication_factor)
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


async def publish_event(publisher: Publisher, event: BaseModel, key: str) -> None:
    """Publish a contract event as JSON and wait for the broker's acknowledgement.

    The current correlation id, if any, travels along as a header."""
    await publisher.publish(
        event.model_dump_json().encode(),
        key=key.encode(),
        headers={**JSON_HEADERS, **correlation.headers()},
    )
