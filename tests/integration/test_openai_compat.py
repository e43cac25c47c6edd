"""Compatible servers end to end: the worker on the real broker and database, the real
``openai`` SDK against the local fake server.

- ``OPENAI_RESPONSE_FORMAT=json_object`` against a server without strict structured
  outputs: personas stored, the requests in JSON mode with the schema in the system
  message, and the plain ``json_schema`` default refused with the switch named;
- Azure OpenAI by settings, through ``AsyncAzureOpenAI``: the deployment in the path,
  the ``api-version`` query, the key in ``api-key``;
- ``OPENAI_EXTRA_HEADERS`` on every call, never in the worker's logs;
- cached prompt tokens counted on personas, requests and the token metric, and priced
  at the cached rate.
"""

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from persona_api.app import create_app
from persona_contracts import Persona, PersonaRequested
from persona_infra.settings import Settings
from persona_llm.errors import FailureKind, GenerationError
from persona_llm.pricing import PriceTable
from persona_producers.request_command import publish_requests
from persona_worker.app import Worker, create_worker
from persona_worker.generators.openai_generator import (
    OpenAIGenerator,
    PersonaDraftResponse,
)
from persona_worker.generators.prompts import SYSTEM_PROMPT
from tests.conftest import derive
from tests.integration.test_llm_planner import PLAN
from tests.support.fake_openai import FakeOpenAI, ok
from tests.support.kafka import created_events
from tests.support.processes import start_worker, stop, worker_env
from tests.support.serve import serve
from tests.unit.test_chat_modes import TASK

pytestmark = pytest.mark.integration

MODEL = "gpt-test-mini"
KEY = "sk-test-not-a-real-key"
GATEWAY_TOKEN = "gw-token-do-not-log-4f1c9a7e2b"
FENCED_JSON = re.compile(r"```json\n(.*?)\n```", re.DOTALL)


@pytest.fixture(scope="module")
def json_only() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(json_object_only=True) as server:
        yield server


def _openai(settings: Settings, fake: FakeOpenAI, **changes: object) -> Settings:
    fake.reset()
    return derive(
        settings,
        generator="auto",
        openai_api_key=KEY,
        openai_base_url=fake.base_url,
        openai_model=MODEL,
        generation_max_retries=0,
        **changes,
    )


@dataclass(frozen=True, slots=True)
class Run:
    """One request through a worker: its personas, its status and the API's ``/``."""

    personas: list[Persona]
    status: dict[str, Any]
    root: dict[str, Any]
    worker: Worker


async def _generate(settings: Settings, count: int) -> Run:
    request = PersonaRequested(brief="solo travellers over 60", count=count)
    worker = create_worker(settings)
    async with serve(worker.app):
        await publish_requests(settings, [request])
        events = await created_events(settings, request.request_id, count)
    async with serve(create_app(settings)) as url, httpx.AsyncClient(base_url=url) as api:
        status = (await api.get(f"/v1/requests/{request.request_id}")).json()
        root = (await api.get("/")).json()
    return Run([event.persona for event in events], status, root, worker)


# --- JSON mode ----------------------------------------------------------------------------


async def test_json_mode_generates_against_a_server_without_structured_outputs(
    settings: Settings, json_only: FakeOpenAI
) -> None:
    worker_settings = _openai(settings, json_only, openai_response_format="json_object")

    run = await _generate(worker_settings, 3)

    assert len(run.personas) == 3
    assert (run.status["status"], run.status["stored"]) == ("completed", 3)
    assert len(json_only.requests) == 3, "every answer passed validation at once"
    for body in json_only.requests:
        assert body["response_format"] == {"type": "json_object"}
        system = body["messages"][0]
        assert system["role"] == "system"
        assert system["content"].startswith(SYSTEM_PROMPT)
        schema = json.loads(FENCED_JSON.findall(system["content"])[-1])
        assert list(schema["properties"]) == list(PersonaDraftResponse.model_fields)
    assert len({body["messages"][0]["content"] for body in json_only.requests}) == 1
    assert all(p.location.city in p.bio for p in run.personas), "the fake answered each prompt"


async def test_the_strict_default_is_refused_there_with_the_switch_named(
    json_only: FakeOpenAI,
) -> None:
    json_only.reset()
    settings = Settings(
        _env_file=None,
        openai_api_key=KEY,
        openai_base_url=json_only.base_url,  # type: ignore[arg-type]
        openai_model=MODEL,
    )
    generator = OpenAIGenerator.from_settings(settings)
    try:
        with pytest.raises(GenerationError) as caught:
            await generator.generate(TASK)
    finally:
        await generator.aclose()

    assert caught.value.kind is FailureKind.FATAL
    assert "set OPENAI_RESPONSE_FORMAT=json_object" in caught.value.reason


# --- extra headers ------------------------------------------------------------------------


