"""The fault drill at the HTTP edge of the real processes (``persona api``, ``persona worker``).

Header floods and oversized or too many headers get a 431 and leave memory flat;
stalled heads and bodies get a 408 after their timeouts; a trailing slash never
redirects to the ``Host`` the client chose; control characters in request data are
escaped in the console and the JSON log; and a flood of random API keys from one
address does not hold up a valid key sent from another.
"""

import asyncio
import contextlib
import json
import select
import socket
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen

import httpx
import pytest

from persona_infra.api_keys import generate_key, make_entry
from persona_infra.settings import Settings
from tests.support.processes import start_api, start_worker, stop, worker_env
from tests.support.raw_http import exchange

pytestmark = pytest.mark.integration

TIMEOUT_S = 1.0
MIB = 1024 * 1024
EDGE_ENV = {
    "HTTP_HEADER_TIMEOUT_S": str(TIMEOUT_S),
    "HTTP_BODY_TIMEOUT_S": str(TIMEOUT_S),
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "console",
}
READER, WRITER = generate_key(), generate_key()
KEY_ENTRIES = {
    "READ_API_KEYS": make_entry("dashboard", READER),
    "API_KEYS": make_entry("publisher", WRITER),
    "ADMIN_API_KEYS": make_entry("operator", generate_key()),
    "READS_REQUIRE_KEY": "true",
}
BRIEF = b'{"brief": "retired sailors", "count": 1}'


