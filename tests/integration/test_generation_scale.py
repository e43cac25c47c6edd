"""Generation at scale through the real broker and database: overlap, dedup, shutdown."""

import asyncio
import signal
from collections.abc import Iterator

import httpx
import pytest
from pymongo import AsyncMongoClient

from persona_api.app import create_app
from persona_contracts import PersonaCreated, PersonaRequested
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from persona_worker.generators.base import Generated, GenerationTask
from persona_worker.generators.offline import OfflineGenerator
from tests.conftest import derive
from tests.support.fake_openai import FakeOpenAI
from tests.support.kafka import collect, created_events
from tests.support.processes import start_worker, stop, worker_env
from tests.support.serve import serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def slow_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(latency=0.4) as server:
        yield server


async def test_calls_overlap_across_requests_up_to_the_concurrency(
    settings: Settings, slow_openai: FakeOpenAI
) -> None:
    slow_openai.reset()
    tuned = derive(
        settings,
        generator="openai",
        openai_api_key="sk-test",
        openai_base_url=slow_openai.base_url,
        generation_concurrency=6,
        openai_rpm=0,
        openai_tpm=0,
    )
    requests = [PersonaRequested(brief=f"overlap {i}", count=2) for i in range(6)]
    async with serve(create_worker(tuned).app):
        await publish_requests(tuned, requests)
        for request in requests:
            await created_events(tuned, request.request_id, 2, distinct=True)
    assert slow_openai.calls == 12
    assert slow_openai.max_in_flight == 6  # six calls at once, from several requests


class SameAnswerGenerator:
    """Answers every task with the narrative of the first: a model stuck in a rut."""

    name, model = "offline", "offline-v1"

    def __init__(self) -> None:
        self._inner = OfflineGenerator()
        self._first: Generated | None = None
        self.calls = 0

    async def generate(self, task: GenerationTask) -> Generated:
        self.calls += 1
        if self._first is None:
            self._first = await self._inner.generate(task)
        return self._first

    async def aclose(self) -> None:
        return None


async def test_near_duplicates_are_regenerated_then_marked(settings: Settings) -> None:
    rut = SameAnswerGenerator()
    # Same name and bio, different occupation and city: MinHash similarity about 0.75.
    tuned = derive(
        settings,
        near_duplicate_threshold=0.7,
        near_duplicate_max_regenerations=2,
        generation_concurrency=1,
    )
    request = PersonaRequested(brief="a model in a rut", count=3, seed=5)
    async with serve(create_worker(tuned, generator=rut).app):
        await publish_requests(tuned, [request])
        events = await created_events(tuned, request.request_id, 3, distinct=True)
    personas = sorted((e.persona for e in events), key=lambda p: p.ordinal)
    first, *rest = personas
    assert first.near_duplicate_of is None
    earlier = {p.ordinal: {q.id for q in personas if q.ordinal < p.ordinal} for p in rest}
    assert all(p.near_duplicate_of in earlier[p.ordinal] for p in rest)
    assert rut.calls == 1 + 2 * 3  # two regenerations for each later ordinal
    async with serve(create_app(tuned)) as url, httpx.AsyncClient(base_url=url) as api:
        stats = (await api.get("/v1/persona/stats")).json()
    assert stats["near_duplicates_caught"] == 6
    assert stats["total"] == 3


async def test_sigterm_finishes_running_requests_and_loses_nothing(
    settings: Settings, slow_openai: FakeOpenAI
) -> None:
    slow_openai.reset()
    env = worker_env(
        settings,
        OPENAI_API_KEY="sk-test",
        OPENAI_BASE_URL=slow_openai.base_url,
        GENERATION_CONCURRENCY="4",
        MAX_REQUESTS_IN_FLIGHT="2",
        OPENAI_RPM="0",
        OPENAI_TPM="0",
        SHUTDOWN_GRACE_S="20",
    )
    requests = [PersonaRequested(brief=f"drain {i}", count=4) for i in range(6)]
    await publish_requests(settings, requests)
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(), uuidRepresentation="standard"
    )
    personas = mongo[settings.mongodb_database]["personas"]
    worker = start_worker(env)
    async with asyncio.timeout(30):
        while slow_openai.in_flight == 0:
            await asyncio.sleep(0.02)
    # uvicorn re-raises the signal once shut down: "killed by SIGTERM" is the clean exit.
    assert stop(worker, signal.SIGTERM) in (0, -signal.SIGTERM)
    after_drain = await personas.count_documents({})
    assert after_drain > 0
    assert after_drain % 4 == 0, "running requests finish whole while draining"
    second = start_worker(env)
    try:
        async with asyncio.timeout(60):
            while await personas.count_documents({}) < 24:
                await asyncio.sleep(0.05)
        records = await collect(
            settings.kafka_bootstrap_servers,
            settings.topics.created,
            lambda rs: len({r.value for r in rs}) >= 24,
        )
    finally:
        stop(second)
    await mongo.close()
    assert len({PersonaCreated.model_validate_json(r.value).persona.id for r in records}) == 24
    assert slow_openai.calls == 24  # drained requests were not generated again
