"""How many LLM calls a process keeps in flight: found by probing, not configured.

A provider's capacity is rarely known up front (a shared account, a gateway, a
self-hosted server with N GPUs) and changes during a run. ``AdaptiveConcurrency``
finds it the way TCP finds a path's bandwidth, with the configured concurrency
as the ceiling:

- it starts with few calls (``initial``) and doubles the limit every round trip
  (one more permit per success) until the first sign of overload ("slow start");
- then it adds one permit per round trip (one per ``limit`` successes), and only
  while the limit is really used (reached in the round trip), so a quiet worker
  does not drift up to a limit it never tested;
- a 429 from the provider, or the round trip's mean latency rising above
  ``latency_tolerance`` times the best seen, multiplies the limit by ``decrease``
  (0.8: gentler than halving, so a server with a hard cap is used at ~90 %),
  at most once per round trip: calls started before the last decrease do not
  decrease it again.

The best latency decays slowly towards the recent ones (``BASELINE_DRIFT`` per
round trip), so a model that got slower for good is not read as overload forever.

Waiters are served first come, first served. ``clock`` is injectable so tests
can drive it without sleeping.
"""

import asyncio
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from enum import Enum

from persona_llm.rate_limit import Clock

INITIAL_LIMIT = 8
DECREASE = 0.8
LATENCY_TOLERANCE = 2.0
# How far the best round-trip latency moves towards the current one per round trip.
BASELINE_DRIFT = 0.05


class Signal(Enum):
    """What a finished call says about the provider's load."""

    OK = "ok"  # answered (a rejected answer too): its latency counts
    OVERLOAD = "overload"  # 429: too much at once
    NEUTRAL = "neutral"  # an error that says nothing about load


@dataclass(frozen=True, slots=True)
class LimitChange:
    """A change of the whole-call limit, for metrics and logs."""

    old: int
    new: int
    reason: str


class Permit:
    """One call's place in flight; ``done`` reports how it went (once)."""

    __slots__ = ("_gate", "_settled", "started")

    def __init__(self, gate: "AdaptiveConcurrency", started: float) -> None:
        self._gate = gate
        self.started = started
        self._settled = False

    def done(self, signal: Signal, latency_s: float = 0.0) -> None:
        if not self._settled:
            self._settled = True
            self._gate._settle(self, signal, latency_s)


