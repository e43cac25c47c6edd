"""ResilientGenerator around a scripted inner generator, on a fake clock."""

import asyncio
import dataclasses
import random
from collections import deque

import pytest

from persona_contracts import PersonaDraft, TokenUsage
from persona_infra.settings import Settings
from persona_llm.concurrency import AdaptiveConcurrency
from persona_llm.errors import FailureKind, GenerationError
from persona_llm.rate_limit import RateLimiter
from persona_llm.retry import OUTCOMES, Retrier
from persona_worker.generators.base import (
    Generated,
    GenerationTask,
    PersonaGenerator,
)
from persona_worker.resilience import ResilientGenerator, build_resilient_generator
from tests.support.factories import make_task
from tests.support.fake_time import START, FakeTime, make_limiter

TASK = make_task(ordinal=0, seed=7)
DRAFT = PersonaDraft(
    name="Ana Costa",
    bio="Ana cycles to the hospital every day.",
    interests=["cycling"],
    goals=["Find a safer route."],
    pain_points=["Cars parked in the bike lane."],
    tags=["cyclist"],
)
ESTIMATE = 1000


def ok(prompt: int = 200, completion: int = 50) -> Generated:
    return Generated(
        draft=DRAFT, usage=TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
    )


def fail(
    kind: FailureKind,
    reason: str = "it failed",
    *,
    retry_after: float | None = None,
    usage: TokenUsage | None = None,
) -> GenerationError:
    return GenerationError(reason, kind=kind, retry_after=retry_after, usage=usage)


def invalid(detail: str, prompt: int = 0, completion: int = 0) -> GenerationError:
    usage = TokenUsage(prompt_tokens=prompt, completion_tokens=completion)
    return fail(FailureKind.INVALID_OUTPUT, f"invalid model output: {detail}", usage=usage)


class Scripted:
    """An inner generator answering from a script; records the tasks and call times."""

    def __init__(
        self, fake_time: FakeTime, *script: Generated | Exception, name: str = "x"
    ) -> None:
        self._time = fake_time
        self._script = deque(script)
        self._name = name
        self.tasks: list[GenerationTask] = []
        self.times: list[float] = []
        self.closed = False

    @property
    def name(self) -> str:
        return self._name

    @property
    def model(self) -> str:
        return "scripted-1"

    async def generate(self, task: GenerationTask) -> Generated:
        self.tasks.append(task)
        self.times.append(self._time.now)
        outcome = self._script.popleft() if self._script else ok()
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def aclose(self) -> None:
        self.closed = True


class FixedRandom(random.Random):
    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class Attempts:
    def __init__(self) -> None:
        self.calls: list[tuple[str, float, TokenUsage]] = []

    def __call__(self, outcome: str, seconds: float, usage: TokenUsage) -> None:
        self.calls.append((outcome, seconds, usage))

    @property
    def outcomes(self) -> list[str]:
        return [outcome for outcome, _, _ in self.calls]


@pytest.fixture
def attempts() -> Attempts:
    return Attempts()


def resilient(
    inner: PersonaGenerator,
    fake_time: FakeTime,
    *,
    limiter: RateLimiter | None = None,
    concurrency: AdaptiveConcurrency | None = None,
    max_retries: int = 3,
    max_invalid_retries: int = 2,
    backoff_base_s: float = 1.0,
    backoff_max_s: float = 8.0,
    rng: random.Random | None = None,
    on_attempt: Attempts | None = None,
) -> ResilientGenerator:
    return ResilientGenerator(
        inner,
        Retrier(
            limiter=limiter,
            concurrency=concurrency,
            max_retries=max_retries,
            max_invalid_retries=max_invalid_retries,
            backoff_base_s=backoff_base_s,
            backoff_max_s=backoff_max_s,
            on_attempt=on_attempt,
            sleep=fake_time.sleep,
            rng=rng or FixedRandom(1.0),
        ),
        estimate_tokens=lambda task: ESTIMATE,
    )


async def test_success_on_the_first_call(fake_time: FakeTime, attempts: Attempts) -> None:
    inner = Scripted(fake_time, ok(321, 54))
    generator = resilient(inner, fake_time, on_attempt=attempts)

    result = await generator.generate(TASK)

    assert result.draft == DRAFT
    assert result.usage == TokenUsage(prompt_tokens=321, completion_tokens=54)
    assert result.attempts == 1
    assert inner.tasks == [TASK]
    assert attempts.outcomes == ["ok"]
    assert attempts.calls[0][2] == result.usage
    assert (generator.name, generator.model) == ("x", "scripted-1")
    await generator.aclose()
    assert inner.closed


