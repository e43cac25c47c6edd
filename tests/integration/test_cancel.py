"""Cancelling synchronous requests through the API, with the real broker and database: a
request nobody took yet never runs; a generating one stops starting personas and keeps
what it stored."""

import asyncio
from typing import Any

import httpx
import pytest

from persona_api.app import create_app
from persona_infra.settings import Settings
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.fake_openai import FakeOpenAI
from tests.support.serve import serve

pytestmark = pytest.mark.integration


async def _status(api: httpx.AsyncClient, request_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/requests/{request_id}")
    assert response.status_code == 200, response.text
    return dict(response.json())


async def _until(api: httpx.AsyncClient, request_id: str, *states: str) -> dict[str, Any]:
    async with asyncio.timeout(60):
        while (status := await _status(api, request_id))["status"] not in states:
            await asyncio.sleep(0.05)
    return status


async def test_a_request_cancelled_before_a_worker_takes_it_never_runs(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    accepted = await api.post("/v1/persona", json={"brief": "ferry crews", "count": 3})
    request_id = accepted.json()["request_id"]
    cancelled = await api.post(f"/v1/requests/{request_id}/cancel")
    assert cancelled.status_code == 202
    assert cancelled.json()["status"] == "cancelled"

    async with serve(create_worker(settings).app):
        await asyncio.sleep(1.5)  # long enough for the event to be consumed
        status = await _status(api, request_id)
    assert (status["status"], status["stored"]) == ("cancelled", 0)


async def test_a_generating_request_stops_starting_personas_once_cancelled(
    settings: Settings,
) -> None:
    async with FakeOpenAI(latency=0.3) as fake:
        slow = derive(
            settings,
            generator="auto",
            openai_api_key="sk-test-cancel",
            openai_base_url=fake.base_url,
            openai_model="gpt-test-mini",
            generation_concurrency=2,
            generation_adaptive_concurrency=False,
            reconcile_stale_after_s=1.0,  # heartbeats (and so cancel checks) every 0.25 s
        )
        async with (
            serve(create_worker(slow).app),
            serve(create_app(slow)) as url,
            httpx.AsyncClient(base_url=url) as api,
        ):
            accepted = await api.post("/v1/persona", json={"brief": "tram drivers", "count": 40})
            request_id = accepted.json()["request_id"]
            async with asyncio.timeout(30):
                while (await _status(api, request_id))["stored"] < 2:
                    await asyncio.sleep(0.05)
            await api.post(f"/v1/requests/{request_id}/cancel")
            final = await _until(api, request_id, "cancelled", "completed", "partial", "failed")
    assert final["status"] == "cancelled"
    assert 2 <= final["stored"] < 40
    assert final["failed"] == 0, "personas never started are not failures"
    assert fake.calls < 40
