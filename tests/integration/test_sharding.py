"""Large requests in shards through the real broker and database: every worker of the
group takes shards of one request, every ordinal is stored and announced once, and the
request's status shows its shards until the last one settles it."""

import asyncio
import contextlib
import signal
from collections import Counter
from collections.abc import AsyncIterator

import httpx
import pytest

from persona_contracts import PersonaRequested
from persona_infra.mongo import connect
from persona_infra.settings import Settings
from persona_producers.cli import cancel_request
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from persona_worker.generators.base import Generated, GenerationTask
from tests.integration.test_pipeline import CountingGenerator
from tests.support.fake_openai import FakeOpenAI
from tests.support.kafka import created_events
from tests.support.processes import start_worker, stop, worker_env
from tests.support.serve import serve
from tests.support.through_api import settled

pytestmark = pytest.mark.integration

SHARD = 20


@contextlib.asynccontextmanager
async def workers(settings: Settings, n: int) -> AsyncIterator[list[CountingGenerator]]:
    """``n`` workers of one group, in this process, each with its own generator."""
    generators = [CountingGenerator() for _ in range(n)]
    async with contextlib.AsyncExitStack() as stack:
        for generator in generators:
            await stack.enter_async_context(serve(create_worker(settings, generator=generator).app))
        yield generators


