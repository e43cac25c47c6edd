"""Fault drill: prints figures, asserts nothing.

    .venv/bin/python -m bench.faults [--requests 50] [--per-request 5] [--latency 2.0]

Runs ``persona dev`` as a user would (free ports, a temporary data directory) with the
OpenAI generator pointed at the fake OpenAI-compatible server of the tests (latency L,
so work is in flight when the faults strike), submits N requests of K personas through
``POST /v1/persona`` (each with an ``Idempotency-Key``; a 503 or a refused connection is
retried with the same key, as a careful client would), and then, a few seconds apart:

1. kill -9 the worker;
2. kill -9 MongoDB;
3. kill -9 the broker (in memory: it comes back without topics or messages);
4. SIGHUP the supervisor (closing its terminal), then a fresh ``persona dev`` on the
   same data directory.

When ``persona dev`` itself exits (it should only on step 4), the drill starts it again
and says so. Finally it waits until every request is final and prints: personas stored
(must be N x K), duplicates (must be 0), requests not final (must be 0), LLM calls
repeated for an ordinal (each may cost money: a call cut by a kill counts too), and the
time until everything was final.
"""

import argparse
import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import httpx
from pymongo import AsyncMongoClient
from tests.support.dev import command_line, descendants
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import PERSONA

from persona_pipeline.devstack.servers import free_port

FINAL = {"completed", "partial", "failed"}


