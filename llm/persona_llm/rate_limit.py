"""Client-side rate limiting of one process's LLM calls: requests and tokens per minute.

Two token buckets, as in OpenAI's cookbook parallel request processor: one holds
request slots (``rpm``), the other tokens (``tpm``). Each starts full with one
minute's worth and refills continuously at ``capacity / 60`` per second. A call
first ``acquire``\\ s one request and its *estimated* tokens, waiting until both
buckets hold enough; when the answer reports the real usage, ``settle`` corrects
the token bucket (giving back an overestimate, taking more for an underestimate).
The token bucket may go negative: the debt is repaid by refilling before anyone
else gets tokens. A call estimated at more than a minute's worth of tokens waits
for a full bucket instead of forever.

``pause`` is how a 429 slows every caller sharing the limiter: nobody may start a
call before the pause ends, and a later pause only ever extends an earlier one.

Waiters are served strictly first come, first served (the head of the queue holds
an ``asyncio.Lock``, which is FIFO, while it waits for capacity), so a large call
cannot be starved by a stream of small ones. Only the head sleeps, so time is
consumed by one waiter at a time: with an injected fake ``clock`` and ``sleep``
(a ``sleep`` that advances the clock), tests run instantly and deterministically.
A ``settle`` or ``pause`` during the head's sleep takes effect when it next
checks, i.e. when that sleep ends.

A limit of ``0`` means unlimited.
"""

import asyncio
import math
import time
from collections.abc import Awaitable, Callable

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[object]]

SECONDS_PER_MINUTE = 60.0
# Waits this short count as none: stops a fake clock that cannot represent a
# sub-nanosecond step from spinning on float rounding errors.
_NEGLIGIBLE_WAIT_S = 1e-9


class _Bucket:
    """A continuously refilled token bucket; ``per_minute == 0`` means unlimited."""

    __slots__ = ("capacity", "level", "rate")

    def __init__(self, per_minute: int) -> None:
        if per_minute < 0:
            raise ValueError(f"a per-minute limit cannot be negative, got {per_minute}")
        self.capacity = float(per_minute)
        self.rate = per_minute / SECONDS_PER_MINUTE
        self.level = self.capacity

    @property
    def unlimited(self) -> bool:
        return self.capacity == 0

    def refill(self, elapsed: float) -> None:
        if not self.unlimited and elapsed > 0:
            self.level = min(self.capacity, self.level + elapsed * self.rate)

    def seconds_until(self, amount: float) -> float:
        """How long until ``amount`` (at most a full bucket) is available."""
        if self.unlimited:
            return 0.0
        missing = min(amount, self.capacity) - self.level
        return max(missing, 0.0) / self.rate

    def take(self, amount: float) -> None:
        if not self.unlimited:
            self.level -= amount

    def give(self, amount: float) -> None:
        if not self.unlimited:
            self.level = min(self.capacity, self.level + amount)

    @property
    def available(self) -> float:
        return math.inf if self.unlimited else self.level


class RateLimiter:
    """Requests-per-minute and tokens-per-minute buckets shared by all LLM calls of a process."""

    def __init__(
        self,
        rpm: int,
        tpm: int,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        """Limit calls to ``rpm`` requests and ``tpm`` tokens a minute (``0``: unlimited)."""
        self._requests = _Bucket(rpm)
        self._tokens = _Bucket(tpm)
        self._clock = clock
        self._sleep = sleep
        self._updated = clock()
        self._paused_until = -math.inf
        self._queue = asyncio.Lock()  # FIFO: its holder is the head of the queue
        self._waiting = 0

    @property
    def rpm(self) -> int:
        return int(self._requests.capacity)

    @property
    def tpm(self) -> int:
        return int(self._tokens.capacity)

    @property
    def paused_until(self) -> float | None:
        """The ``clock()`` time the current pause ends, ``None`` when not paused."""
        return self._paused_until if self._paused_until > self._clock() else None

    @property
    def available_requests(self) -> float:
        """Request slots in the bucket now (``inf`` when unlimited)."""
        self._refill()
        return self._requests.available

    @property
    def available_tokens(self) -> float:
        """Tokens in the bucket now; negative while a debt is repaid (``inf`` when unlimited)."""
        self._refill()
        return self._tokens.available

    @property
    def waiting(self) -> int:
        """Callers blocked in ``acquire`` right now."""
        return self._waiting

    async def acquire(self, estimated_tokens: int) -> None:
        """Wait, in arrival order, until one request and ``estimated_tokens`` are available.

        Takes them before returning. Honours any pause. Cancelling a waiter takes nothing.
        """
        if estimated_tokens < 0:
            raise ValueError(f"estimated_tokens cannot be negative, got {estimated_tokens}")
        self._waiting += 1
        try:
            async with self._queue:
                while (wait := self._seconds_until_ready(estimated_tokens)) > _NEGLIGIBLE_WAIT_S:
                    await self._sleep(wait)
                self._requests.take(1)
                self._tokens.take(estimated_tokens)
        finally:
            self._waiting -= 1

    def settle(self, estimated_tokens: int, actual_tokens: int) -> None:
        """Correct the token bucket once a call's real usage is known.

        Gives back ``estimated - actual`` when the estimate was too high (never
        above a full bucket) and takes the difference when it was too low.
        """
        self._refill()
        difference = estimated_tokens - actual_tokens
        if difference >= 0:
            self._tokens.give(difference)
        else:
            self._tokens.take(-difference)

    def pause(self, seconds: float) -> None:
        """Let no call start for ``seconds`` from now; extends, never shortens, a pause."""
        if not seconds > 0:  # also rejects NaN
            return
        self._paused_until = max(self._paused_until, self._clock() + seconds)

    def _seconds_until_ready(self, estimated_tokens: int) -> float:
        now = self._refill()
        return max(
            self._paused_until - now,
            self._requests.seconds_until(1),
            self._tokens.seconds_until(estimated_tokens),
        )

    def _refill(self) -> float:
        now = self._clock()
        elapsed = now - self._updated
        if elapsed > 0:
            self._requests.refill(elapsed)
            self._tokens.refill(elapsed)
            self._updated = now
        return now
