"""Retries, backoff and client-side rate limiting around any persona generator.

``ResilientGenerator`` wraps an inner ``PersonaGenerator`` that makes one call per
``generate`` and reports failures as ``GenerationError`` with a ``FailureKind``:

- before every call it takes one request and ``estimate_tokens(task)`` tokens from
  the shared ``RateLimiter`` (waiting in line if the worker is at its quota), and
  afterwards ``settle``\\ s the bucket with the tokens the answer really used;
- ``RATE_LIMITED`` (429) pauses the *limiter*, so every call of the worker waits,
  for the server's ``retry_after`` (capped at ``backoff_max_s``) or else the
  backoff below; it counts against ``max_retries``. The pause is applied even
  when this task gives up, since it is news about the quota, not about the task;
- ``TRANSIENT`` (5xx, timeout, connection) sleeps this task only, for an
  exponential backoff with *equal jitter*: ``d = min(backoff_max_s,
  backoff_base_s * 2**n)`` for the ``n``-th retry (from 0), then a uniformly random
  wait in ``[d/2, d)``. Half the delay is guaranteed (a struggling server gets a
  real break), half is random (callers that failed together do not retry
  together). It counts against ``max_retries``;
- ``INVALID_OUTPUT`` retries at once with ``task.previous_error`` set to the reason,
  so the model is told what to fix, up to ``max_invalid_retries`` times;
- ``FATAL`` (refusal, bad key, bad request, exhausted quota) is raised at once.

A task that runs out of retries raises a ``GenerationError`` of the last failure's
kind whose reason names the number of calls made. Whatever happens, ``usage`` (on
``Generated`` or on the error) is the sum over every call of the task, including
rejected answers. ``on_attempt(outcome, seconds, usage)`` is called once per inner
call (``outcome`` in ``OUTCOMES``, ``seconds`` the call's own duration excluding
limiter waits, ``usage`` that call's tokens) so the worker can count calls,
latency and tokens.

Tokens are settled only when a call reports usage: a timeout or a 5xx may still
have been counted by the server, so its estimate is kept, as OpenAI's own limiter
counts failed requests too.
"""

import asyncio
import dataclasses
import random
import time
from collections.abc import Awaitable, Callable
from typing import Final

from persona_pipeline.consumers.generators.base import (
    INVALID_OUTPUT_PREFIX,
    MAX_REASON_CHARS,
    FailureKind,
    Generated,
    GenerationError,
    GenerationTask,
    PersonaGenerator,
    truncate,
)
from persona_pipeline.consumers.generators.prompts import estimate_tokens
from persona_pipeline.consumers.rate_limit import RateLimiter
from persona_pipeline.contracts import TokenUsage
from persona_pipeline.core.settings import Settings

AttemptHook = Callable[[str, float, TokenUsage], None]
"""``on_attempt(outcome, seconds, usage)``, called once per inner call."""
Sleep = Callable[[float], Awaitable[object]]

OUTCOME_OK: Final = "ok"
OUTCOMES: Final = (
    OUTCOME_OK,
    FailureKind.RATE_LIMITED.value,
    FailureKind.TRANSIENT.value,
    FailureKind.INVALID_OUTPUT.value,
    FailureKind.FATAL.value,
)
"""Every ``outcome`` ``on_attempt`` reports; an unexpected exception counts as ``fatal``."""

_MAX_EXPONENT = 62  # 2**n beyond this only overflows; the cap applies long before