@dataclass
class Dev:
    """One ``persona dev`` and the environment it runs with."""

    env: dict[str, str]
    log: Path
    process: subprocess.Popen[bytes] | None = None
    starts: int = 0
    unexpected_exits: list[str] = field(default_factory=list)

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.env['API_PORT']}"

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.process = subprocess.Popen(
                [PERSONA, "dev"], env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        self.starts += 1

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def child(self, marker: str) -> int | None:
        """The pid of the supervisor's descendant whose command line contains ``marker``."""
        if self.process is None:
            return None
        for pid in descendants(self.process.pid):
            if marker in command_line(pid):
                return pid
        return None

    def stop(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()


async def submit(dev: Dev, count: int, per_request: int) -> list[str]:
    """Every request accepted (202), retried with its key until it is."""
    ids: list[str] = []
    async with httpx.AsyncClient(base_url=dev.api, timeout=30) as client:
        for i in range(count):
            key = str(uuid.uuid4())
            body = {"brief": f"drill request {i}: commuters in Lisbon", "count": per_request}
            while True:
                try:
                    answer = await client.post(
                        "/v1/persona", json=body, headers={"Idempotency-Key": key}
                    )
                    if answer.status_code == 202:
                        ids.append(answer.json()["request_id"])
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.5)
    return ids


async def wait_ready(dev: Dev, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=3) as client:
        while time.monotonic() < deadline:
            try:
                worker = await client.get(f"http://127.0.0.1:{dev.env['WORKER_PORT']}/ready")
                api = await client.get(f"{dev.api}/ready")
                if worker.status_code == api.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if not dev.alive():
                dev.unexpected_exits.append(f"persona dev exited ({_code(dev)}) while waiting")
                dev.start()
            await asyncio.sleep(0.5)
    raise RuntimeError("the stack never became ready")


def _code(dev: Dev) -> object:
    return dev.process.returncode if dev.process else None


async def strike(dev: Dev, name: str, marker: str) -> str:
    pid = dev.child(marker)
    if pid is None:
        return f"{name}: not found"
    stored = await stored_so_far(dev)
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(4)
    survived = dev.alive()
    if not survived:
        dev.unexpected_exits.append(
            f"persona dev exited ({_code(dev)}) after kill -9 of the {name}"
        )
        dev.start()
    await wait_ready(dev)
    kept = "kept running" if survived else "EXITED"
    return f"{name}: kill -9 with {stored} personas stored; persona dev {kept}"


async def stored_so_far(dev: Dev) -> object:
    async with httpx.AsyncClient(base_url=dev.api, timeout=5) as client:
        try:
            return (await client.get("/v1/persona/stats")).json()["total"]
        except (httpx.HTTPError, ValueError, KeyError):
            return "?"


async def hangup(dev: Dev) -> str:
    assert dev.process is not None
    stored = await stored_so_far(dev)
    supervisor = dev.process.pid
    children = descendants(supervisor)
    dev.process.send_signal(signal.SIGHUP)
    try:
        code: object = dev.process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        dev.process.kill()
        code = "no exit within 60 s"
    await asyncio.sleep(2)
    orphans = [pid for pid in children if command_line(pid)]
    for pid in orphans:  # what a user would have to do by hand
        os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(1)
    dev.start()
    await wait_ready(dev)
    return f"SIGHUP with {stored} stored: supervisor exited with {code}; orphans: {len(orphans)}"


async def finals(dev: Dev, ids: list[str], timeout: float) -> tuple[int, float]:
    """How many requests are not final when everything was (or the timeout passed)."""
    started = time.monotonic()
    pending = set(ids)
    async with httpx.AsyncClient(base_url=dev.api, timeout=10) as client:
        while pending and time.monotonic() - started < timeout:
            for request_id in list(pending):
                try:
                    status = (await client.get(f"/v1/requests/{request_id}")).json()
                except (httpx.HTTPError, ValueError):
                    continue
                if status.get("status") in FINAL:
                    pending.discard(request_id)
            if not dev.alive():
                dev.unexpected_exits.append("persona dev exited while finishing")
                dev.start()
                await wait_ready(dev)
            await asyncio.sleep(1)
    return len(pending), time.monotonic() - started


async def count_personas(dev: Dev) -> tuple[int, int]:
    client: AsyncMongoClient[dict[str, object]] = AsyncMongoClient(
        f"mongodb://127.0.0.1:{dev.env['DEV_MONGODB_PORT']}", uuidRepresentation="standard"
    )
    try:
        cursor = client["personas"]["personas"].find({}, {"request_id": 1, "ordinal": 1})
        keys = Counter([(str(doc["request_id"]), doc["ordinal"]) async for doc in cursor])
    finally:
        await client.close()
    return len(keys), sum(n - 1 for n in keys.values())


async def drill(requests: int, per_request: int, latency: float) -> None:
    with tempfile.TemporaryDirectory() as tmp, FakeOpenAI(latency=latency) as fake:
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("KAFKA_", "MONGODB_", "OPENAI_", "DEV_", "API_", "WORKER_"))
        } | {
            "DEV_DATA_DIR": f"{tmp}/data",
            "DEV_KAFKA_PORT": str(free_port()),
            "DEV_MONGODB_PORT": str(free_port()),
            "API_PORT": str(free_port()),
            "WORKER_PORT": str(free_port()),
            "GENERATOR": "openai",
            "OPENAI_API_KEY": "sk-drill-not-a-key",
            "OPENAI_BASE_URL": fake.base_url,
            "OPENAI_RPM": "0",
            "OPENAI_TPM": "0",
            "GENERATION_CONCURRENCY": "8",
            "RECONCILE_INTERVAL_S": "2",
            "RECONCILE_STALE_AFTER_S": "10",
            "WRITE_RATE_PER_MINUTE": "100000",  # the drill's client is not the abuser here
            "WRITE_BURST": "1000",
            "LOG_LEVEL": "WARNING",
        }
        dev = Dev(env, Path(tmp) / "dev.log")
        dev.start()
        await wait_ready(dev)
        began = time.monotonic()
        ids = await submit(dev, requests, per_request)
        events = []
        for name, marker in (("worker", " worker"), ("MongoDB", "secantus"), ("broker", "tansu")):
            await asyncio.sleep(3)
            events.append(await strike(dev, name, marker))
        await asyncio.sleep(3)
        events.append(await hangup(dev))
        not_final, waited = await finals(dev, ids, timeout=600)
        stored, duplicates = await count_personas(dev)
        arrived = sum(fake.calls_by_path.values())  # counted on arrival, cut calls included
        calls = Counter(
            headers.get("x-client-request-id", "").rsplit(":", 1)[0]
            for headers in fake.request_headers
        )
        dev.stop()
    print(
        f"Fault drill: {requests} requests x {per_request} personas, fake LLM latency {latency}s\n"
    )
    for line in events:
        print(f"  {line}")
    for line in dev.unexpected_exits:
        print(f"  unexpected: {line}")
    print(f"\n  personas stored        {stored} (must be {requests * per_request})")
    print(f"  duplicates             {duplicates} (must be 0)")
    print(f"  requests not final     {not_final} (must be 0)")
    repeated = arrived - len(calls)
    print(f"  LLM calls              {arrived} for {len(calls)} ordinals: {repeated} repeated")
    print(f"  persona dev starts     {dev.starts} (1 + the fresh start after SIGHUP = 2)")
    total = time.monotonic() - began
    print(f"  time to all final      {total:.0f}s ({waited:.0f}s after the last fault)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50)
    parser.add_argument("--per-request", type=int, default=5)
    parser.add_argument("--latency", type=float, default=2.0, help="fake LLM latency in seconds")
    arguments = parser.parse_args()
    if sys.platform != "linux":
        raise SystemExit("the drill reads /proc: Linux only")
    asyncio.run(drill(arguments.requests, arguments.per_request, arguments.latency))
