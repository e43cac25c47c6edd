"""A fake clock for the rate limiter and the retry loop: exact, instant, deterministic.

``FakeTime.sleep`` advances the clock by the time asked. That is exact for the
limiter because only the head of its queue ever sleeps.
"""

import asyncio
from collections.abc import Callable

from persona_llm.rate_limit import RateLimiter

START = 1000.0


class FakeTime:
    def __init__(self, now: float = START) -> None:
        self.now = now
        self.sleeps: list[float] = []
        self.on_sleep: Callable[[], None] | None = None

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.on_sleep is not None:
            hook, self.on_sleep = self.on_sleep, None
            hook()  # runs "during" the sleep, before time moves on
        self.now += seconds
        await asyncio.sleep(0)


def make_limiter(fake_time: FakeTime, rpm: int = 0, tpm: int = 0) -> RateLimiter:
    return RateLimiter(rpm, tpm, clock=fake_time.clock, sleep=fake_time.sleep)
