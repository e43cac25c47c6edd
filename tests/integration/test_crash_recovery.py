"""kill -9 of a worker in the middle of a run, then a restart: nothing lost, nothing paid twice.

The worker runs as a real process with the OpenAI generator pointed at the fake
server, which records a client request id (request and ordinal) per call.
"""

import asyncio
import signal
from collections import Counter

import pytest
from pymongo import AsyncMongoClient

from persona_contracts import PersonaCreated, PersonaRequested
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from tests.support.fake_openai import FakeOpenAI
from tests.support.kafka import collect
from tests.support.processes import start_worker, stop, worker_env

pytestmark = pytest.mark.integration
REQUESTS, PER_REQUEST = 50, 5


def _calls(fake: FakeOpenAI) -> Counter[str]:
    """Calls per "request_id:ordinal:variant", the id the generator sends with each call."""
    return Counter(i for h in fake.request_headers if (i := h.get("x-client-request-id")))


def _ordinal(call_id: str) -> str:
    return ":".join(call_id.split(":")[:2])


async def _stored_keys(client: AsyncMongoClient[dict[str, object]], db: str) -> set[str]:
    cursor = client[db]["personas"].find({}, {"request_id": 1, "ordinal": 1})
    return {f"{d['request_id']}:{d['ordinal']}" async for d in cursor}


async def test_kill_9_mid_run_then_restart_stores_each_persona_exactly_once(
    settings: Settings,
) -> None:
    requests = [
        PersonaRequested(brief=f"crash drill {i}", count=PER_REQUEST) for i in range(REQUESTS)
    ]
    await publish_requests(settings, requests)
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value(), uuidRepresentation="standard"
    )
    personas = mongo[settings.mongodb_database]["personas"]
    with FakeOpenAI(latency=0.15) as fake:
        env = worker_env(
            settings,
            OPENAI_API_KEY="sk-test-crash",
            OPENAI_BASE_URL=fake.base_url,
            GENERATION_CONCURRENCY="16",
            OPENAI_RPM="0",
            OPENAI_TPM="0",
        )
        first = start_worker(env)
        async with asyncio.timeout(60):
            while await personas.count_documents({}) < 60:
                await asyncio.sleep(0.05)
        assert stop(first, signal.SIGKILL) == -signal.SIGKILL
        stored_at_kill = await _stored_keys(mongo, settings.mongodb_database)
        calls_at_kill = _calls(fake)
        assert 0 < len(stored_at_kill) < REQUESTS * PER_REQUEST, "the kill must land mid-run"

        second = start_worker(env)
        try:
            async with asyncio.timeout(120):
                while await personas.count_documents({}) < REQUESTS * PER_REQUEST:
                    await asyncio.sleep(0.1)
            created = await collect(
                settings.kafka_bootstrap_servers,
                settings.topics.created,
                lambda rs: (
                    len({PersonaCreated.model_validate_json(r.value).persona.id for r in rs})
                    >= REQUESTS * PER_REQUEST
                ),
            )
        finally:
            stop(second)
        calls_total = _calls(fake)

    stored = await _stored_keys(mongo, settings.mongodb_database)
    await mongo.close()
    assert len(stored) == REQUESTS * PER_REQUEST
    after_restart = {_ordinal(call) for call in calls_total - calls_at_kill}
    assert not after_restart & stored_at_kill, "a stored ordinal was generated again"
    repeated = [call for call, n in calls_total.items() if n > 1]
    assert all(calls_total[call] == 2 for call in repeated)  # only calls the kill cut short
    assert not {_ordinal(call) for call in repeated} & stored_at_kill
    announced = {PersonaCreated.model_validate_json(r.value).persona.id for r in created}
    assert len(announced) == REQUESTS * PER_REQUEST
    print(  # the closing note quotes these
        f"\nkill -9 drill: stored at kill {len(stored_at_kill)}, final {len(stored)}, "
        f"LLM calls {sum(calls_total.values())} ({len(calls_total)} distinct), "
        f"calls repeated after the kill {len(repeated)}"
    )
