"""The persona-shaped content the fake answers with, fitted to the requested schema."""

from __future__ import annotations

import json
import random
import re
from typing import Any

_NAMES = ("Alex Rivera", "Sam Okafor", "Noa Lindqvist", "Priya Raman", "Mateo Silva", "Jun Park")


def message_texts(body: dict[str, Any], *roles: str) -> list[str]:
    """The text of each message of ``body`` (only those with one of ``roles``, if given)."""
    texts: list[str] = []
    for message in body.get("messages") or []:
        if not isinstance(message, dict) or (roles and message.get("role") not in roles):
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.extend(
                part["text"]
                for part in content
                if isinstance(part, dict) and isinstance(part.get("text"), str)
            )
    return texts


def _prompt_field(prompt: str, label: str) -> str | None:
    match = re.search(rf"(?im)^\W*{label}\s*:\s*(.+?)\s*$", prompt)
    return match.group(1) if match else None


_OPENERS = (
    "Weekdays are tightly scheduled",
    "Mornings start before sunrise",
    "Evenings go to a long-running side project",
    "Weekends belong to family visits",
    "Most errands happen on a bicycle",
    "A second language is slowly improving",
    "A small balcony garden takes more time than planned",
    "Volunteering at the library fills Saturdays",
)
_CLOSERS = (
    "so anything new has to earn its place quickly",
    "and budgets are checked twice before any purchase",
    "which makes reliable apps matter more than fancy ones",
    "so recommendations from friends carry real weight",
    "and privacy settings are always read carefully",
    "so long phone calls are avoided whenever possible",
    "which leaves little patience for slow websites",
    "and every subscription gets reviewed each quarter",
)


def _anecdote(number: int) -> str:
    """Vary bios between calls, as a real model would (near-duplicate checks see them)."""
    rng = random.Random(number)
    return f"{rng.choice(_OPENERS)}, {rng.choice(_CLOSERS)}. Call {number} of the day."


def persona_for(body: dict[str, Any], number: int = 1) -> dict[str, Any]:
    """A persona-shaped answer to ``body`` that fits its ``response_format`` schema.

    That is the ``json_schema`` sent or, for ``json_object``, the schema fenced in
    the prompt (``prompt_schema``); persona fields fill the properties they name,
    minimal examples the others. Without a schema: the persona itself.

    The city (from a ``Location: City, Country`` or ``City:`` line) and the
    occupation (``Occupation:``) of the prompt are echoed in the bio and tags.
    """
    prompt = "\n".join(message_texts(body, "user"))
    location = _prompt_field(prompt, "Location") or _prompt_field(prompt, "City") or "Springfield"
    city = location.split(",")[0].strip()[:60] or "Springfield"
    occupation = (_prompt_field(prompt, "Occupation") or "analyst")[:60]
    name = _NAMES[(number - 1) % len(_NAMES)]
    persona: dict[str, Any] = {
        "name": name,
        "bio": f"{name} lives in {city} and works as {occupation}. {_anecdote(number)}",
        "interests": ["cycling", "cooking", "local history"],
        "goals": [
            "Spend less time on routine admin each week.",
            "Find tools that work well on a phone.",
        ],
        "pain_points": [
            "Sign-up flows that ask for too much information.",
            "Pricing that changes without notice.",
        ],
        "tags": [city.lower(), occupation.lower(), "busy"],
    }
    schema = _response_schema(body)
    properties = schema.get("properties") if schema else None
    if not isinstance(properties, dict):
        return persona
    return {
        key: persona[key] if key in persona else _example(prop) for key, prop in properties.items()
    }


def _response_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The schema the answer must fit: the strict one sent, or the one in a json_object prompt."""
    response_format = body.get("response_format")
    if not isinstance(response_format, dict):
        return None
    if response_format.get("type") == "json_object":
        return prompt_schema(body)
    if response_format.get("type") != "json_schema":
        return None
    schema = (response_format.get("json_schema") or {}).get("schema")
    return schema if isinstance(schema, dict) else None


_FENCED_JSON = re.compile(r"```json[ \t]*\r?\n(.*?)```", re.DOTALL | re.IGNORECASE)


def prompt_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    """The first JSON Schema in a fenced ```json block of the system, then the user messages.

    Servers without strict structured outputs only promise *some* JSON object, so
    clients describe the shape in the prompt; the fake answers with that shape.
    """
    texts = message_texts(body, "system", "developer") + message_texts(body, "user")
    for text in texts:
        for block in _FENCED_JSON.findall(text):
            try:
                schema = json.loads(block)
            except ValueError:
                continue
            if isinstance(schema, dict) and isinstance(schema.get("properties"), dict):
                return schema
    return None


def _example(schema: Any) -> Any:
    """A minimal value that satisfies a (strict-mode) JSON schema fragment."""
    if not isinstance(schema, dict):
        return None
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        return _example(schema["anyOf"][0])
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = kind[0]
    if kind == "string":
        return "example"
    if kind == "integer":
        return int(schema.get("minimum", 0))
    if kind == "number":
        return float(schema.get("minimum", 0))
    if kind == "boolean":
        return False
    if kind == "array":
        return [_example(schema.get("items"))] * int(schema.get("minItems", 0))
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: _example(prop) for key, prop in props.items()}
    return None
