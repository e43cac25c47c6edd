"""The HTTP edge without the stack: settings, refusals, ``EdgeLimits`` against fake ASGI
messages, the limited protocol served in-process by ``make_server``, and control
characters escaped in log lines."""

import asyncio
import contextlib
import json
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from loguru import logger
from pydantic import ValidationError
from starlette.types import Message, Receive, Scope, Send
from uvicorn.config import Config
from uvicorn.server import ServerState

from persona_infra.http_server import (
    BodyTimeoutError,
    EdgeLimits,
    HttpLimits,
    LimitedHttpToolsProtocol,
    make_server,
    refusal,
)
from persona_infra.logging import CONSOLE_FORMAT, _patch, escape_controls
from persona_infra.settings import Settings
from persona_pipeline.devstack.servers import free_port
from tests.support.raw_http import exchange

LIMITS = HttpLimits(max_header_bytes=2048, max_headers=10, header_timeout_s=0.3, body_timeout_s=0.3)
HOSTILE = "/v1/persona\r\nINFO forged\x1b[7mFORGED\x07\x85\u2028end"


# --- settings and refusals ---------------------------------------------------------------


def test_limits_come_from_the_settings() -> None:
    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        http_max_header_bytes=4096,
        http_max_headers=20,
        http_header_timeout_s=2.5,
        http_body_timeout_s=3.5,
    )
    assert HttpLimits.of(settings) == HttpLimits(4096, 20, 2.5, 3.5)
    defaults = HttpLimits.of(Settings(_env_file=None))  # type: ignore[call-arg]
    assert defaults == HttpLimits(16 * 1024, 100, 10.0, 10.0)


@pytest.mark.parametrize(
    "field",
    [
        {"http_max_header_bytes": 100},  # no real client fits its headers in that
        {"http_max_headers": 0},
        {"http_header_timeout_s": 0},
        {"http_body_timeout_s": -1},
    ],
)
def test_limits_that_would_break_every_client_are_refused(field: dict[str, float]) -> None:
    with pytest.raises(ValidationError):
        Settings(_env_file=None, **field)  # type: ignore[call-arg]


def test_a_refusal_is_a_problem_document_that_closes_the_connection() -> None:
    headers, body = refusal(431, "The request head exceeds 16384 bytes.")
    as_dict = dict(headers)
    assert as_dict[b"content-type"] == b"application/problem+json"
    assert as_dict[b"connection"] == b"close"
    assert int(as_dict[b"content-length"]) == len(body)
    assert json.loads(body) == {
        "type": "about:blank",
        "title": "Request Header Fields Too Large",
        "status": 431,
        "detail": "The request head exceeds 16384 bytes.",
    }


def test_the_protocol_needs_the_edge_config() -> None:
    with pytest.raises(TypeError, match="make_server"):
        LimitedHttpToolsProtocol(Config(app=_ok), ServerState(), {})


# --- EdgeLimits --------------------------------------------------------------------------


def http_scope(headers: int = 1) -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "path": "/",
        "headers": [(f"x-{i}".encode(), b"1") for i in range(headers)],
    }


class Peer:
    """The server side of one ASGI request: scripted ``receive`` messages, recorded sends."""

    def __init__(self, *messages: Message, stall_s: float = 60.0) -> None:
        self.messages = list(messages)
        self.stall_s = stall_s
        self.sent: list[Message] = []

    async def receive(self) -> Message:
        if self.messages:
            return self.messages.pop(0)
        await asyncio.sleep(self.stall_s)  # the client sends nothing more
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    @property
    def status(self) -> int:
        return int(self.sent[0]["status"])

    @property
    def headers(self) -> dict[bytes, bytes]:
        return dict(self.sent[0].get("headers", []))


async def _ok(scope: Scope, receive: Receive, send: Send) -> None:
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"ok"})


async def read_body_then_answer(scope: Scope, receive: Receive, send: Send) -> None:
    while (await receive()).get("more_body", False):
        pass
    await _ok(scope, receive, send)


async def test_too_many_header_fields_get_a_431_without_reaching_the_app() -> None:
    peer = Peer()
    await EdgeLimits(_unreachable, LIMITS)(http_scope(headers=11), peer.receive, peer.send)
    assert peer.status == 431
    assert peer.headers[b"connection"] == b"close"
    within = Peer({"type": "http.request", "body": b"", "more_body": False})
    await EdgeLimits(read_body_then_answer, LIMITS)(http_scope(10), within.receive, within.send)
    assert within.status == 200


async def _unreachable(scope: Scope, receive: Receive, send: Send) -> None:
    raise AssertionError("the app was called")


async def test_a_stalled_body_gets_a_408_after_the_body_timeout() -> None:
    peer = Peer({"type": "http.request", "body": b"{", "more_body": True})
    started = time.monotonic()
    await EdgeLimits(read_body_then_answer, LIMITS)(http_scope(), peer.receive, peer.send)
    assert 0.25 <= time.monotonic() - started < 2
    assert peer.status == 408
    assert peer.headers[b"connection"] == b"close"
    assert "paused for more than 0.3 s" in json.loads(peer.sent[1]["body"])["detail"]


