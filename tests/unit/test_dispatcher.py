"""The dispatcher's offsets and its drain on shutdown, without a broker: a position is
committed only once every earlier request finished, a drain lets running requests finish
within the grace period, and what it abandons stays uncommitted to be redelivered."""

import asyncio

from faststream.kafka.message import KafkaMessage

from persona_worker.dispatcher import Dispatcher
from tests.support.kafka_messages import RecordingConsumer, message


class Gated:
    """A handler whose request at each offset finishes when its gate opens."""

    def __init__(self) -> None:
        self.gates: dict[int, asyncio.Event] = {}
        self.started: list[int] = []
        self.finished: list[int] = []

    async def __call__(self, msg: KafkaMessage) -> None:
        offset = msg.raw_message.offset  # type: ignore[union-attr]
        self.started.append(offset)
        await self.gates.setdefault(offset, asyncio.Event()).wait()
        self.finished.append(offset)

    def open(self, *offsets: int) -> None:
        for offset in offsets:
            self.gates.setdefault(offset, asyncio.Event()).set()


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def _submit(dispatcher: Dispatcher, consumer: RecordingConsumer, *offsets: int) -> None:
    for offset in offsets:
        await dispatcher.submit(message(b"{}", offset=offset, consumer=consumer))
    await _settle()


async def test_a_position_is_committed_only_when_every_earlier_request_finished() -> None:
    handler, consumer = Gated(), RecordingConsumer()
    dispatcher = Dispatcher(handler, max_in_flight=8)
    await _submit(dispatcher, consumer, 0, 1, 2)

    handler.open(1, 2)
    await _settle()
    assert handler.finished == [1, 2]
    assert consumer.committed() in (None, 0)  # 0 still runs: committing past it could lose it

    handler.open(0)
    await _settle()
    assert consumer.committed() == 3


async def test_no_more_than_max_in_flight_requests_run_at_once() -> None:
    handler, consumer = Gated(), RecordingConsumer()
    dispatcher = Dispatcher(handler, max_in_flight=2)
    await _submit(dispatcher, consumer, 0, 1)
    third = asyncio.create_task(dispatcher.submit(message(b"{}", offset=2, consumer=consumer)))
    await _settle()
    assert handler.started == [0, 1]
    assert not third.done()

    handler.open(0)
    await third
    await _settle()
    assert handler.started == [0, 1, 2]
    handler.open(1, 2)
    await _settle()


async def test_a_drain_lets_running_requests_finish_and_commits_them() -> None:
    handler, consumer = Gated(), RecordingConsumer()
    dispatcher = Dispatcher(handler, max_in_flight=8)
    await _submit(dispatcher, consumer, 0, 1)

    drained = asyncio.create_task(dispatcher.drain(grace_s=5))
    await _settle()
    handler.open(0, 1)
    await drained
    assert handler.finished == [0, 1]
    assert consumer.committed() == 2


async def test_a_drain_abandons_what_outlives_the_grace_uncommitted() -> None:
    handler, consumer = Gated(), RecordingConsumer()
    dispatcher = Dispatcher(handler, max_in_flight=8)
    await _submit(dispatcher, consumer, 0, 1, 2)
    handler.open(0, 2)
    await _settle()

    await dispatcher.drain(grace_s=0.05)
    assert handler.finished == [0, 2]
    # 1 was abandoned: the position stops before it, so it and 2 are redelivered.
    assert consumer.committed() == 1


async def test_nothing_new_starts_once_a_drain_began() -> None:
    handler, consumer = Gated(), RecordingConsumer()
    dispatcher = Dispatcher(handler, max_in_flight=8)
    await dispatcher.drain(grace_s=1)
    await _submit(dispatcher, consumer, 0)
    assert handler.started == []
    assert consumer.committed() is None
