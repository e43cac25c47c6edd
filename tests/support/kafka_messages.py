"""Kafka messages and publishers without a broker, for unit tests of the worker's edge:
the attributes of FastStream's ``KafkaMessage`` and ``broker.publisher(...)`` that the
handler and the dispatcher use, and nothing else."""

from dataclasses import dataclass, field
from typing import Any, cast

from aiokafka import ConsumerRecord, TopicPartition
from faststream.kafka.message import KafkaMessage

REQUESTS_TOPIC = "persona.requests"


@dataclass
class RecordingConsumer:
    """Keeps every commit, as ``AIOKafkaConsumer.commit`` would send it."""

    commits: list[dict[TopicPartition, int]] = field(default_factory=list)

    async def commit(self, positions: dict[TopicPartition, int]) -> None:
        self.commits.append(dict(positions))

    def committed(self, partition: int = 0) -> int | None:
        """The last position committed for ``partition`` (the next offset to read)."""
        tp = TopicPartition(REQUESTS_TOPIC, partition)
        found = [c[tp] for c in self.commits if tp in c]
        return found[-1] if found else None


@dataclass
class _Message:
    body: bytes
    headers: dict[str, str]
    raw_message: ConsumerRecord[bytes, bytes]
    consumer: RecordingConsumer


def message(
    body: bytes,
    offset: int = 0,
    partition: int = 0,
    key: bytes | None = b"key",
    consumer: RecordingConsumer | None = None,
) -> KafkaMessage:
    record: ConsumerRecord[bytes, bytes] = ConsumerRecord(
        topic=REQUESTS_TOPIC,
        partition=partition,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        key=key,
        value=body,
        checksum=None,
        serialized_key_size=len(key or b""),
        serialized_value_size=len(body),
        headers=[],
    )
    return cast(KafkaMessage, _Message(body, {}, record, consumer or RecordingConsumer()))


@dataclass
class Published:
    body: bytes
    key: bytes | None
    headers: dict[str, str]


@dataclass
class RecordingPublisher:
    """A ``Publisher`` that keeps what was published."""

    published: list[Published] = field(default_factory=list)

    async def publish(
        self, message: Any, *, key: bytes | None = None, headers: dict[str, str] | None = None
    ) -> None:
        self.published.append(Published(message, key, dict(headers or {})))
