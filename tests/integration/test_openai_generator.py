"""The OpenAI generator through the real ``openai`` SDK against a fake HTTP server.

The generator makes exactly one request per ``generate`` (retrying is
``ResilientGenerator``'s job, see ``test_openai_resilience.py``), so these tests
check how each single answer is mapped onto a ``FailureKind``. Clients here are
built with ``max_retries=0``, as ``from_settings`` builds them. The fake checks a
strict schema as OpenAI does, so every successful call here also proves that the
schema on the wire is one strict mode accepts.
"""

import asyncio
import dataclasses
import json
import socket
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from email.utils import format_datetime

import openai
import pytest
from openai import AsyncOpenAI
from openai.lib import type_to_response_format_param
from pydantic import BaseModel, Field

from persona_contracts import BigFive, Location, PersonaDraft, Skeleton, TokenUsage
from persona_infra.settings import Settings
from persona_llm.chat import StructuredChat, retry_after_seconds
from persona_llm.errors import FailureKind, GenerationError
from persona_worker.generators.base import GenerationTask
from persona_worker.generators.openai_generator import (
    OpenAIGenerator,
    PersonaDraftResponse,
    seed_for,
)
from persona_worker.generators.prompts import (
    EXPECTED_COMPLETION_TOKENS,
    build_messages,
    describe_level,
    estimate_tokens,
)
from tests.support.factories import correcting_once
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

pytestmark = pytest.mark.usefixtures("fresh_fake")

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


async def test_the_schema_on_the_wire_is_accepted_by_strict_mode(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    result = await make_generator().generate(TASK)

    assert result.draft.name
    assert [reply.status_code for reply in fake.replies] == [200]
    schema = fake.requests[0]["response_format"]["json_schema"]["schema"]
    assert "maxLength" not in json.dumps(schema)
    assert schema["properties"]["tags"]["maxItems"] == 12  # documented keywords stay


def _object_schema(properties: dict[str, object], **extra: object) -> dict[str, object]:
    return {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
        **extra,
    }


_POINT = _object_schema({"x": {"type": "integer", "default": 0}})


@pytest.mark.parametrize(
    ("schema", "problem"),
    [
        (
            _object_schema({"name": {"type": "string", "maxLength": 120}}),
            "In context=('properties', 'name'), 'maxLength' is not permitted.",
        ),
        (
            _object_schema({"at": {"$ref": "#/$defs/Point"}}, **{"$defs": {"Point": _POINT}}),
            "In context=('$defs', 'Point', 'properties', 'x'), 'default' is not permitted.",
        ),
        (
            {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]},
            "In context=(), 'additionalProperties' is required to be supplied and to be false.",
        ),
        (
            {
                **_object_schema({"name": {"type": "string"}, "age": {"type": "integer"}}),
                "required": ["name"],
            },
            "In context=(), 'required' is required to be supplied and to be an array including "
            "every key in properties. Missing 'age'.",
        ),
    ],
    ids=["max-length", "defs-default", "open-object", "optional-property"],
)
async def test_the_fake_rejects_what_strict_mode_rejects(
    fake: FakeOpenAI, schema: dict[str, object], problem: str
) -> None:
    client = AsyncOpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError) as caught:
            await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Hello"}],
                response_format={
                    "type": "json_schema",
                    "json_schema": {"name": "Probe", "strict": True, "schema": schema},
                },
            )
    finally:
        await client.close()

    assert caught.value.status_code == 400
    assert caught.value.body == {
        "message": f"Invalid schema for response_format 'Probe': {problem}",
        "type": "invalid_request_error",
        "param": "response_format",
        "code": None,
    }
    assert fake.requests == []  # refused before any scripted reply


async def test_the_sdk_schema_as_is_would_be_refused(fake: FakeOpenAI) -> None:
    response_format = type_to_response_format_param(PersonaDraftResponse)
    assert isinstance(response_format, dict)
    client = AsyncOpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    try:
        with pytest.raises(openai.BadRequestError, match="'maxLength' is not permitted"):
            await client.chat.completions.create(
                model=MODEL,
                messages=[{"role": "user", "content": "Hello"}],
                response_format=response_format,
            )
    finally:
        await client.close()


