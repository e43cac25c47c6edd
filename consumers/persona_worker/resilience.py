"""Retries, backoff and client-side rate limiting around any persona generator.

The retry semantics are the ``Retrier``'s (``llm/retry.py``); this module only fits
them to a ``PersonaGenerator``: a task's token estimate comes from its prompt, a
rejected answer is retried with ``task.previous_error`` set to the reason, and the
``Generated`` that comes back carries the tokens and calls of every attempt.
"""

import dataclasses
from collections.abc import Callable

from persona_infra.settings import Settings
from persona_llm.concurrency import AdaptiveConcurrency, LimitChange
from persona_llm.rate_limit import RateLimiter
from persona_llm.retry import AttemptHook, Retrier
from persona_worker.generators.base import (
    Generated,
    GenerationTask,
    PersonaGenerator,
)
from persona_worker.generators.prompts import estimate_tokens


class ResilientGenerator:
    """A ``PersonaGenerator`` that retries, backs off and rate-limits another one."""

    def __init__(
        self,
        inner: PersonaGenerator,
        retrier: Retrier,
        *,
        estimate_tokens: Callable[[GenerationTask], int],
    ) -> None:
        self._inner = inner
        self._retrier = retrier
        self._estimate_tokens = estimate_tokens

    @property
    def name(self) -> str:
        return self._inner.name

    @property
    def model(self) -> str:
        return self._inner.model

    @property
    def retrier(self) -> Retrier:
        """The retry loop (and its limiter) every generation goes through."""
        return self._retrier

    @property
    def limiter(self) -> RateLimiter | None:
        return self._retrier.limiter

    @property
    def concurrency(self) -> AdaptiveConcurrency | None:
        return self._retrier.concurrency

    def backoff(self, retry: int) -> float:
        """The wait before the ``retry``-th retry (from 0); see ``Retrier.backoff``."""
        return self._retrier.backoff(retry)

    async def generate(self, task: GenerationTask) -> Generated:
        """Generate ``task``, retrying as its failures allow (see ``llm/retry.py``)."""
        attempted = await self._retrier.run(
            task,
            self._inner.generate,
            estimate=self._estimate_tokens,
            corrected=_with_previous_error,
        )
        return dataclasses.replace(
            attempted.result, usage=attempted.usage, attempts=attempted.attempts
        )

    async def aclose(self) -> None:
        await self._inner.aclose()


def build_resilient_generator(
    inner: PersonaGenerator,
    settings: Settings,
    *,
    on_attempt: AttemptHook | None = None,
    limiter: RateLimiter | None = None,
    on_limit_change: Callable[[LimitChange], None] | None = None,
) -> ResilientGenerator:
    """Wrap ``inner`` with the ``GENERATION_*`` retry settings.

    Every call through the returned generator shares one ``RateLimiter``, so build
    it once per worker process. Pass ``limiter`` to share it with the process's
    other LLM callers too (one ``OPENAI_RPM``/``OPENAI_TPM`` budget for all);
    otherwise the OpenAI generator gets its own of ``OPENAI_RPM`` requests and
    ``OPENAI_TPM`` tokens a minute (0: unlimited), and other generators (offline),
    which cost nothing, get none. The OpenAI generator's calls in flight follow the
    provider's capacity too (``GENERATION_ADAPTIVE_CONCURRENCY``; ``on_limit_change`` hears
    of each change), up to ``GENERATION_CONCURRENCY``.
    """
    calls_provider = inner.name == "openai"
    if limiter is None and calls_provider:
        limiter = RateLimiter(settings.openai_rpm, settings.openai_tpm)
    concurrency = None
    if calls_provider and settings.generation_adaptive_concurrency:
        concurrency = AdaptiveConcurrency(
            settings.generation_concurrency, on_change=on_limit_change
        )
    return ResilientGenerator(
        inner,
        Retrier(
            limiter=limiter,
            concurrency=concurrency,
            max_retries=settings.generation_max_retries,
            max_invalid_retries=settings.generation_max_invalid_retries,
            backoff_base_s=settings.generation_backoff_base_s,
            backoff_max_s=settings.generation_backoff_max_s,
            on_attempt=on_attempt,
        ),
        estimate_tokens=estimate_tokens,
    )


def _with_previous_error(task: GenerationTask, reason: str) -> GenerationTask:
    """The task of the next call after a rejected answer: the model is told why."""
    return dataclasses.replace(task, previous_error=reason)
