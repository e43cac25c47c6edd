"""The LLM planner through the real ``openai`` SDK against the local fake server.

One structured-output call per request; its answer validated, clamped and merged
under what the brief states; retried like persona calls; the rule planner answers
when the model cannot. In the worker the plan is stored, so a redelivery never pays
for a second call; the API's ``POST /v1/plans`` shows the call's tokens and cost.
"""

from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from persona_api.app import create_app
from persona_audience.llm_planner import build_planner
from persona_audience.planner import AudienceError, Planner
from persona_contracts import Constraints, PersonaRequested
from persona_contracts.plan import Source
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.fake_openai import FakeOpenAI, malformed, ok, status
from tests.support.kafka import created_events
from tests.support.serve import serve

pytestmark = pytest.mark.integration

MODEL = "gpt-test-planner"
PLAN = {
    "subject": "urban cycling",
    "locations": [{"country": "DE", "region": None, "city": "Berlin", "share": 1}],
    "age_bands": [{"low": 25, "high": 44, "share": 3}, {"low": 45, "high": 64, "share": 1}],
    "genders": [],
    "occupations": [
        {"title": "Software developer", "share": 1},
        {"title": "Courier", "share": 1},
    ],
    "traits": [
        {
            "name": "how they ride",
            "options": [{"value": "cargo bike", "share": 1}, {"value": "road bike", "share": 1}],
        }
    ],
}


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def llm_settings(settings: Settings, fake: FakeOpenAI) -> Settings:
    fake.reset()
    return derive(
        settings,
        generator="offline",
        planner="llm",
        planner_model=MODEL,
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url=fake.base_url,
        generation_max_retries=2,
        generation_backoff_base_s=0.01,
        price_table={MODEL: (1.0, 2.0)},
    )


@pytest.fixture
async def planner(llm_settings: Settings) -> Any:
    built: Planner = build_planner(llm_settings)
    yield built
    await built.aclose()


def plan_calls(fake: FakeOpenAI) -> list[dict[str, Any]]:
    return [
        body
        for body in fake.requests
        if body["response_format"]["json_schema"]["name"] == "PlanDraft"
    ]


async def test_the_model_fills_what_the_brief_leaves_open(
    planner: Planner, fake: FakeOpenAI
) -> None:
    fake.script(ok(content=PLAN, prompt_tokens=1200, completion_tokens=300))
    plan = await planner.plan(PersonaRequested(brief="urban cyclists in Berlin", count=10))

    assert plan.planning.planner == "llm"
    assert plan.planning.model == MODEL
    assert (plan.planning.usage.prompt_tokens, plan.planning.usage.completion_tokens) == (1200, 300)
    assert plan.planning.cost_usd == pytest.approx((1200 * 1.0 + 300 * 2.0) / 1e6)
    assert [b.label for b in plan.ages.bands] == ["25-44", "45-64"]
    assert plan.ages.source is Source.BRIEF
    assert [o.title for o in plan.occupations.options] == ["Software developer", "Courier"]
    assert [t.name for t in plan.traits] == ["how they ride"]
    assert plan.genders.source is Source.DEFAULT, "left open by the model: real-world shares"
    assert plan.subject == "urban cycling"
    sent = plan_calls(fake)
    assert len(sent) == 1
    assert "urban cyclists in Berlin" in sent[0]["messages"][1]["content"]


async def test_what_the_brief_states_wins_over_the_model(
    planner: Planner, fake: FakeOpenAI
) -> None:
    wrong = {
        **PLAN,
        "locations": [{"country": "DE", "region": None, "city": "Munich", "share": 1}],
        "occupations": [{"title": "Teacher", "share": 1}],
    }
    fake.script(ok(content=wrong))
    plan = await planner.plan(PersonaRequested(brief="nurses in Berlin", count=5))
    assert [o.label for o in plan.locations.options] == ["Berlin, Germany"]
    assert [o.title for o in plan.occupations.options] == ["Nurse"]
    assert [b.label for b in plan.ages.bands] == ["25-44", "45-64"], "ages were left open"


