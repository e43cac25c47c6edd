"""Adaptive concurrency through the whole worker: a server that sustains K calls in flight,
a ceiling far above it. The limit must settle near K, with few calls answered 429 and
every persona stored; a fixed limit at the ceiling shows what it saves."""

import asyncio

import pytest
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from persona_contracts import PersonaRequested
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.fake_openai import FakeOpenAI
from tests.support.serve import serve

pytestmark = pytest.mark.integration
CAPACITY, CEILING = 8, 48
REQUESTS, PER_REQUEST = 16, 10


def _limit(registry: CollectorRegistry) -> float:
    value = registry.get_sample_value("persona_llm_concurrency_limit")
    assert value is not None
    return value


async def _run(settings: Settings, fake: FakeOpenAI) -> float:
    """Generate every persona; returns the worker's concurrency limit at the end."""
    requests = [
        PersonaRequested(brief=f"capacity drill {i}", count=PER_REQUEST) for i in range(REQUESTS)
    ]
    worker = create_worker(settings)
    mongo: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        settings.mongodb_uri.get_secret_value()
    )
    personas = mongo[settings.mongodb_database]["personas"]
    try:
        async with serve(worker.app):
            await publish_requests(settings, requests)
            async with asyncio.timeout(120):
                while await personas.count_documents({}) < REQUESTS * PER_REQUEST:
                    await asyncio.sleep(0.1)
            return _limit(worker.registry)
    finally:
        await mongo.close()


@pytest.fixture
def capacity_settings(settings: Settings) -> Settings:
    return derive(
        settings,
        generator="auto",
        openai_api_key="sk-test-capacity",
        openai_model="gpt-test-mini",
        generation_concurrency=CEILING,
        openai_rpm=0,
        openai_tpm=0,
        generation_max_retries=20,
        generation_backoff_base_s=0.05,
        generation_backoff_max_s=0.5,
    )


async def test_the_limit_settles_near_what_the_server_sustains(
    capacity_settings: Settings,
) -> None:
    async with FakeOpenAI(latency=0.1, capacity=CAPACITY) as fake:
        settings = derive(capacity_settings, openai_base_url=fake.base_url)
        limit = await _run(settings, fake)
        rejected, calls = fake.rejected_for_capacity, fake.calls
    assert CAPACITY * 0.5 <= limit <= CAPACITY * 1.75, f"limit {limit} for capacity {CAPACITY}"
    assert rejected / calls <= 0.15, f"{rejected} of {calls} calls answered 429"


async def test_a_fixed_limit_at_the_ceiling_keeps_hitting_the_server_s_capacity(
    capacity_settings: Settings,
) -> None:
    fixed = derive(capacity_settings, generation_adaptive_concurrency=False)
    async with FakeOpenAI(latency=0.1, capacity=CAPACITY) as fake:
        limit = await _run(derive(fixed, openai_base_url=fake.base_url), fake)
        rejected, calls = fake.rejected_for_capacity, fake.calls
    assert limit == CEILING
    assert rejected / calls > 0.3, "without adaptation most calls beyond K are refused"
