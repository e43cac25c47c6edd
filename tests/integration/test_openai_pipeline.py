"""The worker with a configured OpenAI key: the real SDK against a local compatible server.

Proves the generator is chosen from settings (no silent offline stand-in), that
structured output lands in MongoDB with its token usage, and that a failing
ordinal ends the request ``partial`` with a ``persona.failed`` event.
"""

from collections.abc import Iterator

import httpx
import pytest

from persona_api.app import create_app
from persona_contracts import PersonaCreated, PersonaFailed, PersonaRequested
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.fake_openai import FakeOpenAI, refusal
from tests.support.kafka import collect
from tests.support.serve import serve

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def openai_settings(settings: Settings, fake_openai: FakeOpenAI) -> Settings:
    fake_openai.reset()
    return derive(
        settings,
        generator="auto",
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url=fake_openai.base_url,
        openai_model="gpt-test-mini",
        generation_max_retries=0,
    )


async def test_worker_generates_with_openai_when_a_key_is_set(
    openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    request = PersonaRequested(brief="solo travellers over 60", count=3)
    async with serve(create_worker(openai_settings).app):
        await publish_requests(openai_settings, [request])
        records = await collect(
            openai_settings.kafka_bootstrap_servers,
            openai_settings.topics.created,
            lambda rs: len(rs) >= 3,
        )
    personas = [PersonaCreated.model_validate_json(r.value).persona for r in records]
    assert {(p.generator, p.model) for p in personas} == {("openai", "gpt-test-mini")}
    assert all(p.usage.prompt_tokens > 0 and p.usage.completion_tokens > 0 for p in personas)
    assert fake_openai.calls == 3
    sent = fake_openai.requests[0]
    assert sent["model"] == "gpt-test-mini"
    assert sent["response_format"]["type"] == "json_schema"
    prompts = " ".join(m["content"] for body in fake_openai.requests for m in body["messages"])
    assert all(p.location.city in prompts and p.occupation in prompts for p in personas)

    async with serve(create_app(openai_settings)) as url, httpx.AsyncClient(base_url=url) as api:
        root = (await api.get("/")).json()
        stats = (await api.get("/v1/persona/stats")).json()
    assert (root["generator"], root["model"]) == ("openai", "gpt-test-mini")
    assert stats["by_model"][0]["model"] == "gpt-test-mini"
    assert stats["total_tokens"] == sum(p.usage.total_tokens for p in personas)


async def test_a_refused_ordinal_ends_the_request_partial_with_a_failed_event(
    openai_settings: Settings, fake_openai: FakeOpenAI
) -> None:
    fake_openai.script(refusal())
    request = PersonaRequested(brief="anything", count=2)
    async with serve(create_worker(openai_settings).app):
        await publish_requests(openai_settings, [request])
        failed = await collect(
            openai_settings.kafka_bootstrap_servers,
            openai_settings.topics.failed,
            lambda rs: len(rs) >= 1,
        )
        event = PersonaFailed.model_validate_json(failed[0].value)
        async with (
            serve(create_app(openai_settings)) as url,
            httpx.AsyncClient(base_url=url) as api,
        ):
            status = (await api.get(f"/v1/requests/{request.request_id}")).json()
    assert event.request_id == request.request_id
    assert "refused" in event.reason
    assert (status["status"], status["stored"], status["failed"]) == ("partial", 1, 1)
    assert "refused" in status["failures"][str(event.ordinal)]
