"""Batch mode end to end: the real SDK against the fake's Files and Batch APIs, the real
broker and database, the worker in process or as a process killed with -9.

What a user relies on: a ``"mode": "batch"`` request is answered through one batch (no
synchronous call), its status shows the batch while it runs, the personas arrive like
any others but at the batch price, what a round did not deliver goes into a follow-up
batch carrying only those ordinals, a worker killed while the batch runs is replaced
without a second batch, and a cancel cancels the batch.
"""

import asyncio
import signal
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest
from pymongo import AsyncMongoClient

from persona_api.app import create_app
from persona_contracts import PersonaCreated, TokenUsage
from persona_infra.settings import Settings
from persona_llm.pricing import PriceTable
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.fake_openai import FakeOpenAI, malformed
from tests.support.kafka import collect
from tests.support.processes import start_worker, stop, worker_env
from tests.support.serve import serve

pytestmark = pytest.mark.integration
MODEL = "gpt-4o-mini"  # in the shipped price table, with a batch price


@pytest.fixture
async def batch_fake() -> AsyncIterator[FakeOpenAI]:
    async with FakeOpenAI(batch_step_s=0.05) as fake:
        yield fake


@pytest.fixture
def batch_settings(settings: Settings, batch_fake: FakeOpenAI) -> Settings:
    return derive(
        settings,
        generator="auto",
        openai_api_key="sk-test-batch",
        openai_base_url=batch_fake.base_url,
        openai_model=MODEL,
        openai_batch_poll_s=0.1,
        generation_max_retries=0,
    )


async def _submit(api: httpx.AsyncClient, **body: Any) -> str:
    response = await api.post("/v1/persona", json=body)
    assert response.status_code == 202, response.text
    return str(response.json()["request_id"])


async def _status_until(
    api: httpx.AsyncClient,
    request_id: str,
    done: Callable[[dict[str, Any]], bool],
    timeout: float = 30,
) -> dict[str, Any]:
    status: dict[str, Any] = {}
    try:
        async with asyncio.timeout(timeout):
            while True:
                response = await api.get(f"/v1/requests/{request_id}")
                if response.status_code == 200:
                    status = response.json()
                    if done(status):
                        return status
                await asyncio.sleep(0.05)
    except TimeoutError:
        raise AssertionError(f"request never got there; last status: {status}") from None


def _final(status: dict[str, Any]) -> bool:
    return status["status"] in {"completed", "partial", "failed", "cancelled"}


def _custom_ids(fake: FakeOpenAI, batch: dict[str, Any]) -> set[str]:
    return {line["custom_id"] for line in fake.batch_lines(batch["id"])}


