"""``GET /v1/requests/{id}/population``: one request's personas counted like the stats, and
each dimension of its plan set against what was stored, for requests a real worker
generated on the real servers."""

from collections import Counter
from typing import Any

import httpx
import pytest

from persona_audience.quotas import plan_quotas
from persona_contracts.plan import AudiencePlan
from persona_infra.settings import Settings
from persona_infra.stats_document import age_bucket
from tests.support.through_api import generate

pytestmark = pytest.mark.integration

BRIEFS = {"night-shift nurses in Leeds and Manchester": 40, "retired farmers in Bavaria": 15}


def counted(personas: list[dict[str, Any]], field: str) -> dict[str, int]:
    return dict(
        Counter(str(p[field] if field != "country" else p["location"]["country"]) for p in personas)
    )


async def test_a_request_population_counts_only_its_personas_and_meets_its_plan(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    nurses, _farmers = await generate(settings, api, BRIEFS)
    request_id = nurses["request_id"]
    personas = (
        await api.get("/v1/persona", params={"request_id": request_id, "limit": 100})
    ).json()
    response = await api.get(f"/v1/requests/{request_id}/population")
    assert response.status_code == 200
    assert response.headers["cache-control"] == "public, max-age=60"  # final: no longer changes
    population = response.json()
    assert population["final"] is True

    stats, items = population["stats"], personas["items"]
    assert stats["total"] == len(items) == nurses["requested"] == nurses["stored"]
    assert stats["by_country"] == counted(items, "country")
    assert {o["occupation"]: o["count"] for o in stats["top_occupations"]} == counted(
        items, "occupation"
    )
    pyramid = Counter((age_bucket(p["age"]), p["gender"]) for p in items)
    assert {
        (b, g): n for b, genders in stats["by_age_and_gender"].items() for g, n in genders.items()
    } == pyramid
    assert stats["failed_ordinals"] == nurses["failed"] == 0
    assert sum(stats["personas_per_day"].values()) == len(items)

    quotas = plan_quotas(AudiencePlan.model_validate(nurses["plan"]), nurses["requested"])
    dimensions = {d["dimension"]: d["options"] for d in population["plan"]}
    expected = {
        "location": quotas.locations,
        "age_band": quotas.ages,
        "gender": quotas.genders,
        "occupation": quotas.occupations,
        **quotas.traits,
    }
    assert set(dimensions) == set(expected)
    for name, options in dimensions.items():
        assert [(o["label"], o["planned"]) for o in options] == [
            (q.label, q.count) for q in expected[name]
        ], name
        # The sampler deals exact quotas: every option got what it was planned for.
        assert [o["stored"] for o in options] == [o["planned"] for o in options], name


async def test_a_request_not_taken_yet_has_no_population_and_an_unknown_one_is_a_404(
    api: httpx.AsyncClient,
) -> None:
    accepted = (
        await api.post("/v1/persona", json={"brief": "nobody takes this", "count": 3})
    ).json()
    response = await api.get(f"/v1/requests/{accepted['request_id']}/population")
    assert response.status_code == 200
    assert "max-age" not in response.headers.get("cache-control", "")
    population = response.json()
    assert population["final"] is False
    assert population["plan"] == []  # no worker planned it
    assert population["stats"]["total"] == 0

    unknown = await api.get("/v1/requests/3f1c2d9e-0000-4000-8000-000000000000/population")
    assert unknown.status_code == 404
    assert unknown.headers["content-type"] == "application/problem+json"
    assert "No request" in unknown.json()["detail"]