async def test_unknown_places_are_dropped_with_a_note(planner: Planner, fake: FakeOpenAI) -> None:
    odd = {
        **PLAN,
        "locations": [
            {"country": "Atlantis", "region": None, "city": None, "share": 1},
            {"country": "PT", "region": None, "city": "Lisbon", "share": 1},
        ],
        "age_bands": [{"low": 3, "high": 12, "share": 1}, {"low": 90, "high": 130, "share": 1}],
    }
    fake.script(ok(content=odd))
    plan = await planner.plan(PersonaRequested(brief="a survey", count=5))
    assert [o.label for o in plan.locations.options] == ["Lisbon, Portugal"]
    assert [b.label for b in plan.ages.bands] == ["90-100"]
    notes = " ".join(plan.planning.notes)
    assert "dropped the place 'Atlantis'" in notes
    assert "dropped the age band 3-12" in notes


async def test_an_invalid_answer_is_corrected_by_the_model(
    planner: Planner, fake: FakeOpenAI
) -> None:
    fake.script(ok(content={**PLAN, "subject": "x" * 300}), ok(content=PLAN))
    plan = await planner.plan(PersonaRequested(brief="urban cyclists in Berlin", count=3))
    assert plan.planning.planner == "llm"
    retry = plan_calls(fake)[1]["messages"]
    assert "at most 120 characters" in retry[-1]["content"]


async def test_a_rate_limit_is_waited_out(planner: Planner, fake: FakeOpenAI) -> None:
    fake.script(status(429, retry_after=0.05), ok(content=PLAN))
    plan = await planner.plan(PersonaRequested(brief="urban cyclists in Berlin", count=3))
    assert plan.planning.planner == "llm"
    assert len(plan_calls(fake)) == 2


async def test_the_rule_planner_answers_when_the_model_cannot(
    planner: Planner, fake: FakeOpenAI
) -> None:
    fake.script(*(malformed("json", prompt_tokens=50, completion_tokens=10) for _ in range(3)))
    plan = await planner.plan(PersonaRequested(brief="urban cyclists in Berlin", count=3))
    assert plan.planning.planner == "rules"
    assert "the LLM planner failed (invalid model output after 3 attempts" in plan.planning.notes[0]
    assert plan.planning.usage.prompt_tokens == 150, "the failed calls were still paid for"
    assert [o.label for o in plan.locations.options] == ["Berlin, Germany"]
    assert plan.subject == "urban cyclists"


async def test_a_contradiction_costs_no_call(planner: Planner, fake: FakeOpenAI) -> None:
    request = PersonaRequested(brief="teenagers", count=3, constraints=Constraints(min_age=40))
    with pytest.raises(AudienceError):
        await planner.plan(request)
    assert fake.calls == 0


async def test_the_worker_plans_once_even_when_the_request_is_redelivered(
    llm_settings: Settings, fake: FakeOpenAI
) -> None:
    fake.script(ok(content=PLAN, prompt_tokens=1000, completion_tokens=200))
    request = PersonaRequested(brief="urban cyclists in Berlin", count=4, seed=5)
    async with serve(create_worker(llm_settings).app):
        await publish_requests(llm_settings, [request])
        first = await created_events(llm_settings, request.request_id, 4)
        await publish_requests(llm_settings, [request])
        await created_events(llm_settings, request.request_id, 8)
    assert len(plan_calls(fake)) == 1
    assert {e.persona.plan_cell.occupation for e in first if e.persona.plan_cell} <= {
        "Software developer",
        "Courier",
    }
    async with serve(create_app(llm_settings)) as url, httpx.AsyncClient(base_url=url) as api:
        status_body = (await api.get(f"/v1/requests/{request.request_id}")).json()
    assert status_body["plan"]["planning"]["planner"] == "llm"
    assert status_body["prompt_tokens"] == 1000, "offline personas cost nothing; the plan did"
    assert status_body["cost_usd"] == pytest.approx((1000 + 200 * 2) / 1e6)


async def test_the_api_preview_shows_the_calls_tokens_and_cost(
    llm_settings: Settings, fake: FakeOpenAI
) -> None:
    fake.script(ok(content=PLAN, prompt_tokens=800, completion_tokens=100))
    async with serve(create_app(llm_settings)) as url, httpx.AsyncClient(base_url=url) as api:
        response = await api.post("/v1/plans", json={"brief": "urban cyclists", "count": 8})
    assert response.status_code == 200
    planning = response.json()["plan"]["planning"]
    assert (planning["planner"], planning["model"]) == ("llm", MODEL)
    assert planning["usage"] == {
        "prompt_tokens": 800,
        "completion_tokens": 100,
        "cached_prompt_tokens": 0,
    }
    assert planning["cost_usd"] == pytest.approx((800 + 100 * 2) / 1e6)
