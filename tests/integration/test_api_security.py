"""API security against the real broker and database: keys and roles, open mode, rate limits,
body limits, CORS, security headers, unknown query parameters, and keys kept out of logs."""

import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass

import httpx
import pytest
from fastapi import FastAPI
from loguru import logger

from persona_api.app import create_app
from persona_api.auth import AdminDep, require_admin
from persona_api.key_ring import InsecureConfigurationError
from persona_infra.api_keys import generate_key, make_entry
from persona_infra.settings import Settings
from tests.conftest import derive
from tests.support.serve import serve

pytestmark = pytest.mark.integration
PROBLEM = "application/problem+json"
BRIEF = {"brief": "retired sailors", "count": 1}


@dataclass(frozen=True)
class Keys:
    reader: str
    writer: str
    admin: str


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys(reader=generate_key(), writer=generate_key(), admin=generate_key())


def secured(settings: Settings, keys: Keys, **changes: object) -> Settings:
    return derive(
        settings,
        read_api_keys=make_entry("dashboard", keys.reader),
        api_keys=make_entry("publisher", keys.writer),
        admin_api_keys=make_entry("operator", keys.admin),
        **changes,
    )


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def add_admin_route(app: FastAPI) -> None:
    """What the admin routes will look like: ``AdminDep`` from ``persona_api.deps``."""

    @app.post("/v1/admin/ping")
    async def ping(admin: AdminDep) -> dict[str, str | None]:
        return {"admin": admin.name}

    assert callable(require_admin)


@pytest.fixture
async def api(settings: Settings, keys: Keys) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(secured(settings, keys))
    add_admin_route(app)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        yield client


@pytest.fixture
def captured_logs() -> Iterator[list[str]]:
    lines: list[str] = []
    sink = logger.add(
        lambda message: lines.append(str(message)),
        level="TRACE",
        format="{level} {message} {extra}",
        diagnose=False,
    )
    yield lines
    logger.remove(sink)


def assert_problem(response: httpx.Response, status: int) -> dict[str, object]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    assert response.headers["cache-control"] == "no-store"
    body: dict[str, object] = response.json()
    assert body["status"] == status
    assert "Traceback" not in response.text
    return body


async def test_writes_need_a_valid_key_with_the_writer_role(
    api: httpx.AsyncClient, keys: Keys
) -> None:
    missing = await api.post("/v1/persona", json=BRIEF)
    assert_problem(missing, 401)
    assert missing.headers["www-authenticate"] == "Bearer"
    for headers in [bearer("wrong-" + keys.writer), {"X-API-Key": "wrong-" + keys.writer}]:
        wrong = await api.post("/v1/persona", json=BRIEF, headers=headers)
        assert assert_problem(wrong, 401)["detail"] == "The API key is not valid."
        assert wrong.headers["www-authenticate"] == "Bearer"
    basic = await api.post("/v1/persona", json=BRIEF, headers={"Authorization": "Basic eDp5"})
    assert_problem(basic, 401)
    both = {**bearer(keys.writer), "X-API-Key": keys.admin}
    assert_problem(await api.post("/v1/persona", json=BRIEF, headers=both), 401)

    reader = await api.post("/v1/persona", json=BRIEF, headers=bearer(keys.reader))
    assert "`writer` role" in str(assert_problem(reader, 403)["detail"])

    for headers in [bearer(keys.writer), {"X-API-Key": keys.writer}, bearer(keys.admin)]:
        accepted = await api.post("/v1/persona", json=BRIEF, headers=headers)
        assert accepted.status_code == 202, accepted.text
    # Reads stay public unless READS_REQUIRE_KEY.
    assert (await api.get("/v1/persona")).status_code == 200
    assert (await api.get(accepted.json()["status_url"])).status_code == 200


async def test_admin_routes_need_the_admin_role(api: httpx.AsyncClient, keys: Keys) -> None:
    assert_problem(await api.post("/v1/admin/ping"), 401)
    assert_problem(await api.post("/v1/admin/ping", headers=bearer(keys.writer)), 403)
    assert_problem(await api.post("/v1/admin/ping", headers=bearer(keys.reader)), 403)
    admin = await api.post("/v1/admin/ping", headers={"X-API-Key": keys.admin})
    assert admin.status_code == 200
    assert admin.json() == {"admin": "operator"}


async def test_without_keys_the_dev_stack_runs_open_and_says_so(
    settings: Settings, captured_logs: list[str]
) -> None:
    app = create_app(settings)
    add_admin_route(app)
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/v1/persona", json=BRIEF)).status_code == 202
        assert (await client.post("/v1/admin/ping")).status_code == 200
        # A key sent to an open server is not checked.
        sent = await client.post("/v1/persona", json=BRIEF, headers=bearer("anything-at-all-123"))
        assert sent.status_code == 202
    warnings = [line for line in captured_logs if line.startswith("WARNING")]
    assert any("no API key is configured" in line and "API_KEYS" in line for line in warnings)


