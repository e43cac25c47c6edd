"""The pipeline end to end through the real broker and database.

request event → worker → MongoDB → ``persona.created`` → every API endpoint.
"""

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import pytest

from persona_contracts import PersonaRequested
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import Worker, create_worker
from persona_worker.generators.base import Generated, GenerationTask
from persona_worker.generators.offline import OfflineGenerator
from tests.support.kafka import collect, created_events, produce
from tests.support.serve import serve
from tests.support.through_api import settled

pytestmark = pytest.mark.integration


class CountingGenerator:
    """The offline generator, counting calls per (request seed, ordinal)."""

    def __init__(self) -> None:
        self._inner = OfflineGenerator()
        self.calls: list[int] = []
        self.name, self.model = self._inner.name, self._inner.model

    async def generate(self, task: GenerationTask) -> Generated:
        self.calls.append(task.ordinal)
        return await self._inner.generate(task)

    async def aclose(self) -> None:
        await self._inner.aclose()


@pytest.fixture
def generator() -> CountingGenerator:
    return CountingGenerator()


@pytest.fixture
async def worker(settings: Settings, generator: CountingGenerator) -> AsyncIterator[Worker]:
    built = create_worker(settings, generator=generator)
    async with serve(built.app):
        yield built


async def test_request_is_generated_stored_announced_and_served(
    settings: Settings, worker: Worker, api: httpx.AsyncClient
) -> None:
    request = PersonaRequested(brief="urban cyclists in Berlin", count=3, seed=7)
    await publish_requests(settings, [request])

    events = await created_events(settings, request.request_id, 3)
    assert sorted(e.persona.ordinal for e in events) == [0, 1, 2]
    assert len({e.event_id for e in events}) == 3

    listed = (await api.get("/v1/persona", params={"request_id": str(request.request_id)})).json()
    assert {p["id"] for p in listed["items"]} == {str(e.persona.id) for e in events}

    one = events[0].persona
    got = await api.get(f"/v1/persona/{one.id}")
    assert got.status_code == 200
    assert got.json()["name"] == one.name

    found = (await api.get("/v1/persona/search", params={"q": one.location.city})).json()
    assert str(one.id) in {p["id"] for p in found["items"]}

    stats = (await api.get("/v1/persona/stats")).json()
    assert stats["total"] == 3
    assert sum(stats["by_country"].values()) == 3

    status = await settled(api, request.request_id)
    assert (status["status"], status["stored"], status["failed"]) == ("completed", 3, 0)


async def test_redelivered_request_creates_no_duplicate_and_no_second_llm_call(
    settings: Settings, worker: Worker, generator: CountingGenerator, api: httpx.AsyncClient
) -> None:
    request = PersonaRequested(brief="night-shift nurses", count=4)
    await publish_requests(settings, [request])
    await created_events(settings, request.request_id, 4)
    await publish_requests(
        settings, [request]
    )  # the same event again, as a redelivery would bring it

    events = await created_events(settings, request.request_id, 8)  # re-announced, same ids
    assert len({e.event_id for e in events}) == 4
    listed = (await api.get("/v1/persona", params={"request_id": str(request.request_id)})).json()
    assert len(listed["items"]) == 4
    assert sorted(generator.calls) == [0, 1, 2, 3]
    assert (await api.get("/v1/persona/stats")).json()["total"] == 4


async def test_a_copy_arriving_while_the_request_runs_waits_and_costs_nothing(
    settings: Settings, worker: Worker, generator: CountingGenerator, api: httpx.AsyncClient
) -> None:
    """Both copies are in the worker at once (published together); the second waits for
    the first instead of generating the ordinals the first has not stored yet."""
    request = PersonaRequested(brief="tugboat captains", count=6)
    await publish_requests(settings, [request, request])

    events = await created_events(settings, request.request_id, 12)  # stored once, told twice
    assert len({e.event_id for e in events}) == 6
    assert sorted(generator.calls) == list(range(6))
    assert (await api.get("/v1/persona/stats")).json()["total"] == 6
    # A request settles after its last event is published, not before: wait for it.
    status = await settled(api, request.request_id)
    assert (status["status"], status["stored"]) == ("completed", 6)


async def test_malformed_events_go_to_the_dlq_and_the_next_request_still_runs(
    settings: Settings, worker: Worker
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    not_json = b"\xff this is not json"
    too_many = json.dumps({"brief": "x", "count": 10_001}).encode()
    await produce(bootstrap, settings.topics.requests, not_json, key=b"bad-1")
    await produce(bootstrap, settings.topics.requests, too_many, key=b"bad-2")
    request = PersonaRequested(brief="after the bad ones", count=1)
    await publish_requests(settings, [request])

    await created_events(settings, request.request_id, 1)
    dead = await collect(bootstrap, settings.topics.dead_letter, lambda rs: len(rs) >= 2)
    assert [r.value for r in dead] == [not_json, too_many]
    headers = [dict(r.headers) for r in dead]
    assert all(h["x-dlq-source-topic"] == settings.topics.requests.encode() for h in headers)
    assert b"count" in headers[1]["x-dlq-error"]
    assert all(h["x-dlq-failed-at"] for h in headers)


class FailsOnceGenerator(CountingGenerator):
    """Raises an unexpected (non-generation) error the first time it sees ``ordinal``,
    as a database or broker outage surfacing mid-request would."""

    def __init__(self, ordinal: int) -> None:
        super().__init__()
        self._fail_ordinal = ordinal
        self._failed = False

    async def generate(self, task: GenerationTask) -> Generated:
        if task.ordinal == self._fail_ordinal and not self._failed:
            self._failed = True
            await asyncio.sleep(0.5)  # let the other ordinals be stored first
            raise ConnectionError("simulated outage")
        return await super().generate(task)


async def test_an_unexpected_error_redelivers_the_request_without_regenerating(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    flaky = FailsOnceGenerator(ordinal=2)
    async with serve(create_worker(settings, generator=flaky).app):
        request = PersonaRequested(brief="redelivered after an outage", count=3)
        await publish_requests(settings, [request])
        events = await created_events(settings, request.request_id, 3, distinct=True)
    assert sorted({e.persona.ordinal for e in events}) == [0, 1, 2]
    assert sorted(flaky.calls) == [0, 1, 2]  # ordinals stored before the error were not redone
    status = (await api.get(f"/v1/requests/{request.request_id}")).json()
    assert (status["status"], status["stored"]) == ("completed", 3)
