"""The writers' token buckets: a burst, then the rate; bounded in memory."""

import pytest

from persona_api.limits import TokenBuckets, retry_after

KEY = "correct-horse-battery-staple"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_buckets_allow_a_burst_then_the_rate() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate_per_minute=6, burst=2, clock=clock)  # a token per 10 s
    assert buckets.take("a") == 0
    assert buckets.take("a") == 0
    assert buckets.take("a") == pytest.approx(10)
    assert buckets.take("b") == 0  # per client
    clock.now += 4
    assert buckets.take("a") == pytest.approx(6)
    clock.now += 6
    assert buckets.take("a") == 0
    clock.now += 3600
    assert [buckets.take("a") for _ in range(3)][:2] == [0, 0]  # refills up to the burst only
    assert retry_after(0.2) == "1"
    assert retry_after(6.01) == "7"


def test_buckets_are_bounded_and_zero_rate_is_unlimited() -> None:
    buckets = TokenBuckets(rate_per_minute=1, burst=1, max_clients=3)
    for client in "abcde":
        buckets.take(client)
    assert len(buckets) == 3
    unlimited = TokenBuckets(rate_per_minute=0, burst=1)
    assert all(unlimited.take("a") == 0 for _ in range(100))
    assert len(unlimited) == 0
