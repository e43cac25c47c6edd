"""Is the consumer moving? What ``/ready`` and the lag gauge say about the worker's partitions.

A worker can be connected to Kafka and MongoDB and still be stuck: a request retried
forever holds its partition's committed offset, a broker that lost its topics leaves
the consumer looping. Reading lag from the fetch position hides both (the position has
moved past the stuck message), so lag here is the high watermark minus the *committed*
offset, and the consumer counts as stalled when work waits (lag > 0) while neither a
committed offset nor the dispatcher has moved for ``READY_STALL_S``. A long request
does not stall the worker as long as other requests keep finishing.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiokafka import TopicPartition
from prometheus_client import Gauge

from persona_infra.health import OK


class HasConsumer(Protocol):
    """A FastStream Kafka subscriber: ``consumer`` is its aiokafka consumer once started."""

    consumer: Any


class HasProgress(Protocol):
    @property
    def last_progress(self) -> float:
        """``time.monotonic()`` when a request last started or finished."""
        ...


@dataclass
class ConsumerWatch:
    subscriber: HasConsumer
    dispatcher: HasProgress
    topic: str
    stall_s: float
    clock: Callable[[], float] = time.monotonic
    _committed: dict[TopicPartition, tuple[int, float]] = field(default_factory=dict)

    async def lag(self) -> dict[TopicPartition, int]:
        """Messages waiting per assigned partition: high watermark minus committed offset
        (partitions not fetched yet, whose high watermark is unknown, are left out)."""
        consumer = self.subscriber.consumer
        if consumer is None:
            return {}
        waiting: dict[TopicPartition, int] = {}
        for partition in consumer.assignment():
            highwater = consumer.highwater(partition)
            if highwater is None:
                continue
            committed = await consumer.committed(partition) or 0
            self._remember(partition, committed)
            waiting[partition] = max(highwater - committed, 0)
        return waiting

    async def check(self) -> str:
        """``ok``, ``starting``, or ``stalled (...)`` with the partition and how long."""
        consumer = self.subscriber.consumer
        if consumer is None:
            return "starting"
        try:
            if self.topic not in await consumer.topics():
                return f"topic {self.topic} missing (a broker that lost its topics?)"
            waiting = await self.lag()
        except Exception as exc:  # the group coordinator is away: not ready either
            return f"unreachable ({type(exc).__name__})"
        now = self.clock()
        idle = now - self.dispatcher.last_progress
        for partition, backlog in waiting.items():
            still = now - self._committed[partition][1]
            if backlog and idle >= self.stall_s and still >= self.stall_s:
                return (
                    f"stalled ({partition.topic}[{partition.partition}]: {backlog} waiting, "
                    f"committed offset unchanged for {still:.0f}s)"
                )
        return OK

    async def report(self, gauge: Gauge) -> None:
        """Set the lag gauge per partition of this topic this worker holds (the caller
        clears it first, so partitions given up disappear)."""
        for partition, backlog in (await self.lag()).items():
            gauge.labels(partition.topic, str(partition.partition)).set(backlog)

    def _remember(self, partition: TopicPartition, committed: int) -> None:
        seen = self._committed.get(partition)
        if seen is None or seen[0] != committed:
            self._committed[partition] = (committed, self.clock())
