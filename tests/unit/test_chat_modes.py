"""StructuredChat's two response formats, its public request and answer halves, the
client the settings build, and the cached tokens read from an answer.

The SDK talks to an in-process ``MockTransport`` here, so what goes on the wire is
captured without a server; the fake server versions are in
``tests/integration/test_openai_compat.py``.
"""

import dataclasses
import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import pytest
from openai import AsyncAzureOpenAI, AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam
from pydantic import BaseModel, Field

from persona_audience.llm_planner import build_messages as plan_messages
from persona_audience.plan_draft import PlanDraft
from persona_contracts import (
    PersonaDraft,
    PersonaRequested,
    TokenUsage,
)
from persona_infra.settings import ResponseFormat, Settings
from persona_llm.chat import StructuredChat, openai_client
from persona_llm.errors import FailureKind, GenerationError
from persona_llm.schema import strict_response_format
from persona_worker.generators.openai_generator import (
    OpenAIGenerator,
    PersonaDraftResponse,
    seed_for,
)
from persona_worker.generators.prompts import SYSTEM_PROMPT, build_messages
from tests.support.factories import correcting_once, make_task

MODEL = "gpt-test-mini"
JSON_OBJECT = ResponseFormat.JSON_OBJECT
FENCED_JSON = re.compile(r"```json\n(.*?)\n```", re.DOTALL)

TASK = make_task(ordinal=3, seed=2**40 + 7)
PERSONA = {
    "name": "Ana Costa",
    "bio": "Cycles to the hospital in Porto every morning.",
    "interests": ["cycling"],
    "goals": ["Find a safer route."],
    "pain_points": ["Cars in the bike lane."],
    "tags": ["cyclist"],
}


class _Verdict(BaseModel):
    label: str = Field(max_length=40)
    score: int = Field(ge=1, le=5)


def completion(
    content: str | None = json.dumps(PERSONA),
    *,
    usage: Any = None,
    finish: str = "stop",
    refusal: str | None = None,
) -> dict[str, Any]:
    """A ``chat.completion`` body, as the API (or a Batch API output line) returns it."""
    body: dict[str, Any] = {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": content, "refusal": refusal},
                "finish_reason": finish,
            }
        ],
    }
    if usage is not None:
        body["usage"] = usage
    return body


def usage_with_cache(prompt: int, completion_tokens: int, cached: Any) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": cached},
    }


@dataclasses.dataclass
class Wire:
    """What a mock transport received, and what it answers next."""

    answers: list[httpx2.Response] = dataclasses.field(default_factory=list)
    requests: list[httpx2.Request] = dataclasses.field(default_factory=list)

    @property
    def bodies(self) -> list[dict[str, Any]]:
        return [json.loads(request.content) for request in self.requests]

    def handle(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        if self.answers:
            return self.answers.pop(0)
        return httpx2.Response(200, json=completion(usage=usage_with_cache(900, 80, 768)))


MakeClient = Callable[..., AsyncOpenAI]


@pytest.fixture
def wire() -> Wire:
    return Wire()


@pytest.fixture
async def make_client(wire: Wire) -> AsyncIterator[MakeClient]:
    made: list[AsyncOpenAI] = []

    def make(*, api_key: str = "test-key", **headers: str) -> AsyncOpenAI:
        client = AsyncOpenAI(
            api_key=api_key,
            base_url="http://llm.test/v1",
            max_retries=0,
            default_headers=headers or None,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(wire.handle)),
        )
        made.append(client)
        return client

    yield make
    for client in made:
        await client.close()


def chat_for(client: AsyncOpenAI, mode: ResponseFormat = ResponseFormat.JSON_SCHEMA) -> Any:
    return StructuredChat(
        client, PersonaDraftResponse, model=MODEL, temperature=0.7, response_format=mode
    )


def prompt_schema(system: str) -> dict[str, Any]:
    match = FENCED_JSON.search(system)
    assert match is not None, "no ```json block in the system message"
    schema: dict[str, Any] = json.loads(match.group(1))
    return schema


# --- request_body -----------------------------------------------------------------------


def test_a_json_schema_body_carries_the_strict_schema_and_the_messages_as_given(
    make_client: MakeClient,
) -> None:
    messages = build_messages(TASK)

    body = chat_for(make_client()).request_body(messages, seed=42)

    assert body == {
        "model": MODEL,
        "messages": messages,
        "temperature": 0.7,
        "seed": 42,
        "response_format": strict_response_format(PersonaDraftResponse),
        "stream": False,
    }