class ResilientGenerator:
    """A ``PersonaGenerator`` that retries, backs off and rate-limits another one."""

    def __init__(
        self,
        inner: PersonaGenerator,
        *,
        limiter: RateLimiter | None,
        estimate_tokens: Callable[[GenerationTask], int],
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
        self._inner = inner
        self._limiter = limiter
        self._estimate_tokens = estimate_tokens
        self._max_retries = max_retries
        self._max_invalid_retries = max_invalid_retries
        self._backoff_base_s = backoff_base_s
        self._backoff_max_s = backoff_max_s
        self._on_attempt = on_attempt
        self._sleep = sleep
        self._rng = rng or random.Random()

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def limiter(self) -> RateLimiter | None:
        return self._limiter

    def backoff(self, retry: int) -> float:
        """The wait before the ``retry``-th retry (from 0): equal jitter in ``[d/2, d)``."""
        nominal = min(self._backoff_max_s, self._backoff_base_s * 2.0 ** min(retry, _MAX_EXPONENT))
        return nominal * (0.5 + 0.5 * self._rng.random())

    async def generate(self, task: GenerationTask) -> Generated:
        """Generate ``task``, retrying as its failures allow; see the module docstring."""
        attempts = 0
        retries = 0  # rate-limited and transient failures so far
        invalid = 0  # rejected answers so far
        usage = TokenUsage()
        current = task
        while True:
            estimate = 0  # only a rate limiter needs it, and it costs a prompt build
            if self._limiter is not None:
                estimate = self._estimate_tokens(current)
                await self._limiter.acquire(estimate)
            attempts += 1
            started = time.perf_counter()
            try:
                generated = await self._inner.generate(current)
            except GenerationError as exc:
                self._report(exc.kind.value, time.perf_counter() - started, exc.usage)
                self._settle(estimate, exc.usage)
                usage = usage + exc.usage
                failure = exc
            except Exception:
                self._report(FailureKind.FATAL.value, time.perf_counter() - started, TokenUsage())
                raise
            else:
                self._report(OUTCOME_OK, time.perf_counter() - started, generated.usage)
                self._settle(estimate, generated.usage)
                return dataclasses.replace(
                    generated, usage=usage + generated.usage, attempts=attempts
                )

            kind = failure.kind
            if kind is FailureKind.INVALID_OUTPUT:
                if invalid >= self._max_invalid_retries:
                    detail = failure.reason.removeprefix(INVALID_OUTPUT_PREFIX)
                    reason = f"invalid model output after {_calls(attempts)}: {detail}"
                    raise _give_up(reason, failure, usage, attempts) from failure
                invalid += 1
                current = dataclasses.replace(current, previous_error=failure.reason)
            elif kind is FailureKind.RATE_LIMITED:
                delay = self._rate_limit_delay(failure, retries)
                if self._limiter is not None:
                    self._limiter.pause(delay)
                if retries >= self._max_retries:
                    reason = f"gave up after {_calls(attempts)}: {failure.reason}"
                    raise _give_up(reason, failure, usage, attempts) from failure
                retries += 1
                if self._limiter is None:
                    await self._sleep(delay)
            elif kind is FailureKind.TRANSIENT:
                if retries >= self._max_retries:
                    reason = f"gave up after {_calls(attempts)}: {failure.reason}"
                    raise _give_up(reason, failure, usage, attempts) from failure
                await self._sleep(self.backoff(retries))
                retries += 1
            else:
                raise _give_up(failure.reason, failure, usage, attempts) from failure

    async def aclose(self) -> None:
        await self._inner.aclose()

    def _rate_limit_delay(self, failure: GenerationError, retry: int) -> float:
        if failure.retry_after:  # None or 0: the server gave no usable hint
            return min(failure.retry_after, self._backoff_max_s)
        return self.backoff(retry)

    def _settle(self, estimate: int, usage: TokenUsage) -> None:
        if self._limiter is not None and usage.total_tokens > 0:
            self._limiter.settle(estimate, usage.total_tokens)

    def _report(self, outcome: str, seconds: float, usage: TokenUsage) -> None:
        if self._on_attempt is not None:
            self._on_attempt(outcome, seconds, usage)


def build_resilient_generator(
    inner: PersonaGenerator,
    settings: Settings,
    *,
    on_attempt: AttemptHook | None = None,
) -> ResilientGenerator:
    """Wrap ``inner`` with the ``GENERATION_*`` retry settings.

    The OpenAI generator also gets a ``RateLimiter`` of ``OPENAI_RPM`` requests and
    ``OPENAI_TPM`` tokens a minute (0: unlimited) shared by every call through the
    returned generator, so build it once per worker process. Other generators
    (offline) cost nothing and get no limiter.
    """
    limiter = (
        RateLimiter(settings.openai_rpm, settings.openai_tpm) if inner.name == "openai" else None
    )
    return ResilientGenerator(
        inner,
        limiter=limiter,
        estimate_tokens=estimate_tokens,
        max_retries=settings.generation_max_retries,
        max_invalid_retries=settings.generation_max_invalid_retries,
        backoff_base_s=settings.generation_backoff_base_s,
        backoff_max_s=settings.generation_backoff_max_s,
        on_attempt=on_attempt,
    )


def _calls(attempts: int) -> str:
    return f"{attempts} attempt" if attempts == 1 else f"{attempts} attempts"


def _give_up(
    reason: str, failure: GenerationError, usage: TokenUsage, attempts: int
) -> GenerationError:
    """The error a task ends with: the last failure's kind, every call's tokens and count
    (a request's ``retried`` counts the calls spent on ordinals that failed, too)."""
    return GenerationError(
        truncate(reason, MAX_REASON_CHARS),
        kind=failure.kind,
        retry_after=failure.retry_after,
        usage=usage,
        attempts=attempts,
    )