async def test_production_refuses_to_start_without_keys(settings: Settings, keys: Keys) -> None:
    production = derive(settings, environment="production", cursor_secret="s" * 32)
    with pytest.raises(InsecureConfigurationError, match="API_KEYS"):
        create_app(production)
    with pytest.raises(InsecureConfigurationError, match="READS_REQUIRE_KEY"):
        create_app(derive(settings, reads_require_key=True))
    async with (
        serve(create_app(secured(production, keys))) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):
        response = await client.get("/health")
        assert response.status_code == 200
        assert response.headers["strict-transport-security"].startswith("max-age=")
        assert (await client.post("/v1/persona", json=BRIEF)).status_code == 401


async def test_reads_require_key_protects_reads_but_not_the_service_routes(
    settings: Settings, keys: Keys
) -> None:
    app = create_app(secured(settings, keys, reads_require_key=True))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        for path in ["/v1/persona", "/v1/persona/stats", "/v1/persona/search?q=sailor"]:
            missing = await client.get(path)
            assert_problem(missing, 401)
            assert missing.headers["www-authenticate"] == "Bearer"
            assert_problem(await client.get(path, headers=bearer("nope-" + keys.reader)), 401)
            for key in [keys.reader, keys.writer, keys.admin]:
                assert (await client.get(path, headers=bearer(key))).status_code == 200, path
        listing = await client.get("/v1/persona", headers={"X-API-Key": keys.reader})
        # A shared cache must not serve a key-protected response to anyone else.
        assert "public" not in listing.headers["cache-control"]
        assert listing.headers["cache-control"].startswith("private")
        missing_request = "/v1/requests/00000000-0000-0000-0000-000000000000"
        assert_problem(await client.get(missing_request), 401)
        assert_problem(await client.get(missing_request, headers=bearer(keys.reader)), 404)
        for path in ["/", "/health", "/ready", "/metrics", "/docs", "/openapi.json"]:
            assert (await client.get(path)).status_code == 200, path
        # Writes still need the writer role.
        reader = await client.post("/v1/persona", json=BRIEF, headers=bearer(keys.reader))
        assert_problem(reader, 403)


async def test_writes_are_rate_limited_per_key_and_per_ip(settings: Settings, keys: Keys) -> None:
    limited = secured(settings, keys, write_rate_per_minute=1, write_burst=2)
    async with serve(create_app(limited)) as url, httpx.AsyncClient(base_url=url) as client:
        for _ in range(2):
            ok = await client.post("/v1/persona", json=BRIEF, headers=bearer(keys.writer))
            assert ok.status_code == 202
        refused = await client.post("/v1/persona", json=BRIEF, headers=bearer(keys.writer))
        assert_problem(refused, 429)
        assert 1 <= int(refused.headers["retry-after"]) <= 60
        # Another key has its own bucket; unauthenticated requests take no token.
        assert_problem(await client.post("/v1/persona", json=BRIEF), 401)
        other = await client.post("/v1/persona", json=BRIEF, headers=bearer(keys.admin))
        assert other.status_code == 202
    open_limited = derive(settings, write_rate_per_minute=1, write_burst=1)
    async with serve(create_app(open_limited)) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.post("/v1/persona", json=BRIEF)).status_code == 202
        by_ip = await client.post("/v1/persona", json=BRIEF)
        assert_problem(by_ip, 429)
        assert by_ip.headers["retry-after"]


async def test_oversize_bodies_are_refused_with_413(settings: Settings, keys: Keys) -> None:
    small = secured(settings, keys, max_body_bytes=1024)

    async def chunks(total: int) -> AsyncIterator[bytes]:
        yield b'{"brief": "'
        for _ in range(total // 256):
            yield b"x" * 256
        yield b'", "count": 1}'

    async with serve(create_app(small)) as url, httpx.AsyncClient(base_url=url) as client:
        headers = bearer(keys.writer)
        by_length = await client.post(
            "/v1/persona", json={"brief": "x" * 2000, "count": 1}, headers=headers
        )
        body = assert_problem(by_length, 413)
        assert body["detail"] == "The request body exceeds the limit of 1024 bytes."
        assert by_length.headers["x-content-type-options"] == "nosniff"
        # No Content-Length: the limit applies while the body streams in.
        streamed = await client.post(
            "/v1/persona",
            content=chunks(4096),
            headers={**headers, "content-type": "application/json"},
        )
        assert "content-length" not in streamed.request.headers
        assert streamed.request.headers["transfer-encoding"] == "chunked"
        assert assert_problem(streamed, 413)["detail"] == body["detail"]
        # Without a key too: the size is checked before anything else.
        assert_problem(await client.post("/v1/persona", content=b"x" * 2000), 413)
        # A chunked body under the limit goes through.
        fine = await client.post(
            "/v1/persona",
            content=chunks(256),
            headers={**headers, "content-type": "application/json"},
        )
        assert fine.status_code == 202, fine.text


async def test_cors_preflight_allows_configured_origins_only(
    settings: Settings, keys: Keys
) -> None:
    allowed, denied = "https://app.example.com", "https://evil.example.net"
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type, x-api-key",
    }
    cors = secured(settings, keys, cors_origins=f"{allowed}, http://localhost:3000")
    async with serve(create_app(cors)) as url, httpx.AsyncClient(base_url=url) as client:
        ok = await client.options("/v1/persona", headers={**preflight, "Origin": allowed})
        assert ok.status_code == 200
        assert ok.headers["access-control-allow-origin"] == allowed
        assert "authorization" in ok.headers["access-control-allow-headers"].lower()
        assert "POST" in ok.headers["access-control-allow-methods"]
        assert "access-control-allow-credentials" not in ok.headers
        refused = await client.options("/v1/persona", headers={**preflight, "Origin": denied})
        assert "origin" in str(assert_problem(refused, 400)["detail"])
        assert "access-control-allow-origin" not in refused.headers
        simple = await client.get("/v1/persona", headers={"Origin": allowed})
        assert simple.headers["access-control-allow-origin"] == allowed
        assert "retry-after" in simple.headers["access-control-expose-headers"].lower()
        other = await client.get("/v1/persona", headers={"Origin": denied})
        assert "access-control-allow-origin" not in other.headers
    async with (
        serve(create_app(secured(settings, keys))) as url,
        httpx.AsyncClient(base_url=url) as client,
    ):  # CORS_ORIGINS empty: CORS is off
        off = await client.options("/v1/persona", headers={**preflight, "Origin": allowed})
        assert "access-control-allow-origin" not in off.headers
        assert_problem(off, 405)