class AdaptiveConcurrency:
    """A concurrency limit between ``floor`` and ``ceiling`` that follows the provider."""

    def __init__(
        self,
        ceiling: int,
        *,
        initial: int = INITIAL_LIMIT,
        floor: int = 1,
        decrease: float = DECREASE,
        latency_tolerance: float = LATENCY_TOLERANCE,
        on_change: Callable[[LimitChange], None] | None = None,
        clock: Clock = time.monotonic,
    ) -> None:
        if not 1 <= floor <= ceiling:
            raise ValueError(f"need 1 <= floor <= ceiling, got {floor} and {ceiling}")
        if not 0 < decrease < 1 or latency_tolerance <= 1:
            raise ValueError("need 0 < decrease < 1 and latency_tolerance > 1")
        self._ceiling, self._floor = ceiling, floor
        self._limit = min(max(initial, floor), ceiling)
        self._decrease, self._tolerance = decrease, latency_tolerance
        self._on_change = on_change
        self._clock = clock
        self._slow_start = True
        self._credit = 0  # answers since the last additive step
        self._in_flight = 0
        self._limited = False  # the limit was reached in this round trip
        self._waiters: deque[asyncio.Future[None]] = deque()
        self._last_decrease = -math.inf
        self._best_latency: float | None = None
        self._round_started = clock()
        self._round: list[float] = []  # latencies of the round trip under way

    @property
    def limit(self) -> int:
        """Calls allowed in flight now."""
        return self._limit

    @property
    def ceiling(self) -> int:
        return self._ceiling

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @asynccontextmanager
    async def permit(self) -> AsyncIterator[Permit]:
        """A place in flight for one call; a permit not reported ``done`` counts as neutral
        (a cancelled or crashed call says nothing about the provider)."""
        await self._acquire()
        self._limited = self._limited or self._in_flight >= self._limit
        permit = Permit(self, self._clock())
        try:
            yield permit
        finally:
            permit.done(Signal.NEUTRAL)

    async def _acquire(self) -> None:
        if self._in_flight < self._limit and not self._waiters:
            self._in_flight += 1
            return
        waiter = asyncio.get_running_loop().create_future()
        self._waiters.append(waiter)
        try:
            await waiter  # the releaser counted us in flight already
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():
                self._release_one()  # granted, then cancelled: hand the place on
            else:
                self._waiters.remove(waiter)
            raise

    def _settle(self, permit: Permit, signal: Signal, latency_s: float) -> None:
        fresh = permit.started >= self._last_decrease  # sent under the current limit
        if signal is Signal.OVERLOAD and fresh:
            self._lower("429 from the provider")
        elif signal is Signal.OK and fresh:
            self._observe(permit, latency_s)
        self._release_one()

    def _release_one(self) -> None:
        self._in_flight -= 1
        while self._waiters and self._in_flight < self._limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_flight += 1
                waiter.set_result(None)

    def _observe(self, permit: Permit, latency_s: float) -> None:
        if self._limited:  # the limit was in use: probe above it
            self._grow()
        self._round.append(latency_s)
        if permit.started >= self._round_started:  # sent in this round and back: one trip
            self._close_round()

    def _grow(self) -> None:
        self._credit += 1
        if self._slow_start or self._credit >= self._limit:
            self._credit = 0
            self._set(min(self._ceiling, self._limit + 1), "probing for more")

    def _close_round(self) -> None:
        """Compare the round trip's mean latency with the best seen; start the next one."""
        mean = sum(self._round) / len(self._round)
        self._round.clear()
        self._round_started = self._clock()
        self._limited = self._in_flight >= self._limit - 1
        best = self._best_latency
        if best is None or mean < best:
            self._best_latency = mean
            return
        self._best_latency = best + (mean - best) * BASELINE_DRIFT
        if mean > best * self._tolerance:
            self._lower(f"latency {mean:.2f} s, over {self._tolerance:g}x the best {best:.2f} s")

    def _lower(self, reason: str) -> None:
        self._slow_start = False
        self._credit = 0
        self._last_decrease = self._clock()
        self._round.clear()
        self._round_started = self._last_decrease
        lowered = min(self._limit - 1, int(self._limit * self._decrease))
        self._set(max(self._floor, lowered), reason)

    def _set(self, limit: int, reason: str) -> None:
        old, self._limit = self._limit, limit
        if limit != old and self._on_change is not None:
            self._on_change(LimitChange(old, limit, reason))


class ChangeReporter:
    """Reports limit changes: ``set_gauge`` on each, a log line at most every ``every_s``.

    Against a server with a hard cap the limit saws between two values for as long
    as the run lasts; one line per interval, with the range it moved in, says that
    without a line per probe."""

    def __init__(
        self,
        set_gauge: Callable[[float], None],
        log: Callable[[str], None],
        *,
        every_s: float = 30.0,
        clock: Clock = time.monotonic,
    ) -> None:
        self._set_gauge, self._log = set_gauge, log
        self._every_s, self._clock = every_s, clock
        self._logged_at = -math.inf
        self._low: int | None = None
        self._high: int | None = None

    def __call__(self, change: LimitChange) -> None:
        self._set_gauge(change.new)
        self._low = min(self._low or change.new, change.old, change.new)
        self._high = max(self._high or change.new, change.old, change.new)
        now = self._clock()
        if now - self._logged_at < self._every_s:
            return
        moved = f" (between {self._low} and {self._high} since the last report)"
        self._log(
            f"LLM calls in flight now limited to {change.new}, from {change.old}: "
            f"{change.reason}{moved if self._high - self._low > 1 else ''}"
        )
        self._logged_at, self._low, self._high = now, None, None