async def test_invalid_output_is_retried_at_once_with_the_error_fed_back(
    fake_time: FakeTime, attempts: Attempts
) -> None:
    inner = Scripted(fake_time, invalid("tags: too many items", 300, 40), ok(310, 60))
    generator = resilient(inner, fake_time, on_attempt=attempts)

    result = await generator.generate(TASK)

    assert result.attempts == 2
    assert inner.tasks[0].previous_error is None
    assert inner.tasks[1] == dataclasses.replace(
        TASK, previous_error="invalid model output: tags: too many items"
    )
    assert fake_time.sleeps == []  # no backoff: the model can answer again right away
    assert result.usage == TokenUsage(prompt_tokens=610, completion_tokens=100)
    assert attempts.outcomes == ["invalid_output", "ok"]


async def test_invalid_output_every_time_fails_with_the_attempts_in_the_reason(
    fake_time: FakeTime,
) -> None:
    inner = Scripted(
        fake_time,
        invalid("bio: too long", 100, 10),
        invalid("bio: too long", 100, 10),
        invalid("name: missing", 100, 10),
    )
    generator = resilient(inner, fake_time, max_invalid_retries=2)

    with pytest.raises(GenerationError) as caught:
        await generator.generate(TASK)

    assert caught.value.kind is FailureKind.INVALID_OUTPUT
    assert caught.value.reason == "invalid model output after 3 attempts: name: missing"
    assert caught.value.usage == TokenUsage(prompt_tokens=300, completion_tokens=30)
    assert len(inner.tasks) == 3
    assert inner.tasks[2].previous_error == "invalid model output: bio: too long"


async def test_no_invalid_retries_means_one_call(fake_time: FakeTime) -> None:
    inner = Scripted(fake_time, invalid("bio: too long"))

    with pytest.raises(GenerationError) as caught:
        await resilient(inner, fake_time, max_invalid_retries=0).generate(TASK)

    assert caught.value.reason == "invalid model output after 1 attempt: bio: too long"


async def test_fatal_is_not_retried(fake_time: FakeTime, attempts: Attempts) -> None:
    refused = fail(FailureKind.FATAL, "model refused: no", usage=TokenUsage(prompt_tokens=90))
    inner = Scripted(fake_time, refused)

    with pytest.raises(GenerationError) as caught:
        await resilient(inner, fake_time, on_attempt=attempts).generate(TASK)

    assert caught.value.kind is FailureKind.FATAL
    assert caught.value.reason == "model refused: no"
    assert caught.value.usage == TokenUsage(prompt_tokens=90)
    assert caught.value.__cause__ is refused
    assert len(inner.tasks) == 1
    assert attempts.outcomes == ["fatal"]


async def test_transient_backoff_grows_and_is_capped(
    fake_time: FakeTime, attempts: Attempts
) -> None:
    inner = Scripted(fake_time, *(fail(FailureKind.TRANSIENT, "OpenAI server error (503)"),) * 6)
    generator = resilient(
        inner, fake_time, max_retries=5, backoff_base_s=1.0, backoff_max_s=5.0, on_attempt=attempts
    )

    with pytest.raises(GenerationError) as caught:
        await generator.generate(TASK)

    assert fake_time.sleeps == [1.0, 2.0, 4.0, 5.0, 5.0]  # FixedRandom(1.0): the full delay
    assert caught.value.kind is FailureKind.TRANSIENT
    assert caught.value.reason == "gave up after 6 attempts: OpenAI server error (503)"
    assert attempts.outcomes == ["transient"] * 6


async def test_backoff_is_equal_jitter(fake_time: FakeTime) -> None:
    lowest = resilient(Scripted(fake_time), fake_time, rng=FixedRandom(0.0))
    seeded = resilient(Scripted(fake_time), fake_time, rng=random.Random(42))

    assert [lowest.backoff(n) for n in range(5)] == [0.5, 1.0, 2.0, 4.0, 4.0]
    for n in range(8):
        nominal = min(8.0, 2.0**n)
        delays = {seeded.backoff(n) for _ in range(50)}
        assert all(nominal / 2 <= delay < nominal for delay in delays)
        assert len(delays) > 1
    assert lowest.backoff(10_000) == 4.0  # no overflow, still capped


async def test_transient_then_success(fake_time: FakeTime, attempts: Attempts) -> None:
    inner = Scripted(
        fake_time, fail(FailureKind.TRANSIENT), fail(FailureKind.TRANSIENT), ok(100, 20)
    )

    result = await resilient(inner, fake_time, on_attempt=attempts).generate(TASK)

    assert result.attempts == 3
    assert inner.times == [START, START + 1.0, START + 3.0]
    assert attempts.outcomes == ["transient", "transient", "ok"]