async def test_every_response_carries_the_security_headers(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/v1/boom")
    async def boom() -> None:
        raise RuntimeError("internal detail that must not leak")

    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        responses = {
            "ok": await client.get("/v1/persona"),
            "not found": await client.get("/v1/persona/00000000-0000-0000-0000-000000000000"),
            "no route": await client.get("/nowhere"),
            "invalid": await client.get("/v1/persona", params={"limit": 0}),
            "crash": await client.get("/v1/boom"),
            "docs": await client.get("/docs"),
        }
        for what, response in responses.items():
            headers = response.headers
            assert headers["x-content-type-options"] == "nosniff", what
            assert headers["x-frame-options"] == "DENY", what
            assert headers["referrer-policy"] == "no-referrer", what
            assert headers["content-security-policy"], what
            assert headers["x-correlation-id"], what
            assert "strict-transport-security" not in headers, what  # development
        assert responses["ok"].headers["content-security-policy"].startswith("default-src 'none'")
        docs_csp = responses["docs"].headers["content-security-policy"]
        assert "script-src 'self' 'sha256-" in docs_csp
        assert "https:" not in docs_csp
        assert "'unsafe-inline'" not in docs_csp.split("script-src")[1].split(";")[0]
        assert "script-src" not in responses["ok"].headers["content-security-policy"]
        assert "no-store" not in responses["ok"].headers.get("cache-control", "")
        for what in ["not found", "no route", "invalid"]:
            assert_problem(responses[what], responses[what].status_code)
        crash = assert_problem(responses["crash"], 500)
        assert "internal detail" not in str(crash)
        assert "RuntimeError" not in responses["crash"].text


async def test_unknown_query_parameters_are_rejected(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/v1/added-later")
    async def added_later(size: int = 1) -> dict[str, int]:
        return {"size": size}

    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        typo = await client.get("/v1/persona", params={"limit": 5, "contry": "de"})
        body = assert_problem(typo, 422)
        assert body["errors"] == [
            {
                "loc": ["query", "contry"],
                "msg": "Unknown query parameter",
                "type": "extra_forbidden",
            }
        ]
        known = {"limit": 5, "country": "de", "min_age": 20, "sort": "age"}
        assert (await client.get("/v1/persona", params=known)).status_code == 200
        search = {"q": "sailor", "occupation": "nurse"}
        assert (await client.get("/v1/persona/search", params=search)).status_code == 200
        assert_problem(await client.get("/v1/persona/search", params={"q": "x", "page": 2}), 422)
        assert_problem(await client.get("/health", params={"verbose": 1}), 422)
        assert_problem(await client.post("/v1/persona", json=BRIEF, params={"dry_run": 1}), 422)
        assert (await client.get("/v1/added-later", params={"size": 3})).json() == {"size": 3}
        assert_problem(await client.get("/v1/added-later", params={"sise": 3}), 422)


async def test_keys_never_reach_the_logs(
    settings: Settings,
    keys: Keys,
    captured_logs: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong = generate_key()
    app = create_app(secured(settings, keys, reads_require_key=True))
    async with serve(app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (
            await client.post("/v1/persona", json=BRIEF, headers=bearer(keys.writer))
        ).is_success
        assert (await client.get("/v1/persona", headers={"X-API-Key": keys.reader})).is_success
        assert (await client.get("/v1/persona", headers=bearer(wrong))).status_code == 401
        assert (
            await client.post("/v1/persona", json=BRIEF, headers=bearer(keys.reader))
        ).status_code == 403
    logged = "\n".join(captured_logs) + caplog.text
    assert "publisher" in logged  # the access log names the key...
    assert "rejected an unknown API key" in logged
    for secret in [keys.writer, keys.reader, keys.admin, wrong]:
        assert secret not in logged  # ...and never shows it
