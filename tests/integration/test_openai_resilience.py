"""ResilientGenerator + RateLimiter + OpenAIGenerator through the real SDK and real HTTP.

The fake server records when each request arrived and when each answer was sent
(``fake.replies``), so the tests assert orderings and lower bounds on those
timestamps (e.g. "no request arrived within Retry-After of a 429 being sent"),
never upper bounds on how long something took.
"""

import asyncio
from collections.abc import AsyncIterator, Callable

import pytest
from openai import AsyncOpenAI

from persona_contracts import BigFive, Location, Skeleton, TokenUsage
from persona_infra.settings import Settings
from persona_llm.errors import FailureKind, GenerationError
from persona_llm.rate_limit import RateLimiter
from persona_llm.retry import Retrier
from persona_worker.generators.base import GenerationTask
from persona_worker.generators.openai_generator import OpenAIGenerator
from persona_worker.generators.prompts import estimate_tokens
from persona_worker.resilience import ResilientGenerator, build_resilient_generator
from tests.support.fake_openai import (
    FakeOpenAI,
    ReplyRecord,
    delay,
    malformed,
    ok,
    refusal,
    status,
)

pytestmark = pytest.mark.usefixtures("fresh_fake")

MODEL = "gpt-test-mini"
SKELETON = Skeleton(
    age=41,
    gender="male",
    location=Location(city="Leeds", country="United Kingdom", country_code="GB"),
    occupation="bus driver",
    personality=BigFive(
        openness=0.4,
        conscientiousness=0.8,
        extraversion=0.6,
        agreeableness=0.5,
        neuroticism=0.2,
    ),
)


def task(ordinal: int = 0) -> GenerationTask:
    return GenerationTask(
        brief="People who plan trips on public transport",
        skeleton=SKELETON,
        ordinal=ordinal,
        seed=ordinal,
    )


class Attempts:
    def __init__(self) -> None:
        self.outcomes: list[str] = []
        self.usage: list[TokenUsage] = []
        self.rate_limited = asyncio.Event()

    def __call__(self, outcome: str, seconds: float, usage: TokenUsage) -> None:
        self.outcomes.append(outcome)
        self.usage.append(usage)
        if outcome == "rate_limited":
            # Waiters run only after the reporting task yields: by then it has paused.
            self.rate_limited.set()


MakeResilient = Callable[..., ResilientGenerator]


@pytest.fixture
def attempts() -> Attempts:
    return Attempts()


@pytest.fixture
async def make_resilient(fake: FakeOpenAI, attempts: Attempts) -> AsyncIterator[MakeResilient]:
    made: list[ResilientGenerator] = []

    def make(
        *,
        timeout: float = 5.0,
        limiter: RateLimiter | None = None,
        max_retries: int = 3,
        max_invalid_retries: int = 2,
        backoff_base_s: float = 0.05,
        backoff_max_s: float = 2.0,
    ) -> ResilientGenerator:
        client = AsyncOpenAI(
            api_key="test-key", base_url=fake.base_url, timeout=timeout, max_retries=0
        )
        generator = ResilientGenerator(
            OpenAIGenerator(client, model=MODEL),
            Retrier(
                limiter=limiter or RateLimiter(rpm=600, tpm=1_000_000),
                max_retries=max_retries,
                max_invalid_retries=max_invalid_retries,
                backoff_base_s=backoff_base_s,
                backoff_max_s=backoff_max_s,
                on_attempt=attempts,
            ),
            estimate_tokens=estimate_tokens,
        )
        made.append(generator)
        return generator

    yield make
    for generator in made:
        await generator.aclose()


def _by_arrival(fake: FakeOpenAI) -> list[ReplyRecord]:
    return sorted(fake.replies, key=lambda record: record.number)


def _assert_retry_after_honoured(fake: FakeOpenAI) -> None:
    """No request arrived after a 429 was sent and before its Retry-After had passed."""
    replies = fake.replies
    for limited in (r for r in replies if r.status_code == 429):
        assert limited.retry_after is not None
        not_before = limited.sent + limited.retry_after
        for other in replies:
            if other.arrived > limited.sent:
                assert other.arrived >= not_before, (
                    f"request {other.number} arrived {not_before - other.arrived:.3f} s "
                    f"before the Retry-After of the 429 answering request {limited.number} ended"
                )


async def test_a_429_storm_pauses_every_caller_for_retry_after(
    fake: FakeOpenAI, make_resilient: MakeResilient, attempts: Attempts
) -> None:
    # The first three requests get a 429 (Retry-After: 1 s), answered only once all four
    # concurrent requests have arrived, so every later arrival is a retry or a new call.
    fake.script(*[status(429, retry_after=1.0).held(4)] * 3)
    generator = make_resilient()

    wave = [asyncio.create_task(generator.generate(task(i))) for i in range(4)]
    await attempts.rate_limited.wait()
    # A call that starts after a 429 was handled waits too, though it never saw a 429.
    latecomer = await generator.generate(task(4))
    results = [*await asyncio.gather(*wave), latecomer]

    assert all(result.draft.name for result in results)
    assert latecomer.attempts == 1
    assert sorted(result.attempts for result in results) == [1, 1, 2, 2, 2]
    assert fake.calls == 8
    assert sorted(attempts.outcomes) == ["ok"] * 5 + ["rate_limited"] * 3
    _assert_retry_after_honoured(fake)
    replies = _by_arrival(fake)
    first_429_sent = min(r.sent for r in replies if r.status_code == 429)
    assert all(r.arrived >= first_429_sent + 1.0 for r in replies[4:])


