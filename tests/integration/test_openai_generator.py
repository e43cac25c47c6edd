"""The OpenAI generator through the real ``openai`` SDK against a fake HTTP server.

Retry timing relies on the SDK: it honours ``Retry-After`` (up to 120 s) and
otherwise backs off 0.5 s * 2**n (capped at 8 s, minus up to 25 % jitter), so
clients here use ``max_retries`` of 0 or 1 to keep the file fast.
"""

import asyncio
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator

import pytest
from openai import AsyncOpenAI

from persona_pipeline.consumers.generators.base import GenerationError, GenerationTask
from persona_pipeline.consumers.generators.openai_generator import OpenAIGenerator
from persona_pipeline.consumers.generators.prompts import build_messages, describe_level
from persona_pipeline.contracts import BigFive, Location, PersonaDraft, Skeleton, TokenUsage
from persona_pipeline.core.settings import Settings
from tests.support.fake_openai import (
    FakeOpenAI,
    Reply,
    delay,
    malformed,
    ok,
    refusal,
    status,
    truncated,
)

MODEL = "gpt-test-mini"
API_KEY = "test-key"
SECRET_KEY = "sk-test-do-not-leak-0123456789abcdef"

SKELETON = Skeleton(
    age=34,
    gender="female",
    location=Location(city="Porto", country="Portugal", country_code="PT"),
    occupation="hospital pharmacist",
    personality=BigFive(
        openness=0.82,
        conscientiousness=0.55,
        extraversion=0.12,
        agreeableness=0.7,
        neuroticism=0.3,
    ),
)
TASK = GenerationTask(
    brief="Commuters who cycle to work and want safer routes",
    skeleton=SKELETON,
    ordinal=0,
    seed=2**40 + 7,
)

MakeGenerator = Callable[..., OpenAIGenerator]


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_fake(fake: FakeOpenAI) -> Iterator[None]:
    fake.reset()
    fake.latency = 0.0
    yield
    assert fake.wait_idle(), "a request was still running on the fake after the test"


@pytest.fixture
async def make_generator(fake: FakeOpenAI) -> AsyncIterator[MakeGenerator]:
    made: list[OpenAIGenerator] = []

    def make(
        *,
        max_retries: int = 0,
        timeout: float = 5.0,
        api_key: str = API_KEY,
        base_url: str | None = None,
    ) -> OpenAIGenerator:
        client = AsyncOpenAI(
            api_key=api_key,
            base_url=base_url or fake.base_url,
            timeout=timeout,
            max_retries=max_retries,
        )
        generator = OpenAIGenerator(client, model=MODEL, temperature=0.7)
        made.append(generator)
        return generator

    yield make
    for generator in made:
        await generator.aclose()


def _user_text(body: dict[str, object]) -> str:
    messages = body["messages"]
    assert isinstance(messages, list)
    return "\n".join(m["content"] for m in messages if m["role"] == "user")