def test_temperature_and_seed_are_left_out_when_not_set(make_client: MakeClient) -> None:
    chat = StructuredChat(make_client(), _Verdict, model=MODEL)

    body = chat.request_body([{"role": "user", "content": "Rate this."}])

    assert set(body) == {"model", "messages", "response_format", "stream"}


def test_a_json_object_body_asks_for_json_mode_with_the_schema_ending_the_system_message(
    make_client: MakeClient,
) -> None:
    messages = build_messages(TASK)

    body = chat_for(make_client(), JSON_OBJECT).request_body(messages, seed=42)

    assert body["response_format"] == {"type": "json_object"}
    system, user = body["messages"]
    assert system["role"] == "system"
    assert system["content"].startswith(SYSTEM_PROMPT)
    assert system["content"].endswith("```")
    assert "single JSON object" in system["content"]
    schema = prompt_schema(system["content"])
    assert list(schema["properties"]) == list(PersonaDraftResponse.model_fields)
    assert schema["properties"]["name"]["maxLength"] == 120, "the limits guide the model"
    assert user == messages[1], "the user message is untouched"
    assert messages[0]["content"] == SYSTEM_PROMPT, "the caller's messages are not changed"


def test_the_json_mode_system_message_is_the_same_for_every_task(make_client: MakeClient) -> None:
    generator = OpenAIGenerator(make_client(), model=MODEL, response_format=JSON_OBJECT)
    other = dataclasses.replace(TASK, brief="Retired sailors", ordinal=9, previous_error="bio")

    first, second = generator.batch_line(TASK), generator.batch_line(other)

    assert first["messages"][0] == second["messages"][0], "the cacheable prefix must not vary"
    assert first["messages"][1] != second["messages"][1]
    assert "bio" in second["messages"][-1]["content"], "the correction turn stays last"


def test_without_a_system_message_the_schema_becomes_the_first_message(
    make_client: MakeClient,
) -> None:
    chat = StructuredChat(make_client(), _Verdict, model=MODEL, response_format=JSON_OBJECT)
    user: ChatCompletionMessageParam = {"role": "user", "content": "Rate this."}

    system, sent = chat.request_body([user])["messages"]

    assert system["role"] == "system"
    assert set(prompt_schema(system["content"])["properties"]) == {"label", "score"}
    assert sent == user


def test_the_planner_gets_the_plan_schema_in_json_mode(make_client: MakeClient) -> None:
    chat = StructuredChat(make_client(), PlanDraft, model=MODEL, response_format=JSON_OBJECT)
    messages = plan_messages(PersonaRequested(brief="urban cyclists", count=4))

    system = chat.request_body(messages)["messages"][0]["content"]

    assert set(prompt_schema(system)["properties"]) == set(PlanDraft.model_fields)


# --- complete sends request_body ---------------------------------------------------------


@pytest.mark.parametrize("mode", list(ResponseFormat))
async def test_complete_sends_exactly_the_request_body(
    make_client: MakeClient, wire: Wire, mode: ResponseFormat
) -> None:
    chat = chat_for(make_client(), mode)
    messages = build_messages(TASK)

    await chat.complete(messages, seed=42, headers={"X-Client-Request-Id": "r:3:0"})

    assert wire.bodies == [json.loads(json.dumps(chat.request_body(messages, seed=42)))]
    assert wire.requests[0].url.path == "/v1/chat/completions"
    assert wire.requests[0].headers["x-client-request-id"] == "r:3:0"


async def test_extra_headers_of_the_client_go_with_every_request(
    make_client: MakeClient, wire: Wire
) -> None:
    chat = chat_for(make_client(**{"X-Gateway-Token": "gw-secret-123"}))

    await chat.complete(build_messages(TASK))
    await chat.complete(build_messages(TASK))

    assert [r.headers["x-gateway-token"] for r in wire.requests] == ["gw-secret-123"] * 2
    assert wire.requests[0].headers["authorization"] == "Bearer test-key"