async def test_rate_limit_pauses_the_whole_limiter(fake_time: FakeTime) -> None:
    limiter = make_limiter(fake_time)
    inner = Scripted(fake_time, fail(FailureKind.RATE_LIMITED, "429", retry_after=3.0))
    generator = resilient(inner, fake_time, limiter=limiter)

    first, second = await asyncio.gather(generator.generate(TASK), generator.generate(TASK))

    # Call 1 got the 429; call 2 queued behind it and also waited for the pause.
    assert inner.times == [START, START + 3.0, START + 3.0]
    assert (first.attempts, second.attempts) == (2, 1)
    assert fake_time.sleeps == [3.0]  # only the limiter slept, once, for everyone


async def test_rate_limit_without_retry_after_pauses_for_the_backoff(
    fake_time: FakeTime,
) -> None:
    limiter = make_limiter(fake_time)
    inner = Scripted(
        fake_time, fail(FailureKind.RATE_LIMITED), fail(FailureKind.RATE_LIMITED, retry_after=0)
    )

    await resilient(inner, fake_time, limiter=limiter, backoff_base_s=0.5).generate(TASK)

    assert inner.times == [START, START + 0.5, START + 1.5]


async def test_with_adaptive_concurrency_a_bare_429_lowers_the_limit_and_waits_alone(
    fake_time: FakeTime,
) -> None:
    """No ``Retry-After``: the lower limit is everyone's answer; only this call backs off."""
    limiter = make_limiter(fake_time)
    gate = AdaptiveConcurrency(64, initial=10, clock=fake_time.clock)
    inner = Scripted(fake_time, fail(FailureKind.RATE_LIMITED, "429"))
    generator = resilient(inner, fake_time, limiter=limiter, concurrency=gate)

    result = await generator.generate(TASK)

    assert result.attempts == 2
    assert gate.limit == 8  # 10 * 0.8
    assert limiter.paused_until is None
    assert fake_time.sleeps == [1.0]  # this call's own backoff
    assert gate.in_flight == 0


async def test_with_adaptive_concurrency_retry_after_still_pauses_everyone(
    fake_time: FakeTime,
) -> None:
    limiter = make_limiter(fake_time)
    gate = AdaptiveConcurrency(64, initial=10, clock=fake_time.clock)
    inner = Scripted(fake_time, fail(FailureKind.RATE_LIMITED, "429", retry_after=3.0))

    first, second = await asyncio.gather(
        resilient(inner, fake_time, limiter=limiter, concurrency=gate).generate(TASK),
        resilient(inner, fake_time, limiter=limiter, concurrency=gate).generate(TASK),
    )

    assert inner.times == [START, START + 3.0, START + 3.0]
    assert (first.attempts, second.attempts) == (2, 1)
    assert gate.limit == 8


async def test_retry_after_is_capped_at_the_backoff_maximum(fake_time: FakeTime) -> None:
    limiter = make_limiter(fake_time)
    inner = Scripted(fake_time, fail(FailureKind.RATE_LIMITED, retry_after=3600))

    await resilient(inner, fake_time, limiter=limiter, backoff_max_s=30).generate(TASK)

    assert inner.times == [START, START + 30.0]


async def test_rate_limit_without_a_limiter_sleeps_the_task(fake_time: FakeTime) -> None:
    inner = Scripted(fake_time, fail(FailureKind.RATE_LIMITED, retry_after=2.0))

    result = await resilient(inner, fake_time, limiter=None).generate(TASK)

    assert result.attempts == 2
    assert fake_time.sleeps == [2.0]


async def test_a_rate_limited_task_that_gives_up_still_pauses_the_worker(
    fake_time: FakeTime,
) -> None:
    limiter = make_limiter(fake_time)
    inner = Scripted(
        fake_time,
        fail(FailureKind.RATE_LIMITED, "OpenAI rate limit (429)", retry_after=1.0),
        fail(FailureKind.RATE_LIMITED, "OpenAI rate limit (429)", retry_after=4.0),
    )

    with pytest.raises(GenerationError) as caught:
        await resilient(inner, fake_time, limiter=limiter, max_retries=1).generate(TASK)

    assert caught.value.kind is FailureKind.RATE_LIMITED
    assert caught.value.retry_after == 4.0
    assert caught.value.reason == "gave up after 2 attempts: OpenAI rate limit (429)"
    assert limiter.paused_until == fake_time.now + 4.0


async def test_rate_limits_and_transient_errors_share_max_retries(fake_time: FakeTime) -> None:
    inner = Scripted(
        fake_time,
        fail(FailureKind.RATE_LIMITED, retry_after=1.0),
        fail(FailureKind.TRANSIENT),
        fail(FailureKind.TRANSIENT, "last"),
    )

    with pytest.raises(GenerationError) as caught:
        await resilient(inner, fake_time, max_retries=2).generate(TASK)

    assert caught.value.reason == "gave up after 3 attempts: last"
    assert caught.value.attempts == 3  # so the request's `retried` counts them
    assert fake_time.sleeps == [1.0, 2.0]  # the transient backoff continues the sequence