async def test_a_batch_request_is_generated_through_one_batch_at_the_batch_price(
    batch_settings: Settings, batch_fake: FakeOpenAI
) -> None:
    batch_fake.hold_batches()
    worker = create_worker(batch_settings)
    async with (
        serve(worker.app),
        serve(create_app(batch_settings)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        request_id = await _submit(api, brief="night-shift nurses in Leeds", count=4, mode="batch")
        running = await _status_until(api, request_id, lambda s: s["status"] == "batch_in_progress")
        batch_fake.release_batches()
        final = await _status_until(api, request_id, _final)
        created = await collect(
            batch_settings.kafka_bootstrap_servers,
            batch_settings.topics.created,
            lambda rs: len(rs) >= 4,
        )

    assert running["mode"] == "batch"
    assert running["batch"]["id"] == batch_fake.batches[0]["id"]
    assert (running["batch"]["round"], running["batch"]["total"]) == (1, 4)
    assert (final["status"], final["stored"], final["failed"]) == ("completed", 4, 0)
    assert batch_fake.batches_created == 1
    assert batch_fake.requests == [], "no synchronous chat call in batch mode"
    assert _custom_ids(batch_fake, batch_fake.batches[0]) == {"0-0", "1-0", "2-0", "3-0"}

    personas = [PersonaCreated.model_validate_json(r.value).persona for r in created]
    assert sorted(p.ordinal for p in personas) == [0, 1, 2, 3]
    prices = PriceTable.with_overrides({})
    for persona in personas:
        assert persona.usage.prompt_tokens > 0
        assert persona.cost_usd == prices.cost(MODEL, persona.usage, batch=True)
        assert persona.cost_usd < prices.cost(MODEL, persona.usage)
    assert final["cost_usd"] == pytest.approx(sum(p.cost_usd for p in personas))
    counted = {"generator": "batch", "outcome": "ok"}
    assert worker.registry.get_sample_value("persona_llm_calls_total", counted) == 4
    line = batch_fake.batch_lines(batch_fake.batches[0]["id"])[0]
    assert (line["method"], line["url"]) == ("POST", "/v1/chat/completions")
    assert line["body"]["response_format"]["type"] == "json_schema"


async def test_what_a_round_did_not_deliver_goes_into_a_follow_up_batch(
    batch_settings: Settings, batch_fake: FakeOpenAI
) -> None:
    batch_fake.expire_next_batch(answered=3)  # ordinals 3 and 4 never run
    batch_fake.script_batch(malformed("fields"))  # ordinal 0's answer is invalid
    async with (
        serve(create_worker(batch_settings).app),
        serve(create_app(batch_settings)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        request_id = await _submit(api, brief="allotment gardeners", count=5, mode="batch")
        final = await _status_until(api, request_id, _final)

    first, second = batch_fake.batches
    assert first["status"] == "expired"
    assert _custom_ids(batch_fake, first) == {f"{o}-0" for o in range(5)}
    assert _custom_ids(batch_fake, second) == {"0-0", "3-0", "4-0"}
    retried = next(
        line for line in batch_fake.batch_lines(second["id"]) if line["custom_id"] == "0-0"
    )
    fed_back = " ".join(str(m["content"]) for m in retried["body"]["messages"])
    assert "invalid" in fed_back.lower(), "the rejection is fed back to the model"
    assert (final["status"], final["stored"], final["failed"]) == ("completed", 5, 0)
    assert final["batch"]["round"] == 2


async def test_a_round_limit_ends_undelivered_ordinals_failed_with_the_reason(
    batch_settings: Settings, batch_fake: FakeOpenAI
) -> None:
    limited = derive(batch_settings, openai_batch_max_rounds=1)
    batch_fake.expire_next_batch(answered=1)
    async with (
        serve(create_worker(limited).app),
        serve(create_app(limited)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        request_id = await _submit(api, brief="weekend anglers", count=3, mode="batch")
        final = await _status_until(api, request_id, _final)
    assert (final["status"], final["stored"], final["failed"]) == ("partial", 1, 2)
    assert all("expired" in reason for reason in final["failures"].values())
    assert batch_fake.batches_created == 1


async def test_the_threshold_sends_large_requests_through_the_batch_api(
    batch_settings: Settings, batch_fake: FakeOpenAI
) -> None:
    thresholded = derive(batch_settings, openai_batch_threshold=3)
    async with (
        serve(create_worker(thresholded).app),
        serve(create_app(thresholded)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        large = await _submit(api, brief="commuters", count=3)
        small = await _submit(api, brief="commuters", count=2)
        forced = await _submit(api, brief="commuters", count=4, mode="sync")
        finals = [await _status_until(api, r, _final) for r in (large, small, forced)]
    assert [s["mode"] for s in finals] == ["batch", "sync", "sync"]
    assert [s["stored"] for s in finals] == [3, 2, 4]
    assert batch_fake.batches_created == 1
    assert len(batch_fake.requests) == 6, "the two sync requests made one call per persona"


async def test_cancelling_a_batch_request_cancels_its_batch(
    batch_settings: Settings, batch_fake: FakeOpenAI
) -> None:
    batch_fake.hold_batches()
    async with (
        serve(create_worker(batch_settings).app),
        serve(create_app(batch_settings)) as url,
        httpx.AsyncClient(base_url=url) as api,
    ):
        request_id = await _submit(api, brief="retired teachers", count=3, mode="batch")
        await _status_until(api, request_id, lambda s: s["status"] == "batch_in_progress")
        cancel = await api.post(f"/v1/requests/{request_id}/cancel")
        final = await _status_until(api, request_id, _final)
        again = await api.post(f"/v1/requests/{request_id}/cancel")
    assert cancel.status_code == 202
    assert cancel.json()["cancel_requested"] is True
    assert (final["status"], final["stored"]) == ("cancelled", 0)
    assert batch_fake.batches[0]["status"] == "cancelled"
    assert again.status_code == 202
    assert again.json()["status"] == "cancelled"


async def test_cancel_of_unknown_request_is_404(api: httpx.AsyncClient) -> None:
    response = await api.post("/v1/requests/00000000-0000-4000-8000-000000000000/cancel")
    assert response.status_code == 404


async def test_kill_9_while_the_batch_runs_resumes_polling_and_submits_nothing_twice(
    batch_settings: Settings, batch_fake: FakeOpenAI
) -> None:
    batch_fake.hold_batches()
    env = worker_env(
        batch_settings,
        OPENAI_API_KEY="sk-test-batch",
        OPENAI_BASE_URL=batch_fake.base_url,
        OPENAI_MODEL=MODEL,
        OPENAI_BATCH_POLL_S="0.1",
    )
    mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        batch_settings.mongodb_uri.get_secret_value(), uuidRepresentation="standard"
    )
    async with serve(create_app(batch_settings)) as url, httpx.AsyncClient(base_url=url) as api:
        first = start_worker(env)
        try:
            request_id = await _submit(api, brief="harbour pilots", count=5, mode="batch")
            await _status_until(api, request_id, lambda s: s["status"] == "batch_in_progress")
        finally:
            assert stop(first, signal.SIGKILL) == -signal.SIGKILL
        batch_fake.release_batches()
        second = start_worker(env)
        try:
            final = await _status_until(api, request_id, _final, timeout=90)
        finally:
            stop(second)
    ordinals = [
        doc["ordinal"]
        async for doc in mongo[batch_settings.mongodb_database]["personas"].find(
            {"request_id": uuid.UUID(final["request_id"])}
        )
    ]
    await mongo.close()
    assert (final["status"], final["stored"]) == ("completed", 5)
    assert sorted(ordinals) == [0, 1, 2, 3, 4]
    assert batch_fake.batches_created == 1
    assert batch_fake.calls_by_path.get("/v1/files", 0) == 1, "one upload"
    assert final["batch"]["id"] == batch_fake.batches[0]["id"]


def test_token_usage_defaults_keep_old_documents_readable() -> None:
    assert TokenUsage.model_validate({"prompt_tokens": 3, "completion_tokens": 4}).total_tokens == 7