async def test_a_json_mode_answer_is_validated_and_the_error_fed_back(
    make_client: MakeClient, wire: Wire
) -> None:
    wire.answers.append(httpx2.Response(200, json=completion(json.dumps({"name": "Ana"}))))
    generator = correcting_once(
        OpenAIGenerator(make_client(), model=MODEL, response_format=JSON_OBJECT)
    )

    result = await generator.generate(TASK)

    assert result.draft.name == "Ana Costa"
    first, second = wire.bodies
    assert second["messages"][0] == first["messages"][0], "the schema stays in the system message"
    assert "bio: Field required" in second["messages"][-1]["content"]


# --- read_answer --------------------------------------------------------------------------


def test_read_answer_returns_the_model_and_its_tokens(make_client: MakeClient) -> None:
    body = completion(usage=usage_with_cache(1200, 90, 1024))

    answer, usage = chat_for(make_client()).read_answer(body)

    assert answer == PersonaDraftResponse.model_validate(PERSONA)
    assert usage == TokenUsage(prompt_tokens=1200, completion_tokens=90, cached_prompt_tokens=1024)


@pytest.mark.parametrize(
    ("body", "kind", "detail"),
    [
        (completion(None, refusal="I can't help with that."), FailureKind.FATAL, "refused"),
        (completion('{"name": "Ana", "bio": "'), FailureKind.INVALID_OUTPUT, "not valid JSON"),
        (completion(json.dumps({"name": "Ana"})), FailureKind.INVALID_OUTPUT, "Field required"),
        (completion(finish="length"), FailureKind.INVALID_OUTPUT, "cut off"),
        (completion(finish="content_filter"), FailureKind.INVALID_OUTPUT, "content filter"),
        ({"error": {"message": "expired"}}, FailureKind.TRANSIENT, "not a chat completion"),
    ],
    ids=["refusal", "not-json", "missing-fields", "length", "filtered", "not-a-completion"],
)
def test_read_answer_rejects_as_complete_does(
    make_client: MakeClient, body: dict[str, Any], kind: FailureKind, detail: str
) -> None:
    body = {**body, "usage": usage_with_cache(300, 20, 0)}

    with pytest.raises(GenerationError) as caught:
        chat_for(make_client()).read_answer(body)

    assert caught.value.kind is kind
    assert detail in caught.value.reason
    assert caught.value.usage == TokenUsage(prompt_tokens=300, completion_tokens=20)


def test_the_generator_reads_a_batch_answer_into_generated(make_client: MakeClient) -> None:
    client = make_client()
    generator = OpenAIGenerator(client, model=MODEL, temperature=0.7)

    generated = generator.read(completion(usage=usage_with_cache(500, 60, 0)))

    assert type(generated.draft) is PersonaDraft
    assert generated.draft.name == "Ana Costa"
    assert generated.usage == TokenUsage(prompt_tokens=500, completion_tokens=60)
    assert generator.client is client


def test_a_batch_line_is_what_generate_sends(make_client: MakeClient) -> None:
    client = make_client()
    generator = OpenAIGenerator(client, model=MODEL, temperature=0.7)

    line = generator.batch_line(TASK)

    assert line == chat_for(client).request_body(build_messages(TASK), seed=seed_for(TASK))


async def test_generate_sends_the_batch_line(make_client: MakeClient, wire: Wire) -> None:
    generator = OpenAIGenerator(make_client(), model=MODEL, temperature=0.7)

    result = await generator.generate(TASK)

    assert wire.bodies == [json.loads(json.dumps(generator.batch_line(TASK)))]
    assert result.usage.cached_prompt_tokens == 768


# --- cached tokens ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("usage", "cached"),
    [
        (usage_with_cache(1000, 50, 896), 896),
        ({"prompt_tokens": 1000, "completion_tokens": 50, "total_tokens": 1050}, 0),
        ({**usage_with_cache(1000, 50, 0), "prompt_tokens_details": None}, 0),
        ({**usage_with_cache(1000, 50, 0), "prompt_tokens_details": "lots"}, 0),
        (usage_with_cache(1000, 50, "896"), 0),
        (usage_with_cache(1000, 50, -5), 0),
        (usage_with_cache(1000, 50, True), 0),
        (usage_with_cache(1000, 50, 5000), 1000),
    ],
    ids=["cached", "no-details", "null", "not-an-object", "string", "negative", "bool", "clamped"],
)
def test_cached_tokens_are_read_and_a_bad_count_costs_only_itself(
    make_client: MakeClient, usage: dict[str, Any], cached: int
) -> None:
    _, read = chat_for(make_client()).read_answer(completion(usage=usage))

    assert read == TokenUsage(prompt_tokens=1000, completion_tokens=50, cached_prompt_tokens=cached)


