"""Retries, backoff and client-side rate limiting around any single LLM call.

``Retrier.run`` repeats a ``call`` that makes one request per invocation and
reports failures as ``GenerationError`` with a ``FailureKind``:

- before every call it takes one request and ``estimate(current)`` tokens from the
  shared ``RateLimiter`` (waiting in line if the process is at its quota), and
  afterwards ``settle``\\ s the bucket with the tokens the answer really used;
- ``RATE_LIMITED`` (429) pauses the *limiter*, so every call sharing it waits,
  for the server's ``retry_after`` (capped at ``backoff_max_s``) or else the
  backoff below; it counts against ``max_retries``. The pause is applied even
  when this call gives up, since it is news about the quota, not about the call;
- ``TRANSIENT`` (5xx, timeout, connection) sleeps this call only, for an
  exponential backoff with *equal jitter*: ``d = min(backoff_max_s,
  backoff_base_s * 2**n)`` for the ``n``-th retry (from 0), then a uniformly random
  wait in ``[d/2, d)``. Half the delay is guaranteed (a struggling server gets a
  real break), half is random (callers that failed together do not retry
  together). It counts against ``max_retries``;
- ``INVALID_OUTPUT`` retries at once with the input ``corrected(current, reason)``,
  so the model is told what to fix, up to ``max_invalid_retries`` times;
- ``FATAL`` (refusal, bad key, bad request, exhausted quota) is raised at once.

A call that runs out of retries raises a ``GenerationError`` of the last failure's
kind whose reason names the number of calls made. Whatever happens, ``usage`` (on
``Attempted`` or on the error) is the sum over every call, including rejected
answers. ``on_attempt(outcome, seconds, usage)`` is called once per call
(``outcome`` in ``OUTCOMES``, ``seconds`` the call's own duration excluding
limiter waits, ``usage`` that call's tokens) so the caller can count calls,
latency and tokens.

Tokens are settled only when a call reports usage: a timeout or a 5xx may still
have been counted by the server, so its estimate is kept, as OpenAI's own limiter
counts failed requests too.
"""

import asyncio
import contextlib
import random
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Final, Generic, Protocol, TypeVar

from persona_contracts import TokenUsage
from persona_llm.concurrency import AdaptiveConcurrency, Permit, Signal
from persona_llm.errors import (
    INVALID_OUTPUT_PREFIX,
    MAX_REASON_CHARS,
    FailureKind,
    GenerationError,
    truncate,
)
from persona_llm.rate_limit import RateLimiter, Sleep

AttemptHook = Callable[[str, float, TokenUsage], None]
"""``on_attempt(outcome, seconds, usage)``, called once per call."""

OUTCOME_OK: Final = "ok"
OUTCOMES: Final = (
    OUTCOME_OK,
    FailureKind.RATE_LIMITED.value,
    FailureKind.TRANSIENT.value,
    FailureKind.INVALID_OUTPUT.value,
    FailureKind.FATAL.value,
)
"""Every ``outcome`` ``on_attempt`` reports; an unexpected exception counts as ``fatal``."""

# What each outcome says about the provider's load: an answer (even a rejected one)
# brings its latency, a 429 says "too much", other failures say nothing.
_SIGNALS: Final = {
    OUTCOME_OK: Signal.OK,
    FailureKind.INVALID_OUTPUT.value: Signal.OK,
    FailureKind.RATE_LIMITED.value: Signal.OVERLOAD,
}
_MAX_EXPONENT = 62  # 2**n beyond this only overflows; the cap applies long before


class Costed(Protocol):
    """A successful call's result; what it cost is all the retry loop reads of it."""

    @property
    def usage(self) -> TokenUsage: ...


T = TypeVar("T")
R = TypeVar("R", bound=Costed)


@dataclass(frozen=True, slots=True)
class Attempted(Generic[R]):
    """The result of the call that succeeded, and what getting it took."""

    result: R
    usage: TokenUsage
    """Tokens of every call, the failed and rejected ones included."""
    attempts: int
    """Calls made, the successful one included."""


@dataclass(slots=True)
class _Tally:
    """One ``run`` so far."""

    attempts: int = 0
    retries: int = 0  # rate-limited and transient failures
    invalid: int = 0  # rejected answers
    usage: TokenUsage = field(default_factory=TokenUsage)


