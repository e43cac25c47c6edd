"""Brief -> plan -> personas that honour it, through the real broker, database and API."""

import asyncio
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from persona_audience.planner import RulePlanner
from persona_contracts import PersonaRequested
from persona_contracts.plan import AudiencePlan
from persona_infra.mongo import connect
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import Worker, create_worker
from tests.support.kafka import collect, created_events, produce
from tests.support.serve import serve

pytestmark = pytest.mark.integration


class CountingPlanner:
    """The rule planner, counting how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    async def plan(self, request: PersonaRequested) -> AudiencePlan:
        self.calls += 1
        return await RulePlanner.default().plan(request)


@pytest.fixture
def planner() -> CountingPlanner:
    return CountingPlanner()


@pytest.fixture
async def worker(settings: Settings, planner: CountingPlanner) -> AsyncIterator[Worker]:
    built = create_worker(settings, planner=planner)
    async with serve(built.app):
        yield built


async def finished(api: httpx.AsyncClient, request_id: str) -> dict[str, object]:
    for _ in range(300):
        status = (await api.get(f"/v1/requests/{request_id}")).json()
        if status.get("status") in {"completed", "partial", "failed"}:
            return dict(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"request {request_id} did not finish")


async def personas_of(api: httpx.AsyncClient, request_id: str) -> list[dict[str, object]]:
    page = await api.get("/v1/persona", params={"request_id": request_id, "limit": 100})
    return list(page.json()["items"])


async def test_personas_answer_the_brief_in_the_planned_counts(
    worker: Worker, api: httpx.AsyncClient
) -> None:
    body = {"brief": "nurses in Lisbon and Porto", "count": 10, "seed": 3}
    preview = (await api.post("/v1/plans", json=body)).json()
    accepted = (await api.post("/v1/persona", json=body)).json()
    status = await finished(api, accepted["request_id"])

    assert status["status"] == "completed"
    assert status["plan"] == preview["plan"], "the request used the plan the preview showed"
    personas = await personas_of(api, accepted["request_id"])
    assert len(personas) == 10
    assert {p["occupation"] for p in personas} == {"Nurse"}
    cities = Counter(p["location"]["city"] for p in personas)  # type: ignore[index]
    planned = {q["label"].split(",")[0]: q["count"] for q in preview["quotas"]["locations"]}
    assert cities == planned == {"Lisbon": 7, "Porto": 3}
    assert all(21 <= int(str(p["age"])) <= 70 for p in personas)
    cells = [p["plan_cell"] for p in personas]
    assert all(cell and cell["occupation"] == "Nurse" for cell in cells)  # type: ignore[index]
    found = (await api.get("/v1/persona/search", params={"q": "nursing", "limit": 100})).json()
    assert {p["id"] for p in found["items"]} == {p["id"] for p in personas}


async def test_a_redelivery_reuses_the_stored_plan_and_reproduces_the_skeletons(
    settings: Settings, worker: Worker, planner: CountingPlanner, api: httpx.AsyncClient
) -> None:
    request = PersonaRequested(brief="urban cyclists in Berlin", count=4, seed=11)
    await publish_requests(settings, [request])
    first = {
        e.persona.ordinal: e.persona for e in await created_events(settings, request.request_id, 4)
    }

    client = connect(settings)
    personas = client[settings.mongodb_database]["personas"]
    await personas.delete_many({"request_id": request.request_id, "ordinal": {"$in": [1, 3]}})
    await client.close()
    await publish_requests(settings, [request])  # as a redelivery would bring it back
    events = await created_events(settings, request.request_id, 8)
    again = {e.persona.ordinal: e.persona for e in events[4:]}

    assert planner.calls == 1, "the plan stored with the request was reused"
    for ordinal in (1, 3):
        regenerated, original = again[ordinal], first[ordinal]
        assert regenerated.model_dump(exclude={"created_at"}) == original.model_dump(
            exclude={"created_at"}
        )
    status = await finished(api, str(request.request_id))
    assert (status["status"], status["stored"]) == ("completed", 4)


async def test_a_preview_stores_and_queues_nothing(
    settings: Settings, worker: Worker, api: httpx.AsyncClient
) -> None:
    response = await api.post("/v1/plans", json={"brief": "urban cyclists in Berlin", "count": 20})
    assert response.status_code == 200
    preview = response.json()
    assert preview["plan"]["subject"] == "urban cyclists"
    assert preview["plan"]["locations"]["source"] == "brief"
    assert sum(q["count"] for q in preview["quotas"]["genders"]) == 20
    assert [t["name"] for t in preview["plan"]["traits"]] == ["how they ride"]

    client = connect(settings)
    database = client[settings.mongodb_database]
    assert await database["requests"].count_documents({}) == 0
    assert await database["personas"].count_documents({}) == 0
    await client.close()


async def test_a_contradiction_is_a_422_and_nothing_is_queued(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    body = {"brief": "teenagers who skateboard", "count": 3, "constraints": {"min_age": 40}}
    for path in ("/v1/persona", "/v1/plans"):
        response = await api.post(path, json=body)
        assert response.status_code == 422
        problem = response.json()
        assert problem["title"] == "Cannot plan this audience"
        assert "16-19" in problem["detail"]
        assert "min_age 40" in problem["errors"][0]["msg"]
    client = connect(settings)
    assert await client[settings.mongodb_database]["requests"].count_documents({}) == 0
    await client.close()


async def test_a_contradiction_on_kafka_is_dead_lettered_and_the_next_request_runs(
    settings: Settings, worker: Worker, api: httpx.AsyncClient
) -> None:
    contradictory = PersonaRequested(
        brief="mothers in Lima", count=2, constraints={"genders": {"male": 1}}
    )
    raw = contradictory.model_dump_json().encode()
    await produce(settings.kafka_bootstrap_servers, settings.topics.requests, raw)
    fine = PersonaRequested(brief="mothers in Lima", count=1)
    await publish_requests(settings, [fine])

    await created_events(settings, fine.request_id, 1)
    dead = await collect(
        settings.kafka_bootstrap_servers, settings.topics.dead_letter, lambda rs: len(rs) >= 1
    )
    assert dead[0].value == raw
    error = dict(dead[0].headers)["x-dlq-error"].decode()
    assert error.startswith("cannot plan the audience: the brief is about female")
    status = await finished(api, str(contradictory.request_id))
    assert (status["status"], status["error"]) == ("failed", error)


async def test_a_previewed_plan_can_be_sent_back_as_the_audience(
    worker: Worker, api: httpx.AsyncClient
) -> None:
    preview = (await api.post("/v1/plans", json={"brief": "farmers in Bavaria", "count": 5})).json()
    body = {"brief": "our new tractor app", "count": 5, "audience": preview["plan"]}
    accepted = (await api.post("/v1/persona", json=body)).json()
    status = await finished(api, accepted["request_id"])
    assert status["plan"] == preview["plan"]
    personas = await personas_of(api, accepted["request_id"])
    assert {p["location"]["region"] for p in personas} == {"Bavaria"}  # type: ignore[index]
    assert {p["occupation"] for p in personas} == {"Farmer"}