async def test_an_answer_over_a_limit_the_schema_omits_is_retried_with_the_error(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    too_long = {
        "name": "A" * 300,
        "bio": "Lives in Porto and cycles to the hospital.",
        "interests": ["cycling"],
        "goals": ["Find a safer route."],
        "pain_points": ["Cars parked in the bike lane."],
        "tags": ["cyclist"],
    }
    fake.script(ok(content=too_long))
    outcomes: list[str] = []
    generator = correcting_once(
        make_generator(),
        on_attempt=lambda outcome, _seconds, _usage: outcomes.append(outcome),
    )

    result = await generator.generate(TASK)

    assert outcomes == ["invalid_output", "ok"]
    assert result.attempts == 2
    assert 0 < len(result.draft.name) <= 120
    first, second = fake.requests
    assert len(first["messages"]) == 2
    correction = second["messages"][-1]["content"]
    assert "name: String should have at most 120 characters" in correction


async def test_rate_limit_is_rate_limited_with_retry_after(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(status(429, retry_after=0.8))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.RATE_LIMITED
    assert caught.value.retryable
    assert caught.value.retry_after == pytest.approx(0.8)
    assert "429" in caught.value.reason
    assert "Rate limit reached" in caught.value.reason  # the server's own message
    assert fake.calls == 1  # the generator never retries by itself


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
    ids=["ms-wins", "seconds", "garbage", "none"],
)
async def test_rate_limit_reads_retry_after_headers(
    fake: FakeOpenAI,
    make_generator: MakeGenerator,
    headers: dict[str, str],
    expected: float | None,
) -> None:
    fake.script(status(429, headers=headers))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.RATE_LIMITED
    assert caught.value.retry_after == expected


def test_retry_after_accepts_an_http_date() -> None:
    now = datetime(2030, 1, 1, 12, 0, 0, tzinfo=UTC).timestamp()
    later = format_datetime(datetime(2030, 1, 1, 12, 0, 30, tzinfo=UTC), usegmt=True)
    earlier = format_datetime(datetime(2030, 1, 1, 11, 0, 0, tzinfo=UTC), usegmt=True)

    assert retry_after_seconds({"Retry-After": later}, now=now) == 30.0
    assert retry_after_seconds({"retry-after": earlier}, now=now) == 0.0
    assert retry_after_seconds({"retry-after-ms": "-5", "retry-after": "3"}) == 3.0
    assert retry_after_seconds({"retry-after": "inf"}) is None


async def test_exhausted_quota_is_fatal(fake: FakeOpenAI, make_generator: MakeGenerator) -> None:
    fake.script(status(429, retry_after=1, error_code="insufficient_quota"))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.FATAL
    assert not caught.value.retryable
    assert "quota" in caught.value.reason
    assert "billing" in caught.value.reason


@pytest.mark.parametrize("code", [500, 502, 503, 408, 409])
async def test_server_errors_are_transient(
    fake: FakeOpenAI, make_generator: MakeGenerator, code: int
) -> None:
    fake.script(status(code))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.TRANSIENT
    assert str(code) in caught.value.reason
    assert fake.calls == 1


@pytest.mark.parametrize(
    ("reply", "detail"),
    [(malformed("json"), "not valid JSON"), (malformed("fields"), "bio")],
    ids=["not-json", "missing-fields"],
)
async def test_malformed_output_is_invalid_output_with_its_usage(
    fake: FakeOpenAI, make_generator: MakeGenerator, reply: Reply, detail: str
) -> None:
    fake.script(dataclasses.replace(reply, prompt_tokens=300, completion_tokens=12))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.INVALID_OUTPUT
    assert caught.value.reason.startswith("invalid model output")
    assert detail in caught.value.reason
    assert caught.value.usage == TokenUsage(prompt_tokens=300, completion_tokens=12)


async def test_truncated_output_is_invalid_output(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(truncated())

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.INVALID_OUTPUT
    assert "cut off" in caught.value.reason
    assert caught.value.usage.total_tokens > 0


async def test_empty_content_is_invalid_output(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(ok(content="null"))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.INVALID_OUTPUT


async def test_refusal_is_fatal(fake: FakeOpenAI, make_generator: MakeGenerator) -> None:
    fake.script(refusal("I can't help with that."))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.FATAL
    assert not caught.value.retryable
    assert caught.value.reason == "model refused: I can't help with that."
    assert caught.value.usage.total_tokens > 0  # a refusal still costs tokens


async def test_rejected_api_key_names_the_setting_without_leaking_it(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    fake.script(status(401))  # the fake echoes the key in its error message

    with pytest.raises(GenerationError) as caught:
        await make_generator(api_key=SECRET_KEY).generate(TASK)

    assert SECRET_KEY in str(caught.value.__cause__)  # the leak the mapping must stop
    assert caught.value.kind is FailureKind.FATAL
    assert "OPENAI_API_KEY" in caught.value.reason
    assert SECRET_KEY not in caught.value.reason
    assert "sk-test" not in caught.value.reason


@pytest.mark.parametrize(
    ("code", "hint"), [(400, "OPENAI_MODEL"), (403, "OPENAI_MODEL"), (404, "OPENAI_MODEL")]
)
async def test_client_errors_are_fatal(
    fake: FakeOpenAI, make_generator: MakeGenerator, code: int, hint: str
) -> None:
    fake.script(status(code))

    with pytest.raises(GenerationError) as caught:
        await make_generator().generate(TASK)

    assert caught.value.kind is FailureKind.FATAL
    assert str(code) in caught.value.reason
    assert hint in caught.value.reason
    assert fake.calls == 1


async def test_timeout_is_transient(fake: FakeOpenAI, make_generator: MakeGenerator) -> None:
    fake.script(delay(1.0))

    with pytest.raises(GenerationError) as caught:
        await make_generator(timeout=0.2).generate(TASK)

    assert caught.value.kind is FailureKind.TRANSIENT
    assert "timed out" in caught.value.reason
    assert fake.calls == 1


async def test_unreachable_server_is_transient(make_generator: MakeGenerator) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # free once closed: nothing listens there

    with pytest.raises(GenerationError) as caught:
        await make_generator(base_url=f"http://127.0.0.1:{port}/v1").generate(TASK)

    assert caught.value.kind is FailureKind.TRANSIENT
    assert "OPENAI_BASE_URL" in caught.value.reason


async def test_previous_error_is_fed_back(fake: FakeOpenAI, make_generator: MakeGenerator) -> None:
    task = dataclasses.replace(TASK, previous_error="tags: too many items")

    await make_generator().generate(task)

    messages = fake.requests[0]["messages"]
    assert [m["role"] for m in messages] == ["system", "user", "user"]
    assert "tags: too many items" in messages[-1]["content"]


async def test_variant_changes_seed_and_asks_for_a_different_person(
    fake: FakeOpenAI, make_generator: MakeGenerator
) -> None:
    generator = make_generator()
    await generator.generate(TASK)
    await generator.generate(dataclasses.replace(TASK, variant=1))

    first, second = fake.requests
    assert first["seed"] == seed_for(TASK) == TASK.seed % 2**31
    assert second["seed"] != first["seed"]
    assert "Variation" not in _user_text(first)
    assert "clearly different person" in _user_text(second)


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


class _Verdict(BaseModel):
    """Any response model, not only a persona's."""

    label: str = Field(max_length=40)
    score: int = Field(ge=1, le=5)


async def test_structured_chat_answers_any_response_model(fake: FakeOpenAI) -> None:
    client = AsyncOpenAI(api_key=API_KEY, base_url=fake.base_url, max_retries=0)
    chat = StructuredChat(client, _Verdict, model=MODEL)
    try:
        verdict, usage = await chat.complete(
            [{"role": "user", "content": "Rate this."}], headers={"X-Client-Request-Id": "r-1"}
        )
    finally:
        await client.close()

    assert verdict == _Verdict(label="example", score=1)  # the fake fills in the schema
    assert usage.total_tokens > 0
    body = fake.requests[0]
    assert "seed" not in body
    assert body["response_format"]["json_schema"]["name"] == "_Verdict"
    assert fake.request_headers[0]["x-client-request-id"] == "r-1"


async def test_from_settings(fake: FakeOpenAI) -> None:
    settings = Settings(
        openai_api_key=API_KEY,
        openai_base_url=fake.base_url,
        openai_model="gpt-from-settings",
        openai_temperature=0.3,
        openai_timeout_s=5,
    )
    generator = OpenAIGenerator.from_settings(settings)
    fake.script(status(500))
    try:
        with pytest.raises(GenerationError):
            await generator.generate(TASK)
        result = await generator.generate(TASK)
    finally:
        await generator.aclose()

    assert fake.calls == 2  # the SDK did not retry the 500 on its own
    assert generator.model == "gpt-from-settings"
    assert result.draft.name
    body = fake.requests[-1]
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


def test_token_estimate_covers_prompt_and_a_completion_budget() -> None:
    messages = build_messages(TASK)
    prompt_chars = sum(len(str(m["content"])) for m in messages)

    estimate = estimate_tokens(TASK)

    assert estimate > prompt_chars // 4 + EXPECTED_COMPLETION_TOKENS
    assert estimate < prompt_chars // 2 + 2 * EXPECTED_COMPLETION_TOKENS
    corrected = dataclasses.replace(TASK, previous_error="x" * 400)
    assert estimate_tokens(corrected) >= estimate + 100  # the correction turn is counted