async def test_usage_and_outcomes_are_recorded_for_every_attempt(
    fake_time: FakeTime, attempts: Attempts
) -> None:
    limiter = make_limiter(fake_time)
    inner = Scripted(
        fake_time,
        fail(FailureKind.RATE_LIMITED, retry_after=1.0),
        fail(FailureKind.TRANSIENT),
        invalid("bio: too long", 100, 10),
        ok(200, 50),
    )
    generator = resilient(inner, fake_time, limiter=limiter, on_attempt=attempts)

    result = await generator.generate(TASK)

    assert result.attempts == 4
    assert result.usage == TokenUsage(prompt_tokens=300, completion_tokens=60)
    assert attempts.outcomes == ["rate_limited", "transient", "invalid_output", "ok"]
    assert [usage.total_tokens for _, _, usage in attempts.calls] == [0, 0, 110, 250]
    assert all(seconds >= 0 for _, seconds, _ in attempts.calls)
    assert set(attempts.outcomes) <= set(OUTCOMES)


async def test_an_unexpected_exception_is_reported_and_raised(
    fake_time: FakeTime, attempts: Attempts
) -> None:
    bug = RuntimeError("bug")
    inner = Scripted(fake_time, bug)

    with pytest.raises(RuntimeError) as caught:
        await resilient(inner, fake_time, on_attempt=attempts).generate(TASK)

    assert caught.value is bug
    assert attempts.outcomes == ["fatal"]


async def test_the_token_bucket_is_settled_with_the_real_usage(fake_time: FakeTime) -> None:
    limiter = make_limiter(fake_time, tpm=10_000)
    inner = Scripted(
        fake_time,
        fail(FailureKind.TRANSIENT),  # no usage reported: the estimate stays taken
        invalid("bio: too long", 100, 50),  # 150 used: 850 given back
        ok(200, 100),  # 300 used: 700 given back
    )

    await resilient(inner, fake_time, limiter=limiter, backoff_base_s=0.001).generate(TASK)

    refilled = (fake_time.now - START) * 10_000 / 60
    expected = 10_000 - (ESTIMATE + 150 + 300) + refilled
    assert limiter.available_tokens == pytest.approx(expected)


async def test_the_estimate_is_made_for_each_attempts_task(fake_time: FakeTime) -> None:
    seen: list[GenerationTask] = []

    def estimate(task: GenerationTask) -> int:
        seen.append(task)
        return 10

    inner = Scripted(fake_time, invalid("bio: too long"))
    generator = ResilientGenerator(
        inner,
        Retrier(
            limiter=make_limiter(fake_time, tpm=600),
            max_retries=0,
            max_invalid_retries=1,
            backoff_base_s=1,
            backoff_max_s=1,
            sleep=fake_time.sleep,
        ),
        estimate_tokens=estimate,
    )

    await generator.generate(TASK)

    assert [task.previous_error for task in seen] == [None, "invalid model output: bio: too long"]


def test_build_resilient_generator_limits_only_openai(fake_time: FakeTime) -> None:
    settings = Settings(
        generator="offline",
        openai_api_key=None,
        openai_rpm=120,
        openai_tpm=30_000,
        generation_max_retries=4,
        generation_max_invalid_retries=1,
    )

    wrapped = build_resilient_generator(Scripted(fake_time, name="openai"), settings)
    offline = build_resilient_generator(Scripted(fake_time, name="offline"), settings)

    assert wrapped.limiter is not None
    assert (wrapped.limiter.rpm, wrapped.limiter.tpm) == (120, 30_000)
    assert wrapped.name == "openai"
    assert offline.limiter is None
    assert offline.concurrency is None


def test_adaptive_concurrency_is_capped_by_the_setting_and_can_be_turned_off(
    fake_time: FakeTime,
) -> None:
    adaptive = Settings(generation_concurrency=48)
    fixed = Settings(generation_concurrency=48, generation_adaptive_concurrency=False)

    wrapped = build_resilient_generator(Scripted(fake_time, name="openai"), adaptive)
    unwrapped = build_resilient_generator(Scripted(fake_time, name="openai"), fixed)

    assert wrapped.concurrency is not None
    assert (wrapped.concurrency.limit, wrapped.concurrency.ceiling) == (8, 48)
    assert unwrapped.concurrency is None


def test_negative_limits_are_rejected(fake_time: FakeTime) -> None:
    with pytest.raises(ValueError, match="negative"):
        resilient(Scripted(fake_time), fake_time, max_retries=-1)
