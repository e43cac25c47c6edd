"""Valid domain objects for tests, with any field overridable."""

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta

from persona_contracts import BigFive, Location, Persona, Skeleton, TokenUsage
from persona_contracts.persona import persona_id
from persona_llm.retry import AttemptHook, Retrier
from persona_worker.generators.base import GenerationTask, PersonaGenerator
from persona_worker.generators.prompts import estimate_tokens
from persona_worker.resilience import ResilientGenerator

PHARMACIST_TASK = GenerationTask(
    brief="Commuters who cycle to work",
    skeleton=Skeleton(
        age=34,
        gender="female",
        location=Location(city="Porto", country="Portugal", country_code="PT"),
        occupation="hospital pharmacist",
        personality=BigFive(
            openness=0.8,
            conscientiousness=0.5,
            extraversion=0.1,
            agreeableness=0.7,
            neuroticism=0.3,
        ),
    ),
    ordinal=0,
    seed=7,
)


def make_task(**overrides: object) -> GenerationTask:
    """A generation task (a pharmacist in Porto, cycling commuters), any field overridden."""
    return dataclasses.replace(PHARMACIST_TASK, **overrides)  # type: ignore[arg-type]


def make_persona(
    ordinal: int = 0, request_id: uuid.UUID | None = None, **overrides: object
) -> Persona:
    request_id = request_id or uuid.uuid4()
    fields: dict[str, object] = {
        "id": persona_id(request_id, ordinal),
        "request_id": request_id,
        "ordinal": ordinal,
        "name": f"Person {ordinal}",
        "age": 20 + ordinal % 50,
        "gender": "female",
        "location": Location(city="Lisbon", country="Portugal", country_code="PT"),
        "occupation": "Nurse",
        "bio": "Rides a bike to every shift.",
        "interests": ["cycling"],
        "personality": BigFive(
            openness=0.5,
            conscientiousness=0.5,
            extraversion=0.5,
            agreeableness=0.5,
            neuroticism=0.5,
        ),
        "goals": ["Sleep more"],
        "pain_points": ["Night shifts"],
        "tags": [],
        "created_at": datetime(2026, 1, 1, tzinfo=UTC) + timedelta(seconds=ordinal),
        "generator": "offline",
        "model": "offline-v1",
        "usage": TokenUsage(),
    }
    return Persona.model_validate({**fields, **overrides})


def correcting_once(
    inner: PersonaGenerator, on_attempt: AttemptHook | None = None
) -> ResilientGenerator:
    """``inner`` retried once after an invalid answer (the reason fed back), and never
    after anything else, with no limiter and no waiting."""
    retrier = Retrier(
        limiter=None,
        max_retries=0,
        max_invalid_retries=1,
        backoff_base_s=0,
        backoff_max_s=0,
        on_attempt=on_attempt,
    )
    return ResilientGenerator(inner, retrier, estimate_tokens=estimate_tokens)