@dataclass(frozen=True)
class Process:
    popen: "Popen[bytes]"
    port: int
    stderr: Path
    log_file: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def rss_bytes(self) -> int:
        for line in Path(f"/proc/{self.popen.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise AssertionError("no VmRSS")


@contextlib.contextmanager
def running(command: str, settings: Settings, tmp_path: Path) -> Iterator[Process]:
    """``persona api`` (with keys) or ``persona worker``, small timeouts, logs to files;
    stopped (and its logs flushed) when the block ends."""
    log_file, stderr = tmp_path / f"{command}.log", tmp_path / f"{command}.stderr"
    env = worker_env(settings, **EDGE_ENV, **KEY_ENTRIES, LOG_FILE=str(log_file))
    start = start_api if command == "api" else start_worker
    with stderr.open("wb") as output:
        process = start(env, stderr=output)
        try:
            port = int(env["API_PORT" if command == "api" else "WORKER_PORT"])
            yield Process(process, port, stderr, log_file)
        finally:
            stop(process)


@pytest.fixture
def api(settings: Settings, tmp_path: Path) -> Iterator[Process]:
    with running("api", settings, tmp_path) as process:
        yield process


def flood_head_blocking(port: int, megabytes: int) -> tuple[bytes, int]:
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: test\r\nX-Flood: ")
        sent = 0
        with contextlib.suppress(OSError):  # the server closes while we still send
            while sent < megabytes and not select.select([sock], [], [], 0)[0]:
                sock.sendall(b"a" * MIB)
                sent += 1
        sock.settimeout(15)
        reply = b""
        with contextlib.suppress(OSError):  # the refusal is read before the reset
            while chunk := sock.recv(64 * 1024):
                reply += chunk
    return reply, sent


async def flood_head(port: int, megabytes: int = 40) -> tuple[bytes, int]:
    """A header that never ends, sent in 1 MiB writes until a reply comes (as a client
    would stop); the reply and the MiB written by then. Plain sockets in a thread: the
    server closes soon after refusing, and a stream transport that fails a write drops
    the refusal it has not read yet."""
    return await asyncio.to_thread(flood_head_blocking, port, megabytes)


def status_of(reply: bytes) -> int:
    assert reply.startswith(b"HTTP/1.1 "), reply[:200]
    return int(reply.split(b" ", 2)[1])


def problem_of(reply: bytes) -> dict[str, object]:
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"content-type: application/problem+json" in head
    problem: dict[str, object] = json.loads(body)
    return problem


HEALTH = b"GET /health HTTP/1.1\r\nHost: test\r\n"
END = b"Connection: close\r\n\r\n"
OVERSIZED = HEALTH + b"Cookie: " + b"a" * (20 * 1024) + b"\r\n" + END
TOO_MANY = HEALTH + b"".join(b"X-Field-%d: 1\r\n" % i for i in range(101)) + END
JUST_WITHIN = HEALTH + b"".join(b"X-Field-%d: %s\r\n" % (i, b"a" * 100) for i in range(95)) + END


async def assert_head_limits(port: int) -> None:
    assert status_of((await exchange(port, JUST_WITHIN))[0]) == 200
    for request in (OVERSIZED, TOO_MANY):
        reply, _ = await exchange(port, request)
        assert status_of(reply) == 431
        assert b"connection: close" in reply
    reply, lived = await exchange(port, HEALTH)  # and then nothing
    assert status_of(reply) == 408
    assert TIMEOUT_S * 0.9 <= lived < TIMEOUT_S + 3


async def test_header_floods_get_431_and_leave_memory_flat(api: Process) -> None:
    await assert_head_limits(api.port)
    before = api.rss_bytes()
    floods = await asyncio.gather(*(flood_head(api.port) for _ in range(5)))
    after = api.rss_bytes()
    print(f"api RSS {before / MIB:.1f} MiB before, {after / MIB:.1f} MiB after 5 floods")
    for reply, sent in floods:
        assert status_of(reply) == 431
        assert sent < 8, f"the server took {sent} MiB of one head"
    assert after - before < 4 * MIB
    async with httpx.AsyncClient(base_url=api.url) as client:
        assert (await client.get("/health")).status_code == 200


async def test_the_worker_port_has_the_same_limits(settings: Settings, tmp_path: Path) -> None:
    with running("worker", settings, tmp_path) as worker:
        await assert_head_limits(worker.port)
        floods = await asyncio.gather(*(flood_head(worker.port) for _ in range(3)))
        assert [status_of(reply) for reply, _ in floods] == [431] * 3


async def test_a_stalled_body_gets_408_and_a_steady_slow_one_is_read(api: Process) -> None:
    head = (
        b"POST /v1/persona HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + WRITER.encode() + b"\r\n"
        b"Content-Length: %d\r\n\r\n" % len(BRIEF)
    )
    reply, lived = await exchange(api.port, head + BRIEF[:10])
    assert status_of(reply) == 408
    assert problem_of(reply)["status"] == 408
    assert b"connection: close" in reply
    assert TIMEOUT_S * 0.9 <= lived < TIMEOUT_S + 3
    # Chunks 0.4 s apart for 1.6 s: every pause is within the 1 s timeout.
    chunks = [BRIEF[i : i + 10] for i in range(0, len(BRIEF), 10)]
    reply, lived = await exchange(api.port, head, *chunks, pause_s=0.4)
    assert status_of(reply) == 202, reply
    assert lived >= 0.4 * len(chunks)


async def test_a_trailing_slash_never_redirects_to_the_clients_host(api: Process) -> None:
    async with httpx.AsyncClient(base_url=api.url, headers={"Host": "evil.example"}) as client:
        for path in ("/v1/persona/", "/health/", "/v1/requests/", "/v1/plans/"):
            response = await client.get(path, headers={"Authorization": f"Bearer {READER}"})
            assert response.status_code == 404, path
            assert response.headers["content-type"] == "application/problem+json"
            assert "location" not in response.headers
        reader = {"Authorization": f"Bearer {READER}"}
        assert (await client.get("/v1/persona", headers=reader)).status_code == 200
        assert (await client.get("/health")).status_code == 200


HOSTILE_PATH = "/v1/persona%0D%0AINFO%20forged%20line%1B%5B7mFORGED%07"
HOSTILE_ID = "/v1/persona/x%0Aforged%1B%5B7mAUTH"
FORGED_MESSAGE = "GET /v1/persona\r\nINFO forged line\x1b[7mFORGED\x07"


async def test_control_characters_in_requests_are_logged_escaped(
    settings: Settings, tmp_path: Path
) -> None:
    with running("api", settings, tmp_path) as api:
        async with httpx.AsyncClient(base_url=api.url) as client:
            assert (await client.get(HOSTILE_PATH)).status_code == 404
            bad_key = {"Authorization": f"Bearer {generate_key()}"}
            assert (await client.get(HOSTILE_ID, headers=bad_key)).status_code == 401
        # Raw control bytes never reach the app or the log: the parser refuses them.
        for raw in (b"GET /a\x1b[7mRAW HTTP/1.1\r\n", HEALTH + b"User-Agent: a\x1b[7mRAW\r\n"):
            assert status_of((await exchange(api.port, raw + END))[0]) == 400

    console = api.stderr.read_text()
    assert not any(raw in console for raw in ("\x1b[7mFORGED", "\x1b[7mAUTH", "\r", "\x07"))
    assert "GET /v1/persona\\r\\nINFO forged line\\x1b[7mFORGED\\x07" in console
    assert not any(line.startswith(("INFO forged", "forged")) for line in console.splitlines())
    assert "path=/v1/persona/x\\nforged\\x1b[7mAUTH" in console  # the auth line's context
    assert "RAW" not in console

    text = api.log_file.read_text()
    assert not any(c in text for c in "\r\x1b\x07")
    records = [json.loads(line) for line in text.splitlines()]
    messages = {r["message"] for r in records}
    assert FORGED_MESSAGE in messages  # JSON escapes: the decoded value is the request's
    assert any(r.get("path") == "/v1/persona/x\nforged\x1b[7mAUTH" for r in records)


DROPPED = 0
"""A flood request whose connection went away: refused, like a 401 or a 429."""


async def test_a_flood_of_random_keys_does_not_hold_up_a_valid_key(api: Process) -> None:
    """300 random keys at 100 concurrent requests from 127.0.0.1; meanwhile a valid key's
    first request from 127.0.0.2 (Linux routes all of 127/8 to loopback). It waits for
    at most the flooding client's share of verifications, so it takes a small multiple of
    what another key's first request took alone, measured just before on this machine."""
    reading = asyncio.Semaphore(100)
    in_swing = asyncio.Event()
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=100)

    async def one_random_key(client: httpx.AsyncClient) -> int:
        async with reading:
            try:
                response = await client.get(
                    "/v1/persona", headers={"Authorization": f"Bearer {generate_key()}"}
                )
            except httpx.TransportError:  # a pooled connection closed under the flood
                return DROPPED
            finally:
                in_swing.set()
        return response.status_code

    elsewhere = httpx.AsyncHTTPTransport(local_address="127.0.0.2")
    async with (
        httpx.AsyncClient(base_url=api.url, limits=limits, timeout=60) as flooding,
        httpx.AsyncClient(base_url=api.url, transport=elsewhere, timeout=60) as valid,
    ):
        alone = time.monotonic()
        writer = await valid.get("/v1/persona", headers={"Authorization": f"Bearer {WRITER}"})
        alone_s = time.monotonic() - alone
        assert writer.status_code == 200
        started = time.monotonic()
        flood = asyncio.gather(*(one_random_key(flooding) for _ in range(300)))
        await in_swing.wait()
        assert not flood.done()
        sent = time.monotonic()
        response = await valid.get("/v1/persona", headers={"Authorization": f"Bearer {READER}"})
        valid_s = time.monotonic() - sent
        flood_statuses = Counter(await flood)
        flood_s = time.monotonic() - started
    print(
        f"valid key: {valid_s:.3f} s under the flood, {alone_s:.3f} s alone; "
        f"flood of 300: {flood_s:.2f} s, {dict(flood_statuses)}"
    )
    assert response.status_code == 200
    assert valid_s < 6 * alone_s
    assert set(flood_statuses) <= {401, 429, DROPPED}
    assert flood_statuses[401] >= 2  # the flood's own share was verified and refused
