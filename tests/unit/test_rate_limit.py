"""The client-side rate limiter, on a fake clock (``tests/support/fake_time.py``):
exact, instant and deterministic."""

import asyncio

import pytest

from persona_llm.rate_limit import RateLimiter
from tests.support.fake_time import START, FakeTime, make_limiter


async def test_rpm_limits_the_call_rate_exactly(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, rpm=60)  # a full bucket of 60, then one a second
    starts: list[float] = []

    for _ in range(63):
        await limit.acquire(0)
        starts.append(fake_time.now - START)

    assert starts[:60] == [0.0] * 60  # the bucket starts full: a minute's worth at once
    assert starts[60:] == pytest.approx([1.0, 2.0, 3.0])
    assert fake_time.sleeps == pytest.approx([1.0, 1.0, 1.0])


async def test_concurrent_callers_are_served_first_come_first_served(
    fake_time: FakeTime,
) -> None:
    limit = make_limiter(fake_time, rpm=120)  # two a second once the bucket is empty
    for _ in range(120):
        await limit.acquire(0)
    started: list[tuple[int, float]] = []

    async def call(number: int) -> None:
        await limit.acquire(0)
        started.append((number, fake_time.now - START))

    await asyncio.gather(*(call(number) for number in range(6)))

    assert [number for number, _ in started] == list(range(6))
    assert [at for _, at in started] == pytest.approx([0.5, 1.0, 1.5, 2.0, 2.5, 3.0])


async def test_tpm_waits_for_tokens(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, tpm=600)  # 10 tokens a second

    await limit.acquire(500)
    assert fake_time.now == START
    await limit.acquire(200)  # 100 left, 100 missing: 10 s

    assert fake_time.now - START == pytest.approx(10.0)
    assert limit.available_tokens == pytest.approx(0.0)


async def test_a_big_call_does_not_starve_behind_small_ones(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, tpm=600)
    await limit.acquire(600)
    order: list[str] = []

    async def call(label: str, tokens: int) -> None:
        await limit.acquire(tokens)
        order.append(f"{label}@{fake_time.now - START:g}")

    big = asyncio.create_task(call("big", 600))
    await asyncio.sleep(0)  # the big call queues first
    small = asyncio.create_task(call("small", 10))
    await asyncio.gather(big, small)

    assert order == ["big@60", "small@61"]


async def test_an_estimate_above_the_bucket_waits_for_a_full_bucket(
    fake_time: FakeTime,
) -> None:
    limit = make_limiter(fake_time, tpm=600)
    await limit.acquire(300)

    await limit.acquire(900)  # more than a minute's worth: goes once the bucket is full

    assert fake_time.now - START == pytest.approx(30.0)
    assert limit.available_tokens == pytest.approx(-300.0)  # a debt, repaid by refilling
    await limit.acquire(60)
    assert fake_time.now - START == pytest.approx(30.0 + 36.0)


async def test_settle_gives_back_an_overestimate(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, tpm=600)
    await limit.acquire(600)

    limit.settle(600, 100)

    assert limit.available_tokens == pytest.approx(500.0)
    await limit.acquire(500)
    assert fake_time.now == START  # no wait: the estimate came back


async def test_settle_takes_more_for_an_underestimate(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, tpm=600)
    await limit.acquire(100)

    limit.settle(100, 400)

    assert limit.available_tokens == pytest.approx(200.0)
    await limit.acquire(300)
    assert fake_time.now - START == pytest.approx(10.0)


async def test_settle_never_fills_above_capacity(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, tpm=600)
    await limit.acquire(10)

    limit.settle(5000, 0)

    assert limit.available_tokens == 600.0


async def test_pause_blocks_everyone_until_it_ends(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time)  # unlimited, yet a pause still applies
    limit.pause(5.0)
    started: list[float] = []

    async def call() -> None:
        await limit.acquire(100)
        started.append(fake_time.now - START)

    await asyncio.gather(*(call() for _ in range(3)))

    assert started == [5.0, 5.0, 5.0]
    assert limit.paused_until is None


async def test_pause_is_extended_but_never_shortened(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time)

    limit.pause(5.0)
    limit.pause(2.0)
    assert limit.paused_until == START + 5.0

    fake_time.now += 1.0
    limit.pause(6.0)
    assert limit.paused_until == START + 7.0

    limit.pause(0.0)
    limit.pause(-3.0)
    limit.pause(float("nan"))
    assert limit.paused_until == START + 7.0

    await limit.acquire(0)
    assert fake_time.now == START + 7.0


async def test_a_pause_during_a_wait_holds_the_waiter(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, rpm=60)
    for _ in range(60):
        await limit.acquire(0)
    # While the next caller sleeps its 1 s for a request slot, a 429 pauses for 5 s.
    fake_time.on_sleep = lambda: limit.pause(5.0)

    await limit.acquire(0)

    assert fake_time.now - START == pytest.approx(5.0)
    assert fake_time.sleeps == pytest.approx([1.0, 4.0])


async def test_buckets_refill_during_a_pause(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time, rpm=60, tpm=600)
    await limit.acquire(600)
    limit.pause(30.0)

    await limit.acquire(200)

    assert fake_time.now - START == pytest.approx(30.0)
    assert limit.available_tokens == pytest.approx(100.0)
    assert limit.available_requests == pytest.approx(59.0)  # refilled to 60, minus this call


async def test_a_cancelled_waiter_takes_nothing() -> None:
    fake_time = FakeTime()
    never = asyncio.Event()

    async def blocked_sleep(seconds: float) -> None:
        await never.wait()

    limit = RateLimiter(60, 600, clock=fake_time.clock, sleep=blocked_sleep)
    await limit.acquire(600)
    waiter = asyncio.create_task(limit.acquire(100))
    await asyncio.sleep(0)
    assert limit.waiting == 1

    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter

    assert limit.waiting == 0
    assert limit.available_requests == 59.0
    assert limit.available_tokens == 0.0


async def test_zero_means_unlimited(fake_time: FakeTime) -> None:
    limit = make_limiter(fake_time)

    for _ in range(10_000):
        await limit.acquire(1_000_000)
    limit.settle(10, 1_000_000)

    assert fake_time.sleeps == []
    assert limit.available_requests == float("inf")
    assert limit.available_tokens == float("inf")
    assert (limit.rpm, limit.tpm) == (0, 0)


async def test_bad_arguments_are_rejected(fake_time: FakeTime) -> None:
    with pytest.raises(ValueError, match="negative"):
        RateLimiter(-1, 0)
    with pytest.raises(ValueError, match="negative"):
        await make_limiter(fake_time).acquire(-1)