async def test_extra_headers_go_with_every_call_and_never_into_the_logs(
    settings: Settings, fake: FakeOpenAI, tmp_path: Path
) -> None:
    fake.reset()
    headers = {"X-Gateway-Token": GATEWAY_TOKEN, "X-Team": "personas"}
    env = worker_env(
        settings,
        LOG_LEVEL="DEBUG",
        OPENAI_API_KEY=KEY,
        OPENAI_BASE_URL=fake.base_url,
        OPENAI_EXTRA_HEADERS=json.dumps(headers),
    )
    request = PersonaRequested(brief="night-shift nurses", count=2)
    with (tmp_path / "worker.stderr").open("wb") as stderr:
        worker = start_worker(env, stderr=stderr)
        try:
            await publish_requests(settings, [request])
            await created_events(settings, request.request_id, 2)
        finally:
            stop(worker)

    assert len(fake.request_headers) == 2
    for sent in fake.request_headers:
        assert sent["x-gateway-token"] == GATEWAY_TOKEN
        assert sent["x-team"] == "personas"
        assert sent["authorization"] == f"Bearer {KEY}", "the key is still the key"
    logged = (tmp_path / "worker.stderr").read_text()
    assert "starting" in logged, "the worker's log was captured"
    assert GATEWAY_TOKEN not in logged


# --- Azure OpenAI -------------------------------------------------------------------------

AZURE_KEY = "azure-test-key-0123456789"


async def test_azure_settings_reach_the_deployment_with_the_api_key(
    settings: Settings, fake: FakeOpenAI
) -> None:
    fake.reset()
    fake.script(ok(content=PLAN))  # the planning call
    azure = derive(
        settings,
        generator="auto",
        planner="llm",
        planner_model="plans-dep",
        azure_openai_endpoint=fake.azure_endpoint,
        azure_openai_deployment="personas-dep",
        azure_openai_api_key=AZURE_KEY,
        generation_max_retries=0,
    )

    run = await _generate(azure, 2)

    assert {(p.generator, p.model) for p in run.personas} == {("openai", "personas-dep")}
    assert (run.root["generator"], run.root["model"]) == ("openai", "personas-dep")
    assert fake.request_paths == [
        "/openai/deployments/plans-dep/chat/completions",
        *["/openai/deployments/personas-dep/chat/completions"] * 2,
    ], "PLANNER_MODEL names another deployment of the same resource"
    assert [body["model"] for body in fake.requests] == ["plans-dep", *["personas-dep"] * 2]
    assert fake.request_queries == [{"api-version": "2024-10-21"}] * 3
    for headers in fake.request_headers:
        assert headers["api-key"] == AZURE_KEY
        assert "authorization" not in headers
    assert run.status["plan"]["planning"]["planner"] == "llm"
    assert run.status["plan"]["planning"]["model"] == "plans-dep"


# --- cached prompt tokens -----------------------------------------------------------------

PRICES = {MODEL: {"prompt": 1.0, "completion": 2.0, "cached_prompt": 0.25}}


@pytest.fixture(scope="module")
def caching() -> Iterator[FakeOpenAI]:
    with FakeOpenAI(prompt_cache_min_tokens=256) as server:
        yield server


@pytest.mark.parametrize("mode", ["json_schema", "json_object"])
async def test_cached_tokens_are_counted_and_priced_at_the_cached_rate(
    settings: Settings, caching: FakeOpenAI, mode: str
) -> None:
    worker_settings = _openai(
        settings,
        caching,
        openai_response_format=mode,
        price_table=PRICES,
        generation_concurrency=1,  # each call runs after the one before: it finds it cached
    )

    run = await _generate(worker_settings, 3)

    cached = sorted(p.usage.cached_prompt_tokens for p in run.personas)
    assert cached[0] == 0, "the first prompt found nothing to reuse"
    system = caching.requests[0]["messages"][0]["content"]
    at_least = len(system) // 4 // 128 * 128  # the fake's 4 characters a token, 128 a block
    assert all(tokens >= at_least > 0 for tokens in cached[1:]), "the system message is cached"
    prices = PriceTable.with_overrides(worker_settings.price_table)
    for persona in run.personas:
        usage = persona.usage
        uncached = usage.prompt_tokens - usage.cached_prompt_tokens
        expected = uncached * 1.0 + usage.cached_prompt_tokens * 0.25 + usage.completion_tokens * 2
        assert persona.cost_usd == pytest.approx(expected / 1e6)
        assert persona.cost_usd == prices.cost(MODEL, usage)
    assert run.status["cached_prompt_tokens"] == sum(cached)
    assert run.status["prompt_tokens"] == sum(p.usage.prompt_tokens for p in run.personas)
    assert run.status["cost_usd"] == pytest.approx(sum(p.cost_usd for p in run.personas))
    registry = run.worker.registry
    for kind, total in (
        ("cached_prompt", sum(cached)),
        ("prompt", run.status["prompt_tokens"]),
    ):
        counted = registry.get_sample_value(
            "persona_llm_tokens_total", {"model": MODEL, "kind": kind}
        )
        assert counted == total, kind
