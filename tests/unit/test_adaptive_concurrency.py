"""The adaptive concurrency limit, driven call by call with a fake clock."""

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest

from persona_llm.concurrency import (
    AdaptiveConcurrency,
    ChangeReporter,
    LimitChange,
    Permit,
    Signal,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@contextlib.asynccontextmanager
async def in_flight(gate: AdaptiveConcurrency, n: int) -> AsyncIterator[list[Permit]]:
    """``n`` calls holding permits; the block reports them ``done`` (or not)."""
    async with contextlib.AsyncExitStack() as stack:
        yield [await stack.enter_async_context(gate.permit()) for _ in range(n)]


async def answer_all(gate: AdaptiveConcurrency, clock: Clock, latency: float = 1.0) -> None:
    """One round trip at the full limit: every call answered after ``latency``."""
    async with in_flight(gate, gate.limit) as permits:
        clock.now += latency
        for permit in permits:
            permit.done(Signal.OK, latency)


async def test_slow_start_doubles_each_round_trip_up_to_the_ceiling() -> None:
    clock = Clock()
    gate = AdaptiveConcurrency(64, initial=8, clock=clock)
    limits = []
    for _ in range(4):
        await answer_all(gate, clock)
        limits.append(gate.limit)
    assert limits == [16, 32, 64, 64]


async def test_a_429_lowers_the_limit_once_per_round_trip_then_it_grows_by_one() -> None:
    clock = Clock()
    changes: list[LimitChange] = []
    gate = AdaptiveConcurrency(64, initial=20, clock=clock, on_change=changes.append)
    async with in_flight(gate, 20) as permits:
        clock.now += 1
        for permit in permits[:5]:  # five calls of the same wave rejected
            permit.done(Signal.OVERLOAD)
        for permit in permits[5:]:
            permit.done(Signal.OK, 1.0)
    assert gate.limit == 16  # 20 * 0.8, once
    assert changes[0] == LimitChange(20, 16, "429 from the provider")
    before = gate.limit
    for _ in range(3):
        await answer_all(gate, clock)
    assert gate.limit == before + 3  # additive now: one per round trip


async def test_a_quiet_worker_does_not_raise_a_limit_it_does_not_use() -> None:
    clock = Clock()
    gate = AdaptiveConcurrency(64, initial=8, clock=clock)
    for _ in range(50):
        async with gate.permit() as permit:  # one call at a time
            clock.now += 1
            permit.done(Signal.OK, 1.0)
    assert gate.limit == 8


async def test_latency_rising_past_the_tolerance_lowers_the_limit() -> None:
    clock = Clock()
    changes: list[LimitChange] = []
    gate = AdaptiveConcurrency(64, initial=16, clock=clock, on_change=changes.append)
    for latency in (1.0, 1.0, 1.5):  # slower, but within 2x the best: still growing
        await answer_all(gate, clock, latency)
    high = gate.limit
    assert high > 16
    for _ in range(2):  # a queue builds up at the provider: 3x the best
        await answer_all(gate, clock, latency=3.0)
    assert gate.limit < high
    assert any("over 2x the best" in change.reason for change in changes)


async def test_errors_that_say_nothing_about_load_change_nothing() -> None:
    clock = Clock()
    gate = AdaptiveConcurrency(64, initial=8, clock=clock)
    async with in_flight(gate, 8) as permits:
        for permit in permits:
            permit.done(Signal.NEUTRAL)
    async with in_flight(gate, 8):
        pass  # never reported: a cancelled call
    assert gate.limit == 8
    assert gate.in_flight == 0


async def test_the_limit_stays_between_floor_and_ceiling() -> None:
    clock = Clock()
    gate = AdaptiveConcurrency(4, initial=2, floor=2, clock=clock)
    for _ in range(5):
        await answer_all(gate, clock)
    assert gate.limit == 4
    for _ in range(10):
        clock.now += 1
        async with gate.permit() as permit:
            permit.done(Signal.OVERLOAD)
    assert gate.limit == 2


async def test_calls_beyond_the_limit_wait_in_order_and_a_cancelled_one_gives_way() -> None:
    gate = AdaptiveConcurrency(64, initial=1)
    order: list[str] = []

    async def call(name: str) -> None:
        async with gate.permit() as permit:
            order.append(name)
            await asyncio.sleep(0)
            permit.done(Signal.NEUTRAL)

    async with gate.permit():
        first = asyncio.create_task(call("first"))
        cancelled = asyncio.create_task(call("cancelled"))
        second = asyncio.create_task(call("second"))
        await asyncio.sleep(0)
        assert gate.in_flight == 1
        cancelled.cancel()
    await asyncio.gather(first, second)
    assert order == ["first", "second"]
    assert gate.in_flight == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [({"ceiling": 0}, "floor <= ceiling"), ({"ceiling": 4, "decrease": 1.0}, "decrease")],
)
def test_impossible_limits_are_refused(args: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        AdaptiveConcurrency(**args)  # type: ignore[arg-type]


def test_changes_set_the_gauge_each_time_and_log_at_most_every_interval() -> None:
    clock = Clock()
    gauge: list[float] = []
    lines: list[str] = []
    report = ChangeReporter(gauge.append, lines.append, every_s=30, clock=clock)
    report(LimitChange(16, 11, "429 from the provider"))
    for second, (old, new) in enumerate([(11, 12), (12, 13), (13, 9), (9, 10)], start=1):
        clock.now = second
        report(LimitChange(old, new, "probing for more"))
    clock.now = 40
    report(LimitChange(10, 11, "probing for more"))
    assert gauge == [11, 12, 13, 9, 10, 11]
    assert len(lines) == 2
    assert "limited to 11, from 16: 429 from the provider" in lines[0]
    assert "between 9 and 13" in lines[1]
