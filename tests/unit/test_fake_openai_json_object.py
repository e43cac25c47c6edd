"""The fake's json_object mode, for clients of servers without strict structured outputs.

Such clients put the JSON Schema in the prompt and ask for ``json_object``; the
fake must refuse them as OpenAI does when no message says "json", and answer with
the shape the prompt describes, so their parsing is tested against that shape.
"""

import json
from collections.abc import AsyncIterator
from typing import Any

import openai
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from tests.support.fake_openai import FakeOpenAI

SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string"},
        "bio": {"type": "string"},
        "age": {"type": "integer", "minimum": 18},
        "mood": {"enum": ["calm", "busy"]},
    },
    "required": ["name", "bio", "age", "mood"],
}
STRICT_FORMAT: dict[str, Any] = {
    "type": "json_schema",
    "json_schema": {
        "name": "persona",
        "strict": True,
        "schema": {**SCHEMA, "additionalProperties": False},
    },
}


def _fenced(value: object) -> str:
    return f"```json\n{json.dumps(value, indent=2)}\n```"


@pytest.fixture
async def fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI() as started:
        yield started


async def _complete(
    base_url: str, messages: list[ChatCompletionMessageParam], response_format: Any
) -> str:
    async with AsyncOpenAI(base_url=base_url, api_key="k", max_retries=0) as client:
        completion = await client.chat.completions.create(
            model="local-model", messages=messages, response_format=response_format
        )
    return completion.choices[0].message.content or ""


async def test_json_object_without_the_word_json_is_refused(fake: FakeOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "A persona."}]
    with pytest.raises(openai.BadRequestError) as raised:
        await _complete(fake.base_url, messages, {"type": "json_object"})
    assert raised.value.status_code == 400
    assert raised.value.param == "messages"
    assert raised.value.message.endswith(
        "'messages' must contain the word 'json' in some form, "
        "to use 'response_format' of type 'json_object'."
    )
    assert fake.requests == []


async def test_json_object_answer_follows_the_schema_in_the_system_prompt(
    fake: FakeOpenAI,
) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "system", "content": f"Answer with JSON matching:\n{_fenced(SCHEMA)}"},
        {"role": "user", "content": "Location: Lisbon, Portugal\nOccupation: nurse"},
    ]
    answer = json.loads(await _complete(fake.base_url, messages, {"type": "json_object"}))
    assert list(answer) == ["name", "bio", "age", "mood"]
    assert "Lisbon" in answer["bio"]
    assert "nurse" in answer["bio"]
    assert answer["age"] == 18
    assert answer["mood"] == "calm"


async def test_the_first_fenced_block_that_is_a_schema_wins(fake: FakeOpenAI) -> None:
    example = {"name": "Ana", "bio": "An example, not a schema."}
    other = {"type": "object", "properties": {"other": {"type": "boolean"}}}
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": f"Schema:\n{_fenced(SCHEMA)}\nThen {_fenced(other)}"},
        {"role": "system", "content": f"Reply in json, e.g.\n{_fenced(example)}\n```json\n{{"},
    ]
    answer = json.loads(await _complete(fake.base_url, messages, {"type": "json_object"}))
    assert set(answer) == {"name", "bio", "age", "mood"}  # the system block is no schema


async def test_json_object_without_a_schema_gets_the_default_persona(fake: FakeOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": "Write a persona as a JSON object."}
    ]
    answer = json.loads(await _complete(fake.base_url, messages, {"type": "json_object"}))
    assert {"name", "bio", "interests", "goals", "pain_points", "tags"} <= set(answer)


async def test_json_object_only_server_refuses_json_schema_but_takes_json_object() -> None:
    messages: list[ChatCompletionMessageParam] = [
        {"role": "user", "content": f"Reply with json:\n{_fenced(SCHEMA)}"}
    ]
    async with FakeOpenAI(json_object_only=True) as fake:
        with pytest.raises(openai.BadRequestError) as raised:
            await _complete(fake.base_url, messages, STRICT_FORMAT)
        assert raised.value.param == "response_format"
        assert "json_schema is not supported by this server" in raised.value.message
        answer = json.loads(await _complete(fake.base_url, messages, {"type": "json_object"}))
    assert set(answer) == {"name", "bio", "age", "mood"}


async def test_json_schema_is_still_answered_and_strictly_checked(fake: FakeOpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "A persona."}]
    answer = json.loads(await _complete(fake.base_url, messages, STRICT_FORMAT))
    assert set(answer) == {"name", "bio", "age", "mood"}
    loose = {**STRICT_FORMAT, "json_schema": {**STRICT_FORMAT["json_schema"], "schema": SCHEMA}}
    with pytest.raises(openai.BadRequestError, match="additionalProperties"):
        await _complete(fake.base_url, messages, loose)
