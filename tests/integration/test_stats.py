"""Statistics: maintained incrementally by the worker, and a rebuild that agrees with them."""

import asyncio
from datetime import UTC, datetime

import pytest

from persona_pipeline.consumers.app import create_worker
from persona_pipeline.contracts import PersonaRequested
from persona_pipeline.core.mongo import Collections, connect
from persona_pipeline.core.settings import Settings
from persona_pipeline.core.stats_store import DAYS, StatsStore
from persona_pipeline.producers.request_command import publish_requests
from tests.support.kafka import created_events
from tests.support.serve import serve

pytestmark = pytest.mark.integration


async def test_incremental_stats_survive_redelivery_and_match_a_rebuild(
    settings: Settings,
) -> None:
    requests = [
        PersonaRequested(brief="stats drill", count=4),
        PersonaRequested(brief="stats drill two", count=3, constraints={"country": "JP"}),
    ]
    async with serve(create_worker(settings).app):
        await publish_requests(settings, requests)
        await publish_requests(settings, requests[:1])  # a redelivery of the first
        for request in requests:
            await created_events(settings, request.request_id, request.count, distinct=True)
        await asyncio.sleep(0.5)  # the redelivered copy settles after its events
    client = connect(settings)
    stats = StatsStore(Collections.of(client[settings.mongodb_database]))
    try:
        incremental = await stats.snapshot()
        rebuilt = await stats.rebuild()
    finally:
        await client.close()
    assert incremental.total == 7
    assert incremental.by_country.get("Japan") == 3
    assert sum(incremental.by_age_bucket.values()) == 7
    today = datetime.now(UTC).date().isoformat()
    assert len(incremental.personas_per_day) == DAYS
    assert incremental.personas_per_day[today] == 7
    assert rebuilt == incremental
