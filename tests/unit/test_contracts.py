"""The event contracts: limits, determinism, and the published schema files."""

import uuid
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from persona_contracts import Constraints, PersonaCreated, PersonaFailed, PersonaRequested
from persona_contracts.persona import persona_id
from persona_contracts.plan import AudiencePlan
from persona_pipeline.cli.contracts import render_contracts
from tests.support.factories import make_persona

DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.mark.parametrize(
    "fields",
    [
        {"brief": ""},
        {"brief": "x" * 2001},
        {"brief": "ok", "count": 0},
        {"brief": "ok", "count": 10_001},
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


# --- The audience plan and constraints ----------------------------------------------------


def _plan(**changes: object) -> AudiencePlan:
    base: dict[str, object] = {
        "locations": {
            "source": "brief",
            "options": [
                {"country_code": "DE", "country": "Germany", "share": 7},
                {"country_code": "NL", "country": "Netherlands", "share": 3},
            ],
        },
        "ages": {"source": "default", "bands": [{"low": 18, "high": 34, "share": 1}]},
        "genders": {"source": "default", "options": [{"gender": "female", "share": 1}]},
        "occupations": {"source": "default", "options": [{"title": "Nurse", "share": 1}]},
    }
    return AudiencePlan.model_validate({**base, **changes})


def test_plan_weights_become_shares() -> None:
    plan = _plan()
    assert [o.share for o in plan.locations.options] == pytest.approx([0.7, 0.3])
    assert plan.version == 1
    assert plan.planning.planner == "request"


def test_plan_age_bands_are_sorted_and_may_not_overlap() -> None:
    bands = [{"low": 40, "high": 49, "share": 1}, {"low": 18, "high": 39, "share": 1}]
    plan = _plan(ages={"source": "brief", "bands": bands})
    assert [b.label for b in plan.ages.bands] == ["18-39", "40-49"]
    overlapping = [{"low": 18, "high": 40, "share": 1}, {"low": 40, "high": 49, "share": 1}]
    with pytest.raises(ValidationError, match="overlap"):
        _plan(ages={"source": "brief", "bands": overlapping})


@pytest.mark.parametrize(
    "bad",
    [
        {"locations": {"source": "brief", "options": []}},
        {"ages": {"source": "brief", "bands": [{"low": 10, "high": 20, "share": 1}]}},
        {"ages": {"source": "brief", "bands": [{"low": 30, "high": 20, "share": 1}]}},
        {"genders": {"source": "brief", "options": [{"gender": "female", "share": 0}]}},
        {"genders": {"source": "nowhere", "options": [{"gender": "female", "share": 1}]}},
        {
            "genders": {
                "source": "brief",
                "options": [
                    {"gender": "male", "share": 1e12},
                    {"gender": "female", "share": 5e-324},
                ],
            }
        },
        {
            "traits": [
                {"name": "x", "options": [{"value": "only one", "share": 1}], "source": "brief"}
            ]
        },
        {"subject": "x" * 121},
        {"version": 2},
    ],
)
def test_an_invalid_plan_is_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        _plan(**bad)


@pytest.mark.parametrize(
    ("constraints", "message"),
    [
        ({"country": "DE", "countries": {"FR": 1}}, "not both"),
        ({"occupation": "nurse", "occupations": {"farmer": 1}}, "not both"),
        ({"cities": {"Berlin": 1}, "country": "DE"}, "a city names its country"),
        ({"countries": {}}, "at least one entry"),
        ({"min_age": 30, "age_bands": [{"low": 20, "high": 29, "share": 1}]}, "outside"),
        ({"countries": {f"C{i}": 1 for i in range(51)}}, "at most 50"),
        ({"genders": {"robot": 1}}, "female"),
        ({"countries": {"DE": -1}}, "greater than 0"),
    ],
)
def test_contradictory_or_oversized_constraints_are_rejected(
    constraints: dict[str, object], message: str
) -> None:
    with pytest.raises(ValidationError, match=message):
        Constraints.model_validate(constraints)


def test_a_request_carries_a_whole_plan() -> None:
    request = PersonaRequested(brief="x", audience=_plan())
    again = PersonaRequested.model_validate_json(request.model_dump_json())
    assert again.audience == request.audience


def test_an_option_listed_twice_is_rejected() -> None:
    twice = [{"gender": "male", "share": 1}, {"gender": "male", "share": 2}]
    with pytest.raises(ValidationError, match="listed twice"):
        _plan(genders={"source": "brief", "options": twice})


def test_tiny_and_huge_weights_keep_every_share_above_zero() -> None:
    options = [{"gender": "male", "share": 1e12}, {"gender": "female", "share": 1e-9}]
    plan = _plan(genders={"source": "brief", "options": options})
    assert all(option.share > 0 for option in plan.genders.options)


@given(st.lists(st.floats(min_value=1e-3, max_value=1e6), min_size=1, max_size=12))
def test_a_planned_audience_reads_back_from_json_as_the_same_request(weights: list[float]) -> None:
    """A plan's shares survive JSON unchanged, so a preview passed as ``audience`` and the
    event a worker validates hash like the request the API recorded: normalising again
    used to move their last digits, and the worker refused the request as other content."""
    jobs = [{"title": f"Job {i}", "share": weight} for i, weight in enumerate(weights)]
    previewed = _plan(occupations={"source": "brief", "options": jobs}).model_dump_json()
    request = PersonaRequested(brief="x", audience=AudiencePlan.model_validate_json(previewed))
    delivered = PersonaRequested.model_validate_json(request.model_dump_json())
    assert delivered.audience == request.audience
    assert delivered.content_hash() == request.content_hash()
