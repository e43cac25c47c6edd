"""``max_cost_usd`` through the real servers and the real OpenAI SDK: a large request
stops starting personas once its calls have cost the cap, on every shard; the ordinals
left fail saying why (downstream hears it on ``persona.failed``); the HTTP API and the
event contract refuse a cap the worker could not keep."""

import httpx
import pytest

from persona_contracts import PersonaRequested
from persona_infra.settings import Settings
from persona_producers.request_command import publish_requests
from persona_worker.app import create_worker
from tests.conftest import derive
from tests.support.fake_openai import FakeOpenAI
from tests.support.kafka import collect
from tests.support.serve import serve
from tests.support.through_api import settled

pytestmark = pytest.mark.integration

MODEL = "gpt-test-priced"
CONCURRENCY = 2
CAP_USD = 10.0


@pytest.fixture
def priced(settings: Settings, fake: FakeOpenAI, fresh_fake: None) -> Settings:
    """OpenAI through the fake at a dollar per thousand tokens: about $1 a persona."""
    return derive(
        settings,
        generator="auto",
        openai_api_key="sk-test-not-a-real-key",
        openai_base_url=fake.base_url,
        openai_model=MODEL,
        price_table={MODEL: (1000.0, 1000.0)},
        generation_concurrency=CONCURRENCY,
        generation_adaptive_concurrency=False,
        request_shard_size=20,
    )


async def test_a_capped_request_stops_at_its_cap_on_every_shard(
    priced: Settings, api: httpx.AsyncClient
) -> None:
    request = PersonaRequested(brief="market stall owners in Lagos", count=60, max_cost_usd=CAP_USD)
    async with serve(create_worker(priced).app):
        await publish_requests(priced, [request])
        status = await settled(api, request.request_id, timeout=120)
        failed = await collect(
            priced.kafka_bootstrap_servers,
            priced.topics.failed,
            lambda records: len(records) >= int(str(status["failed"])),
        )
    stored, left = int(str(status["stored"])), int(str(status["failed"]))
    assert status["status"] == "partial"
    assert stored + left == 60, status
    assert 3 <= stored < 60, status
    reasons = set(dict(status["failures"]).values())  # type: ignore[call-overload]
    assert all("max_cost_usd was reached" in reason for reason in reasons), reasons
    assert len(failed) == left
    page = (await api.get("/v1/persona", params={"request_id": str(request.request_id)})).json()
    most = max(p["cost_usd"] for p in page["items"])
    # Over by at most the personas in flight when each of the three shards hit its share.
    assert float(str(status["cost_usd"])) <= CAP_USD + 3 * CONCURRENCY * most, status


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ({"max_cost_usd": 0}, "greater than 0"),
        ({"max_cost_usd": -1}, "greater than 0"),
        ({"max_cost_usd": 1e9}, "less than or equal to 100000"),
        ({"max_cost_usd": 5, "mode": "batch"}, "synchronous generation only"),
    ],
)
async def test_a_cap_the_worker_could_not_keep_is_refused(
    api: httpx.AsyncClient, body: dict[str, object], problem: str
) -> None:
    response = await api.post("/v1/persona", json={"brief": "anyone", "count": 5, **body})
    assert response.status_code == 422
    assert problem in response.text


def test_the_event_contract_refuses_a_capped_batch_too() -> None:
    with pytest.raises(ValueError, match="synchronous generation only"):
        PersonaRequested(brief="anyone", count=5, max_cost_usd=5, mode="batch")  # type: ignore[arg-type]
