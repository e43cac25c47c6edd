"""Statistics: maintained incrementally by the worker, and a rebuild that agrees with them."""

import asyncio
from datetime import UTC, datetime

import httpx
import pytest

from persona_api.app import create_app
from persona_api.stats_queries import DAYS, StatsQueries
from persona_contracts import PersonaRequested
from persona_infra.api_keys import generate_key, make_entry
from persona_infra.mongo import Collections, connect
from persona_infra.settings import Settings
from persona_infra.stats_document import newest_counted
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.kafka import created_events
from tests.support.serve import serve

pytestmark = pytest.mark.integration


async def test_incremental_stats_survive_redelivery_and_match_a_rebuild(
    settings: Settings,
) -> None:
    requests = [
        PersonaRequested(brief="stats drill", count=4, constraints={"country": "BR"}),
        PersonaRequested(brief="stats drill two", count=3, constraints={"country": "JP"}),
    ]
    async with serve(create_worker(settings).app):
        await publish_requests(settings, requests)
        await publish_requests(settings, requests[:1])  # a redelivery of the first
        for request in requests:
            await created_events(settings, request.request_id, request.count, distinct=True)
        await asyncio.sleep(0.5)  # the redelivered copy settles after its events
    client = connect(settings)
    collections = Collections.of(client[settings.mongodb_database])
    stats = StatsQueries(collections)
    try:
        incremental = await stats.snapshot()
        newest = await newest_counted(collections.stats)
        rebuilt = await stats.rebuild()
        newest_rebuilt = await newest_counted(collections.stats)
        keys = await collections.personas.distinct("sort_key")
    finally:
        await client.close()
    # Where newest-first reads start: the newest persona counted, kept by both ways.
    assert newest == newest_rebuilt == max(keys)
    assert incremental.total == 7
    assert incremental.by_country.get("Japan") == 3
    assert sum(incremental.by_age_bucket.values()) == 7
    pyramid = incremental.by_age_and_gender
    assert {b: sum(g.values()) for b, g in pyramid.items()} == incremental.by_age_bucket
    today = datetime.now(UTC).date().isoformat()
    assert len(incremental.personas_per_day) == DAYS
    assert incremental.personas_per_day[today] == 7
    assert rebuilt == incremental


async def test_the_admin_rebuild_route_needs_an_admin_key(settings: Settings) -> None:
    admin_key, writer_key = generate_key(), generate_key()
    secured = derive(
        settings,
        admin_api_keys=make_entry("ops", admin_key),
        api_keys=make_entry("ingest", writer_key),
    )
    async with serve(create_app(secured)) as url, httpx.AsyncClient(base_url=url) as api:
        assert (await api.post("/v1/admin/stats/rebuild")).status_code == 401
        as_writer = await api.post("/v1/admin/stats/rebuild", headers={"X-API-Key": writer_key})
        assert as_writer.status_code == 403
        rebuilt = await api.post(
            "/v1/admin/stats/rebuild", headers={"Authorization": f"Bearer {admin_key}"}
        )
        assert rebuilt.status_code == 200
        assert rebuilt.json() == (await api.get("/v1/persona/stats")).json()
