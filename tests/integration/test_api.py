"""The HTTP API against the real database and broker: contract, errors, pagination, probes."""

import asyncio
import uuid
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from persona_api.app import create_app
from persona_contracts import Location, Persona
from persona_infra.mongo import Collections, connect
from persona_infra.settings import Settings
from persona_pipeline.devstack.servers import free_port, start_kafka, start_mongodb
from persona_worker.app import create_worker
from persona_worker.persona_writes import PersonaWriter
from persona_worker.stats_writes import StatsCounter
from tests.conftest import derive
from tests.support.factories import make_persona
from tests.support.kafka import collect
from tests.support.serve import serve

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"


async def seed(settings: Settings, personas: list[Persona]) -> None:
    """Store personas through the worker's storage path (insert, then count them in stats)."""
    client = connect(settings)
    collections = Collections.of(client[settings.mongodb_database])
    for persona in personas:
        assert await PersonaWriter(collections).insert(persona)
    await StatsCounter(collections).apply(personas)
    await client.close()


async def test_keyset_pagination_walks_every_persona_once_newest_first(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    request_id = uuid.uuid4()
    await seed(settings, [make_persona(i, request_id) for i in range(25)])
    seen: list[int] = []
    cursor = None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/persona", params=params)).json()
        seen += [p["ordinal"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(range(24, -1, -1))


async def test_filters_are_case_and_accent_insensitive_and_combine(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    rid = uuid.uuid4()
    await seed(
        settings,
        [
            make_persona(
                0,
                rid,
                age=30,
                location=Location(city="Zürich", country="Switzerland", country_code="CH"),
            ),
            make_persona(
                1,
                rid,
                age=60,
                location=Location(city="Bern", country="Switzerland", country_code="CH"),
            ),
            make_persona(2, rid, age=30, occupation="Welder"),
        ],
    )

    async def ordinals(**params: object) -> list[int]:
        response = await api.get("/v1/persona", params=params)
        assert response.status_code == 200, response.text
        return sorted(p["ordinal"] for p in response.json()["items"])

    assert await ordinals(country="switzerland") == [0, 1]
    assert await ordinals(country="ch", max_age=40) == [0]
    assert await ordinals(occupation="WELDER") == [2]
    assert await ordinals(min_age=50) == [1]
    found = (await api.get("/v1/persona/search", params={"q": "zurich NURSE"})).json()
    assert [p["ordinal"] for p in found["items"]] == [0]


async def test_errors_are_problem_documents(settings: Settings, api: httpx.AsyncClient) -> None:
    missing = await api.get(f"/v1/persona/{uuid.uuid4()}")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == PROBLEM
    assert missing.json()["title"] == "Not found"

    for path, params in [
        ("/v1/persona/not-a-uuid", {}),
        ("/v1/persona", {"limit": 101}),
        ("/v1/persona/search", {"q": ""}),
        ("/v1/persona/search", {"q": "a"}),
        ("/v1/persona/search", {"q": "x" * 201}),
    ]:
        response = await api.get(path, params=params)
        assert response.status_code == 422, (path, params)
        assert response.headers["content-type"] == PROBLEM
        body = response.json()
        assert body["status"] == 422
        assert "Traceback" not in response.text

    bad_post = await api.post("/v1/persona", json={"brief": "x", "count": 10_001})
    assert bad_post.status_code == 422
    assert bad_post.json()["errors"][0]["loc"] == ["body", "count"]
    assert (await api.get(f"/v1/requests/{uuid.uuid4()}")).status_code == 404


async def test_tampered_or_foreign_cursors_are_rejected(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    await seed(settings, [make_persona(i, uuid.uuid4()) for i in range(3)])
    cursor = (await api.get("/v1/persona", params={"limit": 1})).json()["next_cursor"]
    body, signature = cursor.split(".")
    forged_signature = cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")
    forged_body = body[:-1] + ("x" if body[-1] != "x" else "y")
    for bad in [forged_signature, f"{forged_body}.{signature}", "garbage", "a.b.c"]:
        assert bad != cursor
        response = await api.get("/v1/persona", params={"limit": 1, "cursor": bad})
        assert response.status_code == 400, bad
        assert response.headers["content-type"] == PROBLEM
    other_query = await api.get("/v1/persona", params={"limit": 1, "cursor": cursor, "min_age": 20})
    assert other_query.status_code == 400
    assert "different query" in other_query.json()["detail"]


async def test_post_answers_202_and_the_status_moves_to_completed(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    response = await api.post(
        "/v1/persona",
        json={"brief": "retired sailors", "count": 3},
        headers={"x-correlation-id": "trace-42"},
    )
    assert response.status_code == 202
    accepted = response.json()
    assert response.headers["location"] == accepted["status_url"]
    assert response.headers["x-correlation-id"] == "trace-42"
    queued = await collect(
        settings.kafka_bootstrap_servers, settings.topics.requests, lambda rs: len(rs) >= 1
    )
    assert dict(queued[0].headers)["x-correlation-id"] == b"trace-42"
    first = (await api.get(accepted["status_url"])).json()
    assert (first["status"], first["requested"], first["stored"]) == ("pending", 3, 0)

    async with serve(create_worker(settings).app):
        async with asyncio.timeout(30):
            while (status := (await api.get(accepted["status_url"])).json())[
                "status"
            ] != "completed":
                await asyncio.sleep(0.1)
    assert (status["stored"], status["failed"]) == (3, 0)
    assert status["finished_at"] is not None


async def test_service_endpoints(settings: Settings, api: httpx.AsyncClient) -> None:
    root = (await api.get("/")).json()
    assert root["generator"] == "offline"
    assert root["links"]["docs"] == "/docs"
    assert (await api.get("/health")).json() == {"status": "ok"}
    ready = await api.get("/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"mongodb": "ok", "kafka": "ok"}
    assert (await api.get("/openapi.json")).json()["info"]["title"] == "Persona pipeline API"
    assert (await api.get("/docs")).status_code == 200
    metrics = (await api.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/ready",status="200"}' in metrics


async def test_ready_turns_503_when_mongodb_goes_away(settings: Settings, tmp_path: Path) -> None:
    mongo = start_mongodb(free_port(), ":memory:", tmp_path)
    own = derive(settings, mongodb_uri=f"mongodb://{mongo.address}", mongodb_timeout_ms=500)
    try:
        async with serve(create_app(own)) as url, httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/ready")).status_code == 200
            mongo.stop()
            response = await client.get("/ready")
            assert response.status_code == 503
            assert response.json()["checks"]["mongodb"].startswith("unreachable")
            assert response.json()["checks"]["kafka"] == "ok"
            listing = await client.get("/v1/persona")
            assert listing.status_code == 503
            assert listing.headers["content-type"] == PROBLEM
            assert listing.headers["retry-after"]
    finally:
        mongo.stop()


async def test_a_request_kafka_did_not_take_ends_failed_not_pending(
    settings: Settings, tmp_path: Path
) -> None:
    """Publishing fails (the broker is gone): 503, and the request is recorded as failed
    and not queued, so no status URL reports pending work that will never run."""
    kafka = start_kafka(free_port(), tmp_path)
    own = derive(
        settings,
        kafka_bootstrap_servers=kafka.address,
        kafka_request_timeout_ms=1000,
        kafka_publish_timeout_s=1.0,
    )
    collections = Collections.of(connect(own)[own.mongodb_database])
    try:
        async with serve(create_app(own)) as url, httpx.AsyncClient(base_url=url) as client:
            kafka.stop()
            response = await client.post(
                "/v1/persona", json={"brief": "lost in transit", "count": 1}
            )
            assert response.status_code == 503
            assert response.headers["content-type"] == PROBLEM
            assert "Idempotency-Key" in response.json()["detail"]
            recorded = await collections.requests.find_one({})
            assert recorded is not None
            assert (recorded["status"], recorded["unqueued"]) == ("failed", True)
            assert "KAFKA_PUBLISH_TIMEOUT_S" in recorded["error"]
    finally:
        kafka.stop()


async def test_every_filter_narrows_the_list_and_is_echoed(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    rid = uuid.uuid4()
    await seed(
        settings,
        [
            make_persona(
                0,
                rid,
                gender="male",
                tags=["Early-Adopter"],
                interests=["Jazz"],
                location=Location(city="Köln", country="Germany", country_code="DE"),
            ),
            make_persona(1, rid, generator="openai", model="gpt-4o-mini"),
            make_persona(2, rid, age=70),
        ],
    )

    async def ordinals(**params: object) -> list[int]:
        response = await api.get("/v1/persona", params=params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["filters"] == {k: str(v) for k, v in params.items()}
        return sorted(p["ordinal"] for p in body["items"])

    assert await ordinals(city="koln") == [0]
    assert await ordinals(gender="male") == [0]
    assert await ordinals(tag="early-adopter") == [0]
    assert await ordinals(interest="JAZZ") == [0]
    assert await ordinals(generator="openai") == [1]
    assert await ordinals(request_id=str(rid), min_age=65) == [2]
    first = make_persona(0, rid).created_at  # ordinals are one second apart
    assert await ordinals(created_after=(first + timedelta(seconds=1)).isoformat()) == [1, 2]
    assert await ordinals(created_before=first.isoformat()) == [0]
    bad = await api.get("/v1/persona", params={"gender": "robot"})
    assert bad.status_code == 422


async def test_sorting_by_age_pages_youngest_first(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    rid = uuid.uuid4()
    ages = [44, 19, 67, 19, 30, 52, 25]
    await seed(settings, [make_persona(i, rid, age=a) for i, a in enumerate(ages)])
    seen: list[int] = []
    cursor = None
    while True:
        params = {"sort": "age", "limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/persona", params=params)).json()
        seen += [p["age"] for p in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == sorted(ages)
    newest_cursor = (await api.get("/v1/persona", params={"limit": 1})).json()["next_cursor"]
    mixed = await api.get("/v1/persona", params={"sort": "age", "cursor": newest_cursor})
    assert mixed.status_code == 400  # a cursor is bound to its sort order too


async def test_get_supports_etag_and_caching(settings: Settings, api: httpx.AsyncClient) -> None:
    persona = make_persona(0, uuid.uuid4())
    await seed(settings, [persona])
    first = await api.get(f"/v1/persona/{persona.id}")
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = await api.get(f"/v1/persona/{persona.id}", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    other = await api.get(f"/v1/persona/{persona.id}", headers={"If-None-Match": '"nope"'})
    assert other.status_code == 200
    listing = await api.get("/v1/persona")
    assert listing.headers["cache-control"] == "public, max-age=5"


async def test_search_ranks_field_matches_first_and_pages_through_everything(
    settings: Settings, api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("persona_api.search.RANKING_WINDOW", 6)
    rid = uuid.uuid4()
    bio_only = "Weekends mean sailing with friends."
    fields = {
        1: {"occupation": "Sailing coach", "interests": ["sailing"]},  # two fields match
        2: {"occupation": "Sailing instructor"},  # one field matches
    }
    await seed(
        settings,
        [
            *(make_persona(i, rid, bio=bio_only, **fields.get(i, {})) for i in range(7)),
            make_persona(7, rid, bio="Never on a boat."),  # no match at all
        ],
    )
    seen: list[int] = []
    cursor = None
    while True:
        params = {"q": "SAILING", "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/persona/search", params=params)).json()
        assert page["sort"] == "relevance"
        seen += [p["ordinal"] for p in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    # The window holds the six newest matches (6..1), ranked by matching fields, ties
    # newest first; the older match beyond the window follows.
    assert seen == [1, 2, 6, 5, 4, 3, 0]
    newest = await api.get("/v1/persona/search", params={"q": "sailing", "sort": "created_at"})
    assert [p["ordinal"] for p in newest.json()["items"]] == [6, 5, 4, 3, 2, 1, 0]
    relevance_list = await api.get("/v1/persona", params={"sort": "relevance"})
    assert relevance_list.status_code == 422


@pytest.mark.parametrize(
    "params",
    [
        {"country": '{"$ne": null}'},
        {"occupation": "$where"},
        {"q": ".*"},
        {"q": "(a+)+$ " + "a" * 150},
        {"q": "[a-z]{1,1000} nurse"},
        {"q": "\\ ^ $ | ? * + ( ) nurse"},
        {"city": "$regex"},
    ],
)
async def test_hostile_input_is_matched_literally(
    settings: Settings, api: httpx.AsyncClient, params: dict[str, str]
) -> None:
    await seed(settings, [make_persona(0, uuid.uuid4())])  # a nurse in Lisbon
    path = "/v1/persona/search" if "q" in params else "/v1/persona"
    response = await api.get(path, params=params)
    assert response.status_code in (200, 422), response.text
    if response.status_code == 200:
        names = [p["name"] for p in response.json()["items"]]
        assert names in ([], ["Person 0"])
        assert "nurse" in params.get("q", "") or names == []


async def test_operator_shaped_parameters_are_rejected(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/persona", params={"country[$ne]": "x"})
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
