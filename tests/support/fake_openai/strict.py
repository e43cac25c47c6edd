"""OpenAI's strict Structured Outputs rules, applied as the server applies them."""

from __future__ import annotations

from typing import Any

# The JSON Schema keywords OpenAI documents for strict Structured Outputs. Spelled
# out here rather than imported from the client: the fake stands for the server, so
# a mistake in the client's list must show up as a rejected request.
_STRICT_KEYWORDS = frozenset(
    {
        *("type", "properties", "required", "additionalProperties", "items", "enum", "const"),
        *("anyOf", "$ref", "$defs", "definitions", "description", "title"),
        *("pattern", "format"),
        *("multipleOf", "maximum", "exclusiveMaximum", "minimum", "exclusiveMinimum"),
        *("minItems", "maxItems"),
    }
)


def strict_schema_problem(body: dict[str, Any]) -> str | None:
    """OpenAI's error message for the strict ``response_format`` schema of ``body``, if any.

    ``None`` when the schema is acceptable or the request asks for no strict schema.
    """
    response_format = body.get("response_format")
    if not isinstance(response_format, dict) or response_format.get("type") != "json_schema":
        return None
    json_schema = response_format.get("json_schema")
    if not isinstance(json_schema, dict) or json_schema.get("strict") is not True:
        return None
    problem = _schema_problem(json_schema.get("schema"), ())
    if problem is None:
        return None
    return f"Invalid schema for response_format '{json_schema.get('name')}': {problem}"


def _schema_problem(schema: Any, context: tuple[str, ...]) -> str | None:
    """What strict mode rejects in ``schema`` (found at ``context``) or in its subschemas."""
    if not isinstance(schema, dict):
        return None  # a boolean schema, e.g. ``additionalProperties: false``
    problem = _keyword_problem(schema) or _object_problem(schema)
    if problem is not None:
        return f"In context={context!r}, {problem}"
    for subschema, path in _subschemas(schema, context):
        if (problem := _schema_problem(subschema, path)) is not None:
            return problem
    return None


def _keyword_problem(schema: dict[str, Any]) -> str | None:
    for keyword in schema:
        if keyword not in _STRICT_KEYWORDS:
            return f"'{keyword}' is not permitted."
    return None


def _object_problem(schema: dict[str, Any]) -> str | None:
    """Strict mode's rules for objects: closed, and every property required."""
    kind = schema.get("type")
    if kind != "object" and not (isinstance(kind, list) and "object" in kind):
        return None
    if schema.get("additionalProperties") is not False:
        return "'additionalProperties' is required to be supplied and to be false."
    required = schema.get("required") or []
    missing = [name for name in schema.get("properties") or {} if name not in required]
    if missing:
        return (
            "'required' is required to be supplied and to be an array including every key "
            f"in properties. Missing '{missing[0]}'."
        )
    return None


def _subschemas(
    schema: dict[str, Any], context: tuple[str, ...]
) -> list[tuple[Any, tuple[str, ...]]]:
    """The schemas nested in ``schema``, each with its context."""
    nested: list[tuple[Any, tuple[str, ...]]] = []
    for keyword in ("properties", "$defs", "definitions"):
        for name, subschema in (schema.get(keyword) or {}).items():
            nested.append((subschema, (*context, keyword, name)))
    for index, subschema in enumerate(schema.get("anyOf") or []):
        nested.append((subschema, (*context, "anyOf", str(index))))
    for keyword in ("items", "additionalProperties"):
        if keyword in schema:
            nested.append((schema[keyword], (*context, keyword)))
    return nested
