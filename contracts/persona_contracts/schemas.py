"""JSON Schema of every event, as published in ``docs/contracts/``.

Downstream teams generate their consumers from these files; a test fails when
they drift from the models, so the files are always the truth.
"""

from typing import Any

from pydantic import BaseModel

from persona_contracts.events import (
    PersonaCreated,
    PersonaFailed,
    PersonaRequested,
    ShardRequested,
)
from persona_contracts.topics import Topics

_TOPICS = Topics()
EVENTS: dict[str, type[BaseModel]] = {
    _TOPICS.requests: PersonaRequested,
    _TOPICS.shards: ShardRequested,
    _TOPICS.created: PersonaCreated,
    _TOPICS.failed: PersonaFailed,
}


def event_schemas() -> dict[str, dict[str, Any]]:
    """File name → JSON Schema (draft 2020-12) of the event on that topic."""
    return {
        f"{topic}.schema.json": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "$id": f"urn:persona-pipeline:event:{topic}",
            **model.model_json_schema(mode="serialization"),
        }
        for topic, model in EVENTS.items()
    }