async def test_valid_response_becomes_generated(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(ok(prompt_tokens=321, completion_tokens=54))
    generator = make_generator()

    result = await generator.generate(TASK)

    assert generator.name == "openai"
    assert generator.model == MODEL
    assert type(result.draft) is PersonaDraft
    assert PersonaDraft.model_validate(result.draft.model_dump()) == result.draft
    assert "Porto" in result.draft.bio  # the fake echoes the skeleton it was sent
    assert result.usage == TokenUsage(prompt_tokens=321, completion_tokens=54)
    assert result.usage.total_tokens == 375


async def test_request_carries_model_schema_and_skeleton(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    await make_generator().generate(TASK)

    assert fake.calls_by_path == {"/v1/chat/completions": 1}
    body = fake.requests[0]
    assert body["model"] == MODEL
    assert body["temperature"] == 0.7
    assert body["seed"] == TASK.seed % 2**31
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert set(schema["required"]) == set(PersonaDraft.model_fields)
    assert schema["additionalProperties"] is False
    assert "default" not in json.dumps(schema)
    assert [m["role"] for m in body["messages"]] == ["system", "user"]
    prompt = _user_text(body)
    for fact in ("Porto", "Portugal", "hospital pharmacist", "34", "female"):
        assert fact in prompt
    assert "high openness (0.82)" in prompt
    assert TASK.brief in prompt
    assert fake.request_headers[0]["authorization"] == f"Bearer {API_KEY}"


async def test_rate_limit_honours_retry_after(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    # 0.8 s is above the SDK's first backoff (at most 0.5 s): passing proves it waited
    # for Retry-After rather than its own schedule.
    fake.script(status(429, retry_after=0.8), ok())
    started = time.monotonic()

    result = await make_generator(max_retries=1).generate(TASK)

    assert time.monotonic() - started >= 0.8
    first, second = fake.call_times
    assert second - first >= 0.8
    assert result.draft.name


async def test_rate_limit_that_persists_is_retryable(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(status(429, retry_after=0.05), status(429, retry_after=0.05))

    with pytest.raises(GenerationError) as caught:
        await make_generator(max_retries=1).generate(TASK)

    assert caught.value.retryable
    assert "429" in caught.value.reason
    assert fake.calls == 2


async def test_exhausted_quota_is_not_retryable(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(status(429, error_code="insufficient_quota"))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert not caught.value.retryable
    assert "quota" in caught.value.reason


async def test_server_error_is_retried_by_the_sdk(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(status(500), ok())

    result = await make_generator(max_retries=1).generate(TASK)

    assert result.draft.name
    assert fake.calls == 2


async def test_server_error_that_persists_is_retryable(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(status(503))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.retryable
    assert "503" in caught.value.reason


@pytest.mark.parametrize(
    ("reply", "detail"),
    [(malformed("json"), "not valid JSON"), (malformed("fields"), "bio")],
    ids=["not-json", "missing-fields"],
)
async def test_malformed_output_is_retryable(
    fake: FakeOpenAI, make_generator: MakeGenerator, reply: Reply, detail: str
) -> None:
    fake.script(reply)

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.retryable
    assert caught.value.reason.startswith("invalid model output")
    assert detail in caught.value.reason


async def test_truncated_output_is_retryable(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(truncated())

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.retryable
    assert "invalid model output" in caught.value.reason


async def test_refusal_is_not_retryable(fake: FakeOpenAI, make_generator: MakeGenerator) -> None:
    fake.script(refusal("I can't help with that."))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert not caught.value.retryable
    assert caught.value.reason == "model refused: I can't help with that."


async def test_rejected_api_key_names_the_setting_without_leaking_it(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(status(401))  # the fake echoes the key in its error message

    with pytest.raises(GenerationError) as caught:
        await make_generator(api_key=SECRET_KEY).generate(TASK)

    assert SECRET_KEY in str(caught.value.__cause__)  # the leak the mapping must stop
    assert not caught.value.retryable
    assert "OPENAI_API_KEY" in caught.value.reason
    assert SECRET_KEY not in caught.value.reason
    assert "sk-test" not in caught.value.reason


@pytest.mark.parametrize(
    ("code", "hint"), [(400, "OPENAI_MODEL"), (403, "OPENAI_MODEL"), (404, "OPENAI_MODEL")]
)
async def test_client_errors_are_not_retryable(
    fake: FakeOpenAI, make_generator: MakeGenerator, code: int, hint: str
) -> None:
    fake.script(status(code))

    with pytest.raises(GenerationError) as caught:
        await make_generator(max_retries=1).generate(TASK)

    assert not caught.value.retryable
    assert str(code) in caught.value.reason
    assert hint in caught.value.reason
    assert fake.calls == 1  # the SDK does not retry these either


async def test_timeout_is_retryable(fake: FakeOpenAI, make_generator: MakeGenerator) -> None:
    fake.script(delay(1.0))

    with pytest.raises(GenerationError) as caught:
        await make_generator(timeout=0.2, max_retries=0).generate(TASK)

    assert caught.value.retryable
    assert "timed out" in caught.value.reason


async def test_unreachable_server_is_retryable(make_generator: MakeGenerator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there

    with pytest.raises(GenerationError) as caught:
        await make_generator(base_url=f"http://127.0.0.1:{port}/v1").generate(TASK)

    assert caught.value.retryable
    assert "OPENAI_BASE_URL" in caught.value.reason


async def test_previous_error_is_fed_back(fake: FakeOpenAI, make_generator: MakeGenerator) -> None:
    await make_generator().generate(TASK, previous_error="tags: too many items")

    messages = fake.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "user"]
    assert "tags: too many items" in messages[-1]["content"]


async def test_concurrent_calls_share_the_client(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.latency = 0.2
    generator = make_generator()
    tasks = [
        GenerationTask(brief=TASK.brief, skeleton=SKELETON, ordinal=i, seed=i) for i in range(5)
    ]

    results = await asyncio.gather(*(generator.generate(task) for task in tasks))

    assert len({result.draft.name for result in results}) > 1
    assert fake.calls == 5
    assert fake.max_in_flight == 5
    assert fake.in_flight == 0
    assert sorted(body["seed"] for body in fake.requests) == list(range(5))


async def test_from_settings(fake: FakeOpenAI) -> None:
    settings = Settings(
        openai_api_key=API_KEY,
        openai_base_url=fake.base_url,
        openai_model="gpt-from-settings",
        openai_temperature=0.3,
        openai_timeout_s=5,
        openai_max_retries=0,
    )
    generator = OpenAIGenerator.from_settings(settings)
    try:
        result = await generator.generate(TASK)
    finally:
        await generator.aclose()

    assert generator.model == "gpt-from-settings"
    assert result.draft.name
    body = fake.requests[0]
    assert body["model"] == "gpt-from-settings"
    assert body["temperature"] == 0.3


def test_from_settings_needs_a_key() -> None:
    with pytest.raises(ValueError, match="OPENAI_API_KEY"):
        OpenAIGenerator.from_settings(Settings(generator="offline", openai_api_key=None))


def test_prompt_states_locale_and_personality_in_words() -> None:
    task = GenerationTask(brief="Cyclists", skeleton=SKELETON, ordinal=1, seed=1, locale="de-DE")
    system, user = build_messages(task)

    assert system["role"] == "system"
    assert "de-DE" in str(user["content"])
    assert "very low extraversion (0.12)" in str(user["content"])
    assert [describe_level(s) for s in (0.1, 0.3, 0.5, 0.82, 0.9)] == [
        "very low",
        "low",
        "moderate",
        "high",
        "very high",
    ]