async def test_an_app_answering_the_timeout_itself_closes_the_connection() -> None:
    """What FastAPI does: its problem handlers answer the ``HTTPException``."""

    async def answers_408(scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await read_body_then_answer(scope, receive, send)
        except BodyTimeoutError as exc:
            headers = [(b"content-type", b"application/problem+json")]
            await send(
                {"type": "http.response.start", "status": exc.status_code, "headers": headers}
            )
            await send({"type": "http.response.body", "body": b"{}"})

    peer = Peer({"type": "http.request", "body": b"{", "more_body": True})
    await EdgeLimits(answers_408, LIMITS)(http_scope(), peer.receive, peer.send)
    assert peer.status == 408
    assert peer.headers[b"connection"] == b"close"
    assert peer.headers[b"content-type"] == b"application/problem+json"


async def test_waits_after_the_body_and_slow_but_steady_bodies_are_not_timed() -> None:
    """After the last chunk ``receive`` waits for a disconnect (streaming responses do)."""

    async def reads_then_waits(scope: Scope, receive: Receive, send: Send) -> None:
        await read_body_then_answer(scope, receive, send)
        assert (await receive())["type"] == "http.disconnect"

    chunks = [{"type": "http.request", "body": b"x", "more_body": True}] * 3
    peer = Peer(*chunks, {"type": "http.request", "body": b"", "more_body": False}, stall_s=0.5)
    await EdgeLimits(reads_then_waits, LIMITS)(http_scope(), peer.receive, peer.send)
    assert peer.status == 200


async def test_other_scopes_pass_through() -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    peer = Peer()
    await EdgeLimits(app, LIMITS)({"type": "lifespan"}, peer.receive, peer.send)
    assert seen == ["lifespan"]


# --- the limited protocol, served in-process ---------------------------------------------


@contextlib.asynccontextmanager
async def served(limits: HttpLimits = LIMITS) -> AsyncIterator[int]:
    port = free_port()
    server = make_server(read_body_then_answer, limits, host="127.0.0.1", port=port, lifespan="off")
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.sleep(0.01)
        yield port
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 10)


def statuses(reply: bytes) -> list[int]:
    return [
        int(line.split(b" ")[1]) for line in reply.split(b"\r\n") if line.startswith(b"HTTP/1.1 ")
    ]


GET = b"GET / HTTP/1.1\r\nHost: test\r\n"
CLOSE = b"Connection: close\r\n\r\n"


async def test_heads_over_the_byte_limit_get_431_whole_or_in_pieces() -> None:
    big = b"X-Big: " + b"a" * 3000 + b"\r\n"
    async with served() as port:
        assert statuses((await exchange(port, GET + CLOSE))[0]) == [200]
        assert statuses((await exchange(port, GET + big + CLOSE))[0]) == [431]
        pieces = [GET, *(b"X-Piece: " + b"a" * 200 + b"\r\n" for _ in range(9)), CLOSE]
        assert statuses((await exchange(port, *pieces, pause_s=0.01))[0]) == [431]


async def test_the_limits_hold_for_each_request_of_a_kept_alive_connection() -> None:
    """Two heads of 1.5 KiB on one connection: each is within the 2 KiB limit."""
    head = GET + b"X-Pad: " + b"a" * 1500 + b"\r\n"
    async with served() as port:
        reply, _ = await exchange(port, head + b"\r\n", head + CLOSE, pause_s=0.1)
    assert statuses(reply) == [200, 200]


async def test_a_head_that_stalls_or_never_starts_gets_408_after_the_header_timeout() -> None:
    async with served() as port:
        for parts in ((GET,), ()):
            reply, lived = await exchange(port, *parts)
            assert statuses(reply) == [408]
            assert 0.25 <= lived < 2
        reply, lived = await exchange(port, GET + b"\r\n", GET, pause_s=0.1)
    assert statuses(reply) == [200, 408]  # a pipelined head stalls after a response


async def test_a_stalled_body_is_answered_408_and_closed() -> None:
    post = b"POST / HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n12345"
    async with served() as port:
        reply, lived = await exchange(port, post)
    assert statuses(reply) == [408]
    assert b"connection: close" in reply
    assert 0.25 <= lived < 2


# --- control characters in log lines -----------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("a\r\nb", "a\\r\\nb"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("tab\tbell\x07nul\x00del\x7f", "tab\\tbell\\x07nul\\x00del\\x7f"),
        ("c1\x85\x9b", "c1\\x85\\x9b"),
        ("line\u2028para\u2029", "line\\u2028para\\u2029"),
        ("plain /v1/persona?x=ü 日本 \\n", "plain /v1/persona?x=ü 日本 \\n"),
    ],
)
def test_control_characters_are_escaped(raw: str, escaped: str) -> None:
    assert escape_controls(raw) == escaped


def _marked(record: Any) -> bool:
    return record["extra"].get("marked") is True


@pytest.fixture
def log_lines() -> Iterator[dict[str, list[str]]]:
    """The console and the JSON line of records logged through the configured patcher."""
    lines: dict[str, list[str]] = {"console": [], "json": []}
    sinks = [
        logger.add(lines[name].append, format=fmt, colorize=False, filter=_marked)
        for name, fmt in (("console", CONSOLE_FORMAT), ("json", "{extra[json]}"))
    ]
    yield lines
    for sink in sinks:
        logger.remove(sink)


def test_log_lines_carry_request_data_escaped(log_lines: dict[str, list[str]]) -> None:
    hostile_logger = logger.patch(_patch).bind(component="http", marked=True, path=HOSTILE)
    hostile_logger.info("GET {}", HOSTILE)
    (console,), (json_line,) = log_lines["console"], log_lines["json"]
    for line in (console, json_line):
        body = line.removesuffix("\n")
        assert not any(c in body for c in "\r\n\x1b\x07\x85\u2028"), repr(body)
    assert "GET /v1/persona\\r\\nINFO forged\\x1b[7mFORGED\\x07\\x85\\u2028end" in console
    assert f"path={escape_controls(HOSTILE)}" in console
    record = json.loads(json_line)
    assert record["message"] == f"GET {HOSTILE}"  # JSON escapes, and decodes to the request's
    assert record["path"] == HOSTILE
