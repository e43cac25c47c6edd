"""Test-side Kafka helpers: publish raw bytes, and read what the pipeline emitted."""

import asyncio
import time
import uuid
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRecord

from persona_contracts import PersonaCreated
from persona_infra.settings import Settings


async def produce(bootstrap: str, topic: str, value: bytes, key: bytes | None = None) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, key=key)
    finally:
        await producer.stop()


async def collect(
    bootstrap: str,
    topic: str,
    until: Callable[[list[ConsumerRecord[bytes, bytes]]], bool],
    timeout: float = 30.0,
) -> list[ConsumerRecord[bytes, bytes]]:
    """Read ``topic`` from the start until ``until(records)`` holds; fail after ``timeout``."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False
    )
    await consumer.start()
    records: list[ConsumerRecord[bytes, bytes]] = []
    deadline = time.monotonic() + timeout
    try:
        while not until(records):
            if time.monotonic() > deadline:
                raise AssertionError(f"after {timeout}s on {topic}: {len(records)} records")
            batch = await consumer.getmany(timeout_ms=200)
            for part in batch.values():
                records.extend(part)
            await asyncio.sleep(0)
    finally:
        await consumer.stop()
    return records


async def created_events(
    settings: Settings, request_id: uuid.UUID, at_least: int, *, distinct: bool = False
) -> list[PersonaCreated]:
    """``persona.created`` events of one request, once there are ``at_least`` of them
    (counting each persona once when ``distinct``: re-announcements repeat them)."""

    def ours(records: list[ConsumerRecord[bytes, bytes]]) -> list[PersonaCreated]:
        events = [PersonaCreated.model_validate_json(r.value) for r in records]
        return [e for e in events if e.persona.request_id == request_id]

    def enough(records: list[ConsumerRecord[bytes, bytes]]) -> bool:
        events = ours(records)
        return len({e.event_id for e in events} if distinct else events) >= at_least

    records = await collect(settings.kafka_bootstrap_servers, settings.topics.created, enough)
    return ours(records)
