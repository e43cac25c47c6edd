"""Concurrent request processing with at-least-once offsets.

FastStream hands the worker one message at a time. ``Dispatcher.submit`` starts
each request as its own task (at most ``max_in_flight`` at once, so a slow
request never stalls the ones behind it) and returns; when a task finishes, the
partition's position is committed as far as every earlier request has
finished (``OffsetTracker``). On shutdown, ``drain`` stops taking work, lets
running requests finish within a grace period, abandons the rest uncommitted
(they are redelivered) and commits what is complete.
"""

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from faststream.kafka.message import KafkaMessage
from loguru import logger

from persona_worker.offsets import OffsetTracker

Handler = Callable[[KafkaMessage], Awaitable[None]]


class Dispatcher:
    def __init__(self, handler: Handler, max_in_flight: int) -> None:
        self._handler = handler
        self._slots = asyncio.Semaphore(max_in_flight)
        self._tracker: OffsetTracker[TopicPartition] = OffsetTracker()
        self._tasks: set[asyncio.Task[None]] = set()
        self._commit_lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._closing = asyncio.Event()
        self._last_progress = time.monotonic()

    @property
    def last_progress(self) -> float:
        """``time.monotonic()`` when a request last started or finished (``/ready`` reads it)."""
        return self._last_progress

    async def submit(self, message: KafkaMessage) -> None:
        """Start processing ``message``; waits only while ``max_in_flight`` requests run."""
        if self._closing.is_set():
            return  # draining: not started, so never committed; the next owner gets it
        await self._slots.acquire()
        if self._closing.is_set():
            self._slots.release()
            return
        record = message.raw_message
        assert not isinstance(record, tuple), "the request subscriber is not a batch subscriber"
        partition = TopicPartition(record.topic, record.partition)
        self._consumer = message.consumer
        self._tracker.begin(partition, record.offset)
        self._last_progress = time.monotonic()
        task = asyncio.create_task(self._run(message, partition, record.offset))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, message: KafkaMessage, partition: TopicPartition, offset: int) -> None:
        try:
            await self._handler(message)
        finally:
            self._slots.release()
        self._last_progress = time.monotonic()
        self._tracker.end(partition, offset)  # not reached when cancelled: stays uncommitted
        await self.commit()

    async def commit(self, only: list[TopicPartition] | None = None) -> None:
        """Commit every position that moved; a failed commit is retried with the next one."""
        if self._consumer is None:
            return
        async with self._commit_lock:
            positions = self._tracker.committable(only)
            if not positions:
                return
            try:
                await self._consumer.commit(positions)
            except (KafkaError, AssertionError) as exc:  # rebalancing, or partitions revoked
                logger.warning("offset commit deferred: {}", exc)
                return
            self._tracker.committed(positions)

    async def drain(self, grace_s: float) -> None:
        """Stop taking work, give running requests ``grace_s`` to finish, commit the finished."""
        self._closing.set()
        running = set(self._tasks)
        if running:
            logger.info("draining {} request(s) for up to {:.0f}s", len(running), grace_s)
            _, pending = await asyncio.wait(running, timeout=grace_s)
            for task in pending:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*pending, return_exceptions=True)
            if pending:
                logger.warning("abandoned {} request(s); they will be redelivered", len(pending))
        await self.commit()

    async def release(self, partitions: list[TopicPartition]) -> None:
        """Commit what finished on ``partitions`` and forget them (they are being revoked)."""
        await self.commit(only=partitions)
        self._tracker.forget(partitions)

    def rebalance_listener(self) -> ConsumerRebalanceListener:
        return _CommitOnRevoke(self)


class _CommitOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Commit finished work before partitions move to another worker, then forget them."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self._dispatcher = dispatcher

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self._dispatcher.release(list(revoked))

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        return None