async def test_every_worker_takes_shards_and_every_ordinal_is_stored_once(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    sharded = settings.model_copy(update={"request_shard_size": SHARD})
    request = PersonaRequested(brief="commuters in Manchester", count=200, seed=11)
    async with workers(sharded, 3) as generators:
        await publish_requests(sharded, [request])
        status = await settled(api, request.request_id, timeout=120)
        events = await created_events(sharded, request.request_id, 200, distinct=True)

    assert (status["status"], status["stored"], status["failed"]) == ("completed", 200, 0)
    assert status["shards"] == {"total": 10, "done": 10}
    assert sorted({e.persona.ordinal for e in events}) == list(range(200))
    calls = [len(g.calls) for g in generators]
    assert sum(calls) == 200, calls  # no ordinal generated twice
    assert sum(1 for c in calls if c) >= 2, calls  # the request was shared

    client = connect(sharded)
    personas = client[sharded.mongodb_database]["personas"]
    assert await personas.count_documents({"request_id": request.request_id}) == 200
    stats = (await api.get("/v1/persona/stats")).json()
    assert stats["total"] == 200
    await client.close()


class SlowGenerator(CountingGenerator):
    """The offline generator, a tenth of a second per call."""

    async def generate(self, task: GenerationTask) -> Generated:
        await asyncio.sleep(0.1)
        return await super().generate(task)


async def test_the_live_stored_count_of_a_sharded_request_is_what_the_store_holds(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    """While shards run, ``stored`` sums the done shards and counts the running ones: read
    between two counts of the request's personas, it lies between them."""
    slow = settings.model_copy(update={"request_shard_size": SHARD, "generation_concurrency": 4})
    request = PersonaRequested(brief="commuters in Manchester", count=100, seed=7)
    client = connect(slow)
    personas = client[slow.mongodb_database]["personas"]
    seen: list[tuple[int, int, int, int]] = []
    async with serve(create_worker(slow, generator=SlowGenerator()).app):
        await publish_requests(slow, [request])
        await created_events(slow, request.request_id, 1)
        while len(seen) < 100:
            before = await personas.count_documents({"request_id": request.request_id})
            status = (await api.get(f"/v1/requests/{request.request_id}")).json()
            after = await personas.count_documents({"request_id": request.request_id})
            if status["status"] != "generating":
                break
            seen.append((before, int(status["stored"]), after, status["shards"]["done"]))
    await client.close()

    assert all(before <= stored <= after for before, stored, after, _ in seen), seen
    assert any(0 < stored < 100 for _, stored, _, _ in seen), seen
    assert any(done > 0 for *_, done in seen), "no read while some shards were done"
    assert [stored for _, stored, _, _ in seen] == sorted(stored for _, stored, _, _ in seen)


async def test_a_cancel_stops_the_shards_not_started_and_ends_the_request_cancelled(
    settings: Settings, api: httpx.AsyncClient, capsys: pytest.CaptureFixture[str]
) -> None:
    slow = settings.model_copy(
        update={
            "request_shard_size": SHARD,
            "generation_concurrency": 4,  # two shards of 20 taken at a time
            "reconcile_stale_after_s": 2.0,  # heartbeats (and cancel checks) every 0.5 s
            "persona_api_url": str(api.base_url),
        }
    )
    request = PersonaRequested(brief="commuters in Manchester", count=200, seed=5)
    generator = SlowGenerator()
    async with serve(create_worker(slow, generator=generator).app):
        await publish_requests(slow, [request])
        await created_events(slow, request.request_id, SHARD, distinct=True)
        assert await cancel_request(slow, request.request_id) == 0
        status = await settled(api, request.request_id, timeout=120)
        calls_when_done = len(generator.calls)
        await asyncio.sleep(1.0)

    assert "stored" in capsys.readouterr().out
    assert status["status"] == "cancelled"
    assert SHARD <= int(str(status["stored"])) < 200
    assert status["shards"] == {"total": 10, "done": 10}  # every shard settled, most empty
    assert len(generator.calls) == calls_when_done  # nothing generated after it ended
    assert len(generator.calls) < 200


async def test_kill_9_of_one_of_three_workers_leaves_exactly_the_requested_personas(
    settings: Settings,
) -> None:
    """1,000 personas in shards of 25 over three worker processes; one is killed with
    SIGKILL mid-request. The others finish its shards once its leases lapse."""
    request = PersonaRequested(brief="shoppers in Leeds", count=1000, seed=9)
    client = connect(settings)
    personas = client[settings.mongodb_database]["personas"]
    requests = client[settings.mongodb_database]["requests"]
    with FakeOpenAI(latency=0.15) as fake:
        shared = {
            "OPENAI_API_KEY": "sk-test-shards",
            "OPENAI_BASE_URL": fake.base_url,
            "GENERATION_CONCURRENCY": "16",
            "OPENAI_RPM": "0",
            "OPENAI_TPM": "0",
            "REQUEST_SHARD_SIZE": "25",
            "RECONCILE_INTERVAL_S": "1",
            "RECONCILE_STALE_AFTER_S": "3",
        }
        workers = [start_worker(worker_env(settings, **shared)) for _ in range(3)]
        try:
            await publish_requests(settings, [request])
            async with asyncio.timeout(120):
                while await personas.count_documents({}) < 200:
                    await asyncio.sleep(0.05)
            assert stop(workers[0], signal.SIGKILL) == -signal.SIGKILL
            stored_at_kill = await personas.count_documents({})
            assert stored_at_kill < 1000, "the kill must land mid-request"
            async with asyncio.timeout(180):
                while (await requests.find_one({"_id": request.request_id}) or {}).get(
                    "status"
                ) != "completed":
                    await asyncio.sleep(0.2)
        finally:
            for worker in workers[1:]:
                stop(worker)
        calls = Counter(i for h in fake.request_headers if (i := h.get("x-client-request-id")))

    ordinals = [d["ordinal"] async for d in personas.find({}, {"ordinal": 1})]
    await client.close()
    assert sorted(ordinals) == list(range(1000))  # each exactly once
    repeated = [call for call, n in calls.items() if n > 1]
    assert len(repeated) <= 2 * 16, repeated  # at most the calls the kill cut short
    print(  # the closing note quotes these
        f"\nshards kill -9 drill: stored at kill {stored_at_kill}, final {len(ordinals)}, "
        f"LLM calls {sum(calls.values())} ({len(calls)} distinct), repeated {len(repeated)}"
    )
