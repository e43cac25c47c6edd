"""The schema sent for Structured Outputs carries only what OpenAI's strict mode accepts.

Checked with the fake server's own rules (``strict_schema_problem``), which are
written independently of the client's keyword list.
"""

import json
from collections.abc import Iterator
from typing import Any

import pytest
from openai.lib import type_to_response_format_param
from pydantic import BaseModel, Field, ValidationError

from persona_llm.schema import strict_response_format
from persona_worker.generators.openai_generator import PersonaDraftResponse
from tests.support.fake_openai import strict_schema_problem

UNDOCUMENTED = {"minLength", "maxLength", "default"}


def _objects(schema: Any) -> Iterator[dict[str, Any]]:
    """Every schema object in ``schema``: itself, its properties, items and ``$defs``."""
    if not isinstance(schema, dict):
        return
    yield schema
    for keyword in ("properties", "$defs"):
        for subschema in (schema.get(keyword) or {}).values():
            yield from _objects(subschema)
    for subschema in schema.get("anyOf") or []:
        yield from _objects(subschema)
    yield from _objects(schema.get("items"))


def _keywords(schema: dict[str, Any]) -> set[str]:
    return {keyword for part in _objects(schema) for keyword in part}


def test_the_sdk_schema_alone_carries_keywords_strict_mode_rejects() -> None:
    raw = type_to_response_format_param(PersonaDraftResponse)

    assert isinstance(raw, dict)
    assert raw["type"] == "json_schema"
    assert {"minLength", "maxLength"} <= _keywords(raw["json_schema"]["schema"])
    assert strict_schema_problem({"response_format": raw}) == (
        "Invalid schema for response_format 'PersonaDraftResponse': "
        "In context=('properties', 'name'), 'maxLength' is not permitted."
    )


def test_the_persona_format_has_only_strict_keywords() -> None:
    response_format = strict_response_format(PersonaDraftResponse)
    json_schema = response_format["json_schema"]
    schema = json_schema["schema"]

    assert response_format["type"] == "json_schema"
    assert (json_schema["name"], json_schema["strict"]) == ("PersonaDraftResponse", True)
    assert strict_schema_problem({"response_format": response_format}) is None
    assert not _keywords(schema) & UNDOCUMENTED
    assert schema["required"] == list(PersonaDraftResponse.model_fields)
    for part in _objects(schema):
        if part.get("type") == "object":
            assert part["additionalProperties"] is False
            assert set(part["required"]) == set(part["properties"])
    tags = schema["properties"]["tags"]
    assert (tags["maxItems"], tags["items"]["type"]) == (12, "string")  # documented: kept


class _Inner(BaseModel):
    maxLength: str = Field(max_length=5)  # noqa: N815 - a property named like a keyword
    default: int = Field(default=3, ge=0)


class _Outer(BaseModel):
    """Nested models land in ``$defs``; optional fields become ``anyOf``."""

    inner: _Inner
    many: list[_Inner] = Field(max_length=3)
    note: str | None = Field(default=None, min_length=2)


def test_nested_schemas_are_stripped_and_property_names_kept() -> None:
    response_format = strict_response_format(_Outer)
    schema = response_format["json_schema"]["schema"]

    assert strict_schema_problem({"response_format": response_format}) is None
    inner = schema["$defs"]["_Inner"]
    assert list(inner["properties"]) == ["maxLength", "default"]
    assert inner["properties"]["maxLength"] == {"title": "Maxlength", "type": "string"}
    assert inner["properties"]["default"] == {"type": "integer", "minimum": 0, "title": "Default"}
    assert schema["properties"]["many"]["maxItems"] == 3
    assert "minLength" not in json.dumps(schema["properties"]["note"])
    assert set(schema["required"]) == {"inner", "many", "note"}


def test_the_answer_is_still_held_to_every_limit() -> None:
    answer = {
        "name": "A" * 300,
        "bio": "Lives in Porto.",
        "interests": ["cycling"],
        "goals": ["Ride safely."],
        "pain_points": ["Parked cars."],
        "tags": ["cyclist"],
    }

    with pytest.raises(ValidationError, match="at most 120 characters"):
        PersonaDraftResponse.model_validate(answer)