async def test_consecutive_429s_honour_each_retry_after(
    fake: FakeOpenAI, make_resilient: MakeResilient, attempts: Attempts
) -> None:
    fake.script(
        status(429, retry_after=0.4),
        status(429, headers={"retry-after-ms": "300", "retry-after": "9"}),
        ok(),
    )

    result = await make_resilient().generate(task())

    assert result.attempts == 3
    assert attempts.outcomes == ["rate_limited", "rate_limited", "ok"]
    first, second, third = _by_arrival(fake)
    assert second.arrived >= first.sent + 0.4
    assert third.arrived >= second.sent + 0.3  # retry-after-ms wins over retry-after


async def test_server_errors_and_a_timeout_are_retried_then_succeed(
    fake: FakeOpenAI, make_resilient: MakeResilient, attempts: Attempts
) -> None:
    fake.script(status(500), status(503), delay(2.0), ok(prompt_tokens=400, completion_tokens=90))
    generator = make_resilient(timeout=0.3, backoff_base_s=0.05)

    result = await generator.generate(task())

    assert result.attempts == 4
    assert result.usage == TokenUsage(prompt_tokens=400, completion_tokens=90)
    assert attempts.outcomes == ["transient", "transient", "transient", "ok"]
    assert fake.calls == 4
    first, second, third, fourth = _by_arrival(fake)
    assert [r.status_code for r in (first, second, fourth)] == [500, 503, 200]
    # Equal jitter waits at least half the nominal backoff: 0.05 s, then 0.1 s, then 0.2 s.
    assert second.arrived >= first.sent + 0.025
    assert third.arrived >= second.sent + 0.05
    assert fourth.arrived >= third.arrived + 0.3 + 0.1  # the client timeout, then the backoff


async def test_server_errors_that_persist_fail_after_max_retries(
    fake: FakeOpenAI, make_resilient: MakeResilient
) -> None:
    fake.script(*[status(502)] * 3)

    with pytest.raises(GenerationError) as caught:
        await make_resilient(max_retries=2, backoff_base_s=0.01).generate(task())

    assert caught.value.kind is FailureKind.TRANSIENT
    assert caught.value.reason == "gave up after 3 attempts: OpenAI server error (502)"
    assert fake.calls == 3


async def test_malformed_output_is_retried_with_the_error_fed_back(
    fake: FakeOpenAI, make_resilient: MakeResilient, attempts: Attempts
) -> None:
    fake.script(malformed("fields", prompt_tokens=500, completion_tokens=8), ok())

    result = await make_resilient().generate(task())

    assert result.attempts == 2
    assert attempts.outcomes == ["invalid_output", "ok"]
    assert result.usage.prompt_tokens >= 500  # the rejected answer's tokens are counted
    first, second = fake.requests
    assert [m["role"] for m in first["messages"]] == ["system", "user"]
    assert [m["role"] for m in second["messages"]] == ["system", "user", "user"]
    correction = second["messages"][-1]["content"]
    assert "bio: Field required" in correction
    assert "rejected" in correction


async def test_malformed_output_every_time_fails_cleanly(
    fake: FakeOpenAI, make_resilient: MakeResilient, attempts: Attempts
) -> None:
    fake.script(*[malformed("json", prompt_tokens=100, completion_tokens=10)] * 3)

    with pytest.raises(GenerationError) as caught:
        await make_resilient(max_invalid_retries=2).generate(task())

    assert caught.value.kind is FailureKind.INVALID_OUTPUT
    assert caught.value.reason.startswith("invalid model output after 3 attempts: not valid JSON")
    assert caught.value.usage == TokenUsage(prompt_tokens=300, completion_tokens=30)
    assert fake.calls == 3
    assert attempts.outcomes == ["invalid_output"] * 3
    assert all("not valid JSON" in body["messages"][-1]["content"] for body in fake.requests[1:])


@pytest.mark.parametrize(
    "reply",
    [refusal("I can't help with that."), status(401), status(429, error_code="insufficient_quota")],
    ids=["refusal", "bad-key", "no-quota"],
)
async def test_fatal_failures_are_not_retried(
    fake: FakeOpenAI, make_resilient: MakeResilient, attempts: Attempts, reply: object
) -> None:
    fake.script(reply)  # type: ignore[arg-type]

    with pytest.raises(GenerationError) as caught:
        await make_resilient().generate(task())

    assert caught.value.kind is FailureKind.FATAL
    assert fake.calls == 1
    assert attempts.outcomes == ["fatal"]


async def test_build_resilient_generator_from_settings(fake: FakeOpenAI) -> None:
    settings = Settings(
        openai_api_key="test-key",
        openai_base_url=fake.base_url,
        openai_model=MODEL,
        openai_rpm=60,
        openai_tpm=100_000,
        generation_backoff_base_s=0.01,
    )
    generator = build_resilient_generator(OpenAIGenerator.from_settings(settings), settings)
    fake.script(status(500))
    try:
        result = await generator.generate(task())
    finally:
        await generator.aclose()

    assert result.attempts == 2
    assert fake.calls == 2
    assert generator.limiter is not None
    assert generator.limiter.available_requests < 59  # two calls taken from a bucket of 60
