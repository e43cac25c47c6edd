"""The event contracts: limits, determinism, and the published schema files."""

import uuid
from pathlib import Path

import pytest
from pydantic import ValidationError

from persona_pipeline.cli.contracts import render_contracts
from persona_pipeline.contracts import Constraints, PersonaCreated, PersonaFailed, PersonaRequested
from persona_pipeline.contracts.persona import persona_id
from tests.support.factories import make_persona

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    "fields",
    [
        {"brief": ""},
        {"brief": "x" * 2001},
        {"brief": "ok", "count": 0},
        {"brief": "ok", "count": 51},
        {"brief": "ok", "schema_version": 2},
        {"brief": "ok", "unexpected": True},
        {"brief": "ok", "constraints": {"min_age": 50, "max_age": 30}},
        {"brief": "ok", "constraints": {"min_age": 10}},
        {"brief": "ok", "constraints": {"locale": "not a locale"}},
        {"brief": "ok", "seed": -1},
    ],
)
def test_invalid_requests_are_rejected(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        PersonaRequested.model_validate(fields)


def test_a_request_round_trips_through_json() -> None:
    request = PersonaRequested(
        brief="  urban cyclists  ", count=5, constraints=Constraints(country="DE", locale="de-DE")
    )
    assert request.brief == "urban cyclists"
    assert PersonaRequested.model_validate_json(request.model_dump_json()) == request


def test_effective_seed_is_stable_for_a_request() -> None:
    request = PersonaRequested(brief="x")
    again = PersonaRequested.model_validate_json(request.model_dump_json())
    assert request.effective_seed == again.effective_seed
    assert PersonaRequested(brief="x", seed=42).effective_seed == 42


def test_ids_and_event_ids_are_deterministic() -> None:
    request_id = uuid.uuid4()
    assert persona_id(request_id, 3) == persona_id(request_id, 3)
    assert persona_id(request_id, 3) != persona_id(request_id, 4)
    persona = make_persona(request_id=request_id)
    assert (
        PersonaCreated.for_persona(persona).event_id == PersonaCreated.for_persona(persona).event_id
    )
    failed = PersonaFailed.for_ordinal(request_id, 1, "x" * 5000, persona.created_at)
    assert len(failed.reason) == 1000
    assert (
        failed.event_id != PersonaFailed.for_ordinal(request_id, 2, "", persona.created_at).event_id
    )


def test_published_contract_files_are_current() -> None:
    stale = [
        str(path.relative_to(DOCS.parent))
        for path, text in render_contracts(DOCS).items()
        if not path.exists() or path.read_text() != text
    ]
    assert not stale, f"stale contract files {stale}: run `make contracts` and commit them"


def test_the_asyncapi_document_describes_valid_requests() -> None:
    rendered = {p.name: t for p, t in render_contracts(DOCS).items()}
    assert '"brief"' in rendered["asyncapi.json"]
    assert '"persona.created"' in rendered["asyncapi.json"]