class Retrier:
    """Retries, backs off and rate-limits single LLM calls; see the module docstring."""

    def __init__(
        self,
        *,
        limiter: RateLimiter | None,
        concurrency: AdaptiveConcurrency | None = None,
        max_retries: int,
        max_invalid_retries: int,
        backoff_base_s: float,
        backoff_max_s: float,
        on_attempt: AttemptHook | None = None,
        sleep: Sleep = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_retries < 0 or max_invalid_retries < 0:
            raise ValueError("retry limits cannot be negative")
        if backoff_base_s < 0 or backoff_max_s < 0:
            raise ValueError("backoff times cannot be negative")
        self._limiter = limiter
        self._concurrency = concurrency
        self._max_retries = max_retries
        self._max_invalid_retries = max_invalid_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._on_attempt = on_attempt
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def limiter(self) -> RateLimiter | None:
        return self._limiter

    @property
    def concurrency(self) -> AdaptiveConcurrency | None:
        return self._concurrency

    def backoff(self, retry: int) -> float:
        """The wait before the ``retry``-th retry (from 0): equal jitter in ``[d/2, d)``."""
        nominal = min(self._backoff_max_s, self._backoff_base_s * 2.0 ** min(retry, _MAX_EXPONENT))
        return nominal * (0.5 + 0.5 * self._rng.random())

    async def run(
        self,
        first: T,
        call: Callable[[T], Awaitable[R]],
        *,
        estimate: Callable[[T], int],
        corrected: Callable[[T, str], T],
    ) -> Attempted[R]:
        """``call(first)``, retried as its failures allow.

        ``estimate(current)`` is the token estimate the limiter takes before each
        call (asked only when there is a limiter); ``corrected(current, reason)`` is
        the input of the call after a rejected answer, telling the model ``reason``.
        """
        tally = _Tally()
        current = first
        while True:
            tally.attempts += 1
            try:
                result = await self._attempt(current, call, estimate)
            except GenerationError as failure:
                tally.usage += failure.usage
                if failure.kind is FailureKind.FATAL:
                    raise _give_up(failure.reason, failure, tally) from failure
                if failure.kind is FailureKind.INVALID_OUTPUT:
                    self._allow_correction(failure, tally)
                    current = corrected(current, failure.reason)
                else:
                    await self._back_off(failure, tally)
            else:
                return Attempted(result, tally.usage + result.usage, tally.attempts)

    async def _attempt(
        self, current: T, call: Callable[[T], Awaitable[R]], estimate: Callable[[T], int]
    ) -> R:
        """One call between the limiter's ``acquire`` and ``settle``, in flight under the
        concurrency limit, reported to ``on_attempt``."""
        tokens = 0  # only a rate limiter needs it, and it may cost a prompt build
        if self._limiter is not None:
            tokens = estimate(current)
            await self._limiter.acquire(tokens)
        async with self._in_flight() as permit:
            started = time.perf_counter()
            try:
                result = await call(current)
            except GenerationError as exc:
                self._finish(exc.kind.value, started, tokens, exc.usage, permit)
                raise
            except Exception:
                self._report(FailureKind.FATAL.value, time.perf_counter() - started, TokenUsage())
                raise
            self._finish(OUTCOME_OK, started, tokens, result.usage, permit)
            return result

    @contextlib.asynccontextmanager
    async def _in_flight(self) -> AsyncIterator[Permit | None]:
        if self._concurrency is None:
            yield None
            return
        async with self._concurrency.permit() as permit:
            yield permit

    def _allow_correction(self, failure: GenerationError, tally: _Tally) -> None:
        """Count one more rejected answer; raise once ``max_invalid_retries`` are used up."""
        if tally.invalid >= self._max_invalid_retries:
            detail = failure.reason.removeprefix(INVALID_OUTPUT_PREFIX)
            reason = f"invalid model output after {_calls(tally.attempts)}: {detail}"
            raise _give_up(reason, failure, tally) from failure
        tally.invalid += 1

    async def _back_off(self, failure: GenerationError, tally: _Tally) -> None:
        """Wait before retrying a rate-limited or transient call; raise once retries run out."""
        pause = None
        if failure.kind is FailureKind.RATE_LIMITED and self._pauses_everyone(failure):
            pause = self._rate_limit_delay(failure, tally.retries)
            if self._limiter is not None:
                self._limiter.pause(pause)
        if tally.retries >= self._max_retries:
            reason = f"gave up after {_calls(tally.attempts)}: {failure.reason}"
            raise _give_up(reason, failure, tally) from failure
        if pause is None:
            await self._sleep(self.backoff(tally.retries))
        elif self._limiter is None:
            await self._sleep(pause)
        tally.retries += 1

    def _pauses_everyone(self, failure: GenerationError) -> bool:
        """A 429 pauses every call when the server said for how long, or when there is no
        adaptive limit to lower; otherwise lowering the limit is the shared answer and
        only this call backs off."""
        return bool(failure.retry_after) or self._concurrency is None

    def _rate_limit_delay(self, failure: GenerationError, retry: int) -> float:
        if failure.retry_after:  # None or 0: the server gave no usable hint
            return min(failure.retry_after, self._backoff_max_s)
        return self.backoff(retry)

    def _finish(
        self,
        outcome: str,
        started: float,
        tokens: int,
        usage: TokenUsage,
        permit: Permit | None,
    ) -> None:
        seconds = time.perf_counter() - started
        if permit is not None:
            permit.done(_SIGNALS.get(outcome, Signal.NEUTRAL), seconds)
        self._report(outcome, seconds, usage)
        if self._limiter is not None and usage.total_tokens > 0:
            self._limiter.settle(tokens, usage.total_tokens)

    def _report(self, outcome: str, seconds: float, usage: TokenUsage) -> None:
        if self._on_attempt is not None:
            self._on_attempt(outcome, seconds, usage)


def _calls(attempts: int) -> str:
    return f"{attempts} attempt" if attempts == 1 else f"{attempts} attempts"


def _give_up(reason: str, failure: GenerationError, tally: _Tally) -> GenerationError:
    """The error a run ends with: the last failure's kind, every call's tokens and count
    (a request's ``retried`` counts the calls spent on ordinals that failed, too)."""
    return GenerationError(
        truncate(reason, MAX_REASON_CHARS),
        kind=failure.kind,
        retry_after=failure.retry_after,
        usage=tally.usage,
        attempts=tally.attempts,
    )