# --- errors name what to do next, and never a secret --------------------------------------


def _error(status: int, message: str) -> httpx2.Response:
    return httpx2.Response(status, json={"error": {"message": message, "type": "x", "code": None}})


@pytest.mark.parametrize(
    ("mode", "hint"),
    [
        (ResponseFormat.JSON_SCHEMA, "set OPENAI_RESPONSE_FORMAT=json_object"),
        (JSON_OBJECT, "check OPENAI_MODEL and OPENAI_TEMPERATURE"),
    ],
)
async def test_a_refused_request_says_what_to_try(
    make_client: MakeClient, wire: Wire, mode: ResponseFormat, hint: str
) -> None:
    wire.answers.append(_error(400, "response_format json_schema is not supported"))

    with pytest.raises(GenerationError) as caught:
        await chat_for(make_client(), mode).complete(build_messages(TASK))

    assert caught.value.kind is FailureKind.FATAL
    assert hint in caught.value.reason


async def test_a_gateway_echoing_an_extra_header_does_not_leak_it(
    make_client: MakeClient, wire: Wire
) -> None:
    wire.answers.append(_error(403, "token gw-secret-123 may not use this route"))
    chat = chat_for(make_client(**{"X-Gateway-Token": "gw-secret-123"}))

    with pytest.raises(GenerationError) as caught:
        await chat.complete(build_messages(TASK))

    assert "gw-secret-123" not in caught.value.reason


def _azure_settings(**changes: object) -> Settings:
    fields: dict[str, object] = {
        "azure_openai_endpoint": "https://my-resource.openai.azure.com",
        "azure_openai_deployment": "personas-4o-mini",
        "azure_openai_api_key": "azure-key-0123",
        "openai_timeout_s": 7,
        **changes,
    }
    return Settings(_env_file=None, **fields)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("status", "setting"),
    [(401, "AZURE_OPENAI_API_KEY"), (404, "AZURE_OPENAI_DEPLOYMENT"), (403, "DEPLOYMENT")],
)
async def test_azure_errors_name_the_azure_settings(wire: Wire, status: int, setting: str) -> None:
    wire.answers.append(_error(status, "no"))
    client = AsyncAzureOpenAI(
        azure_endpoint="https://my-resource.openai.azure.com",
        api_version="2024-10-21",
        api_key="azure-key-0123",
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(wire.handle)),
    )
    try:
        with pytest.raises(GenerationError) as caught:
            await chat_for(client).complete(build_messages(TASK))
    finally:
        await client.close()

    assert setting in caught.value.reason
    assert wire.requests[0].url.path == f"/openai/deployments/{MODEL}/chat/completions"


# --- the client the settings build --------------------------------------------------------


async def test_azure_settings_build_an_azure_client_that_sends_the_deployment() -> None:
    settings = _azure_settings(openai_extra_headers={"X-Team": "personas"})
    client = openai_client(settings)
    try:
        assert isinstance(client, AsyncAzureOpenAI)
        assert client.max_retries == 0
        assert client.timeout == 7
        assert str(client.base_url) == "https://my-resource.openai.azure.com/openai/"
        assert client.api_key == "azure-key-0123"
        assert client.default_headers["X-Team"] == "personas"
        assert client.default_query == {"api-version": "2024-10-21"}
    finally:
        await client.close()
    assert settings.llm_model == "personas-4o-mini"
    generator = OpenAIGenerator.from_settings(settings)
    try:
        assert generator.model == "personas-4o-mini"
        assert isinstance(generator.client, AsyncAzureOpenAI)
    finally:
        await generator.aclose()


async def test_openai_settings_build_a_plain_client_with_the_extra_headers() -> None:
    settings = Settings(
        _env_file=None,
        openai_api_key="sk-test",
        openai_base_url="http://127.0.0.1:9/v1",  # type: ignore[arg-type]
        openai_extra_headers={"X-Gateway-Token": "gw-secret-123"},  # type: ignore[dict-item]
    )
    client = openai_client(settings)
    try:
        assert not isinstance(client, AsyncAzureOpenAI)
        assert client.max_retries == 0
        assert str(client.base_url) == "http://127.0.0.1:9/v1/"
        assert client.default_headers["X-Gateway-Token"] == "gw-secret-123"
    finally:
        await client.close()
