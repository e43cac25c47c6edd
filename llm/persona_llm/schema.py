"""The ``response_format`` of a pydantic model, cut down to what OpenAI's strict mode accepts.

Strict Structured Outputs accepts only a documented subset of JSON Schema, and the
schema pydantic (through the SDK's helper) builds carries more, such as
``minLength``/``maxLength`` on every bounded string: OpenAI answers those with a
400 (``'maxLength' is not permitted``) and llama.cpp cannot turn them into a
grammar. So every other keyword is removed from the schema sent. No limit is lost:
the answer is still validated against the full pydantic model, and an answer over
a limit is an ``INVALID_OUTPUT`` that the retry loop feeds back to the model.

Servers without strict structured outputs get JSON mode instead
(``OPENAI_RESPONSE_FORMAT=json_object``) and the schema as text in the prompt
(``schema_instruction``). There it is guidance, not a grammar, so the limits stay in.
"""

import json
from typing import Any, Final

from openai import Omit
from openai.lib import type_to_response_format_param
from pydantic import BaseModel

STRICT_KEYWORDS: Final = frozenset(
    {
        # structure
        "type",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "enum",
        "const",
        "anyOf",
        "$ref",
        "$defs",
        "definitions",
        "description",
        "title",
        # strings
        "pattern",
        "format",
        # numbers
        "multipleOf",
        "maximum",
        "exclusiveMaximum",
        "minimum",
        "exclusiveMinimum",
        # arrays
        "minItems",
        "maxItems",
    }
)
"""The JSON Schema keywords OpenAI documents for strict Structured Outputs."""

_NAMED_SCHEMAS = frozenset({"properties", "$defs", "definitions"})
"""Keywords whose value maps names (kept as they are) to schemas."""
_LISTED_SCHEMAS = frozenset({"anyOf"})
_SCHEMA_VALUED = frozenset({"items", "additionalProperties"})


def strict_response_format(model: type[BaseModel]) -> dict[str, Any]:
    """The ``response_format`` param for ``model``, with a strict-mode schema.

    ``{"type": "json_schema", "json_schema": {"name", "schema", "strict": true}}``,
    built by the SDK's public helper (as ``chat.completions.parse`` builds it), then
    stripped to ``STRICT_KEYWORDS``.
    """
    response_format = _sdk_response_format(model)
    json_schema = dict(response_format["json_schema"])
    json_schema["schema"] = strict_schema(json_schema["schema"])
    response_format["json_schema"] = json_schema
    return response_format


def schema_instruction(model: type[BaseModel]) -> str:
    """The text that asks for an answer shaped like ``model`` where the server cannot be
    given a schema: one sentence, then the schema in a fenced ``json`` block.

    The schema is the SDK's strict one (every property required, closed objects) with
    the limits kept. The sentence says "JSON": OpenAI refuses JSON mode without it.
    """
    schema = _sdk_response_format(model)["json_schema"]["schema"]
    return (
        "Answer with a single JSON object that matches this JSON Schema:\n"
        f"```json\n{json.dumps(schema, separators=(',', ':'))}\n```"
    )


def _sdk_response_format(model: type[BaseModel]) -> dict[str, Any]:
    built = type_to_response_format_param(model)
    if isinstance(built, Omit):  # pragma: no cover - only for an omitted format
        raise TypeError(f"the SDK built no response_format for {model.__name__}")
    return dict(built)


def strict_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` without any keyword outside ``STRICT_KEYWORDS``, at any depth."""
    return {
        keyword: _strict_value(keyword, value)
        for keyword, value in schema.items()
        if keyword in STRICT_KEYWORDS
    }


def _strict_value(keyword: str, value: Any) -> Any:
    """A kept keyword's value, with the schemas nested in it stripped too."""
    if keyword in _NAMED_SCHEMAS and isinstance(value, dict):
        return {name: _strict_subschema(schema) for name, schema in value.items()}
    if keyword in _LISTED_SCHEMAS and isinstance(value, list):
        return [_strict_subschema(schema) for schema in value]
    if keyword in _SCHEMA_VALUED:
        return _strict_subschema(value)
    return value  # data, such as an ``enum``'s values or ``required``'s names


def _strict_subschema(schema: Any) -> Any:
    """A nested schema stripped; a boolean schema (``additionalProperties: false``) as is."""
    return strict_schema(schema) if isinstance(schema, dict) else schema
