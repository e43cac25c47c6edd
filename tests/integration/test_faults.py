"""Faults and hostile events, on the real broker and database: nothing accepted is lost,
stuck or paid twice, and no event wedges a partition.

Servers that a test freezes or kills are its own (started here on free ports); the
shared session servers are never harmed.
"""

import asyncio
import json
import os
import signal
import subprocess
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer

from persona_api.app import create_app
from persona_api.request_records import RequestRecords
from persona_contracts import PersonaRequested
from persona_infra.kafka import ensure_topics
from persona_infra.mongo import Collections, connect
from persona_infra.settings import Settings
from persona_pipeline.devstack.servers import free_port, start_kafka, start_mongodb
from persona_producers.request_command import publish_requests
from persona_worker.app import Worker, create_worker
from tests.conftest import derive
from tests.support.kafka import collect, created_events
from tests.support.processes import PERSONA, worker_env
from tests.support.serve import serve
from tests.support.through_api import settled

pytestmark = pytest.mark.integration
FINAL = {"completed", "partial", "failed"}


@pytest.fixture
async def worker(settings: Settings) -> AsyncIterator[Worker]:
    built = create_worker(settings)
    async with serve(built.app):
        yield built


async def produce_with_headers(
    bootstrap: str, topic: str, value: bytes, headers: list[tuple[str, bytes]]
) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, max_request_size=8 * 1024 * 1024)
    await producer.start()
    try:
        await producer.send_and_wait(topic, value, headers=headers)
    finally:
        await producer.stop()


# --- Hostile events ------------------------------------------------------------------------


async def test_an_event_too_large_to_forward_is_dead_lettered_truncated(
    settings: Settings, worker: Worker
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    huge = json.dumps({"brief": "x" * (5 * 1024 * 1024), "count": 1}).encode()
    await produce_with_headers(bootstrap, settings.topics.requests, huge, [])
    after = PersonaRequested(brief="after the huge one", count=1)
    await publish_requests(settings, [after])

    await created_events(settings, after.request_id, 1)
    dead = await collect(bootstrap, settings.topics.dead_letter, lambda rs: len(rs) >= 1)
    headers = dict(dead[0].headers)
    assert headers["x-dlq-truncated"] == b"true"
    assert int(headers["x-dlq-original-bytes"]) == len(huge)
    assert len(headers["x-dlq-sha256"]) == 64
    assert len(dead[0].value) < 1024 * 1024
    assert huge.startswith(dead[0].value)
    assert b"brief" in headers["x-dlq-error"]


async def test_an_event_with_a_header_that_is_not_utf8_is_dead_lettered(
    settings: Settings, worker: Worker
) -> None:
    bootstrap = settings.kafka_bootstrap_servers
    body = PersonaRequested(brief="odd header", count=1).model_dump_json().encode()
    await produce_with_headers(
        bootstrap, settings.topics.requests, body, [("x-trace", b"\xff\xfe")]
    )
    after = PersonaRequested(brief="after the odd header", count=1)
    await publish_requests(settings, [after])

    await created_events(settings, after.request_id, 1)
    dead = await collect(bootstrap, settings.topics.dead_letter, lambda rs: len(rs) >= 1)
    assert dead[0].value == body
    assert b"header" in dict(dead[0].headers)["x-dlq-error"]


async def test_a_request_id_reused_with_other_content_is_dead_lettered(
    settings: Settings, worker: Worker, api: httpx.AsyncClient
) -> None:
    first = PersonaRequested(brief="first brief", count=2)
    await publish_requests(settings, [first])
    await created_events(settings, first.request_id, 2)
    other = first.model_copy(update={"brief": "another brief entirely"})
    await publish_requests(settings, [other, first])  # other content, then a true redelivery

    dead = await collect(
        settings.kafka_bootstrap_servers, settings.topics.dead_letter, lambda rs: len(rs) >= 1
    )
    assert b"already used by a request with other content" in dict(dead[0].headers)["x-dlq-error"]
    await created_events(settings, first.request_id, 4)  # the redelivery re-announced its two
    status = await settled(api, first.request_id, timeout=30)
    assert (status["brief"], status["requested"], status["stored"]) == ("first brief", 2, 2)


# --- The API when its dependencies hang ----------------------------------------------------


async def test_a_frozen_broker_is_a_bounded_503_and_nothing_runs_behind_it(
    settings: Settings, tmp_path: Path
) -> None:
    kafka = start_kafka(free_port(), tmp_path)
    own = derive(settings, kafka_bootstrap_servers=kafka.address, kafka_publish_timeout_s=1.5)
    await ensure_topics(own)
    body = {"brief": "published while the broker hangs", "count": 1}
    headers = {"Idempotency-Key": "retry-me-1"}
    try:
        async with serve(create_app(own)) as url, httpx.AsyncClient(base_url=url) as api:
            assert (await api.get("/ready")).status_code == 200
            os.kill(kafka.process.pid, signal.SIGSTOP)
            started = time.monotonic()
            refused = await api.post("/v1/persona", json=body, headers=headers, timeout=30)
            took = time.monotonic() - started
            os.kill(kafka.process.pid, signal.SIGCONT)
            assert refused.status_code == 503
            assert took < 5, f"the 503 took {took:.1f}s"
            async with serve(create_worker(own).app):
                await asyncio.sleep(3)  # a late copy of the event, if any, arrives and is ignored
                lost = await api.get("/v1/persona", params={"limit": 10})
                assert lost.json()["items"] == [], "nothing was generated behind the 503"
                retried = await api.post("/v1/persona", json=body, headers=headers)
                assert retried.status_code == 202
                status = await settled(api, retried.json()["request_id"], timeout=30)
            assert (status["status"], status["stored"]) == ("completed", 1)
            again = await api.post("/v1/persona", json=body, headers=headers)
            assert again.json()["request_id"] == retried.json()["request_id"]
    finally:
        os.kill(kafka.process.pid, signal.SIGCONT)
        kafka.stop()


async def test_a_frozen_database_fails_within_the_timeout_and_nothing_runs_behind_it(
    settings: Settings, tmp_path: Path
) -> None:
    """The 503 comes within MONGODB_TIMEOUT_MS; the record the frozen server applies late
    is never generated, and the reconciler ends it instead of leaving it pending."""
    mongo = start_mongodb(free_port(), ":memory:", tmp_path)
    own = derive(
        settings,
        mongodb_uri=f"mongodb://{mongo.address}",
        mongodb_timeout_ms=1000,
        reconcile_interval_s=0.5,
        reconcile_stale_after_s=1.0,
    )
    try:
        async with serve(create_app(own)) as url, httpx.AsyncClient(base_url=url) as api:
            assert (await api.get("/ready")).status_code == 200
            os.kill(mongo.process.pid, signal.SIGSTOP)
            started = time.monotonic()
            response = await api.post(
                "/v1/persona", json={"brief": "while the database hangs"}, timeout=30
            )
            took = time.monotonic() - started
            os.kill(mongo.process.pid, signal.SIGCONT)
            assert response.status_code == 503
            assert took < 4, f"the 503 took {took:.1f}s with MONGODB_TIMEOUT_MS=1000"
            collections = Collections.of(connect(own)[own.mongodb_database])
            async with serve(create_worker(own).app):
                deadline = time.monotonic() + 20
                while await collections.requests.count_documents({"status": "pending"}):
                    assert time.monotonic() < deadline, "a pending record was left behind"
                    await asyncio.sleep(0.2)
            assert await collections.personas.count_documents({}) == 0
    finally:
        os.kill(mongo.process.pid, signal.SIGCONT)
        mongo.stop()


# --- Idempotency ---------------------------------------------------------------------------


async def test_a_retried_idempotency_key_returns_the_same_request(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    body = {"brief": "retried by a flaky client", "count": 2}
    key = {"Idempotency-Key": str(uuid.uuid4())}
    first = await api.post("/v1/persona", json=body, headers=key)
    second = await api.post("/v1/persona", json=body, headers=key)
    assert first.status_code == second.status_code == 202
    assert first.json()["request_id"] == second.json()["request_id"]
    other = await api.post("/v1/persona", json={**body, "count": 3}, headers=key)
    assert other.status_code == 422
    assert other.json()["title"] == "Idempotency-Key reused"
    without = await api.post("/v1/persona", json=body)
    assert without.json()["request_id"] != first.json()["request_id"]
    bad = await api.post("/v1/persona", json=body, headers={"Idempotency-Key": "x" * 201})
    assert bad.status_code == 422


# --- The reconciler ------------------------------------------------------------------------


async def test_an_accepted_request_whose_event_was_lost_is_re_driven(
    settings: Settings, api: httpx.AsyncClient
) -> None:
    """The API recorded it, the event never reached Kafka (a broker that lost its topics):
    the reconciler re-publishes it and it completes."""
    own = derive(settings, reconcile_interval_s=0.5, reconcile_stale_after_s=1.0)
    store = RequestRecords(Collections.of(connect(own)[own.mongodb_database]))
    lost = PersonaRequested(brief="accepted, then the broker forgot", count=2)
    await store.record_pending(lost)
    await store.mark_queued(lost.request_id)  # the API's 202: Kafka had taken it
    unconfirmed = PersonaRequested(brief="recorded, but the client was told 503", count=2)
    await store.record_pending(unconfirmed)
    async with serve(create_worker(own).app):
        status = await settled(api, lost.request_id, timeout=30)
        dropped = await settled(api, unconfirmed.request_id, timeout=30)
    assert (status["status"], status["stored"]) == ("completed", 2)
    assert (dropped["status"], dropped["stored"]) == ("failed", 0)
    assert dropped["error"] == "not accepted: the API could not confirm it was queued"


async def test_only_one_worker_holds_the_reconciler_lease(settings: Settings) -> None:
    from persona_worker.lease_store import LeaseStore

    leases = LeaseStore(Collections.of(connect(settings)[settings.mongodb_database]))
    assert await leases.take("reconciler", "a", ttl_s=5)
    assert not await leases.take("reconciler", "b", ttl_s=5)
    assert await leases.take("reconciler", "a", ttl_s=5), "the holder renews"
    await leases.release("reconciler", "a")
    assert await leases.take("reconciler", "b", ttl_s=0.2)
    await asyncio.sleep(0.3)
    assert await leases.take("reconciler", "a", ttl_s=5), "an expired lease is taken over"


# --- Readiness tells the truth -------------------------------------------------------------


class StuckGenerator:
    """Never answers: every request it is given hangs, as a wedged dependency would."""

    name, model = "offline", "stuck"

    async def generate(self, task: object) -> object:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    async def aclose(self) -> None:
        return None


async def test_a_stuck_consumer_is_not_ready_and_its_lag_is_counted(settings: Settings) -> None:
    own = derive(settings, ready_stall_s=1.0, max_requests_in_flight=1, shutdown_grace_s=0.5)
    worker = create_worker(own, generator=StuckGenerator())  # type: ignore[arg-type]
    async with serve(worker.app) as url, httpx.AsyncClient(base_url=url) as client:
        assert (await client.get("/ready")).json()["checks"]["consumer"] == "ok"
        await publish_requests(own, [PersonaRequested(brief=f"stuck {i}") for i in range(3)])
        deadline = time.monotonic() + 20
        while (ready := await client.get("/ready")).status_code == 200:
            assert time.monotonic() < deadline, "/ready stayed 200 with a stuck consumer"
            await asyncio.sleep(0.2)
        assert ready.json()["checks"]["consumer"].startswith("stalled (")
        metrics = (await client.get("/metrics")).text
        lag = [
            line
            for line in metrics.splitlines()
            if line.startswith("persona_consumer_lag_messages{")
        ]
        assert sum(float(line.split()[-1]) for line in lag) >= 3


async def test_the_worker_recovers_from_a_broker_restart_that_lost_its_topics(
    settings: Settings, tmp_path: Path
) -> None:
    """The embedded broker keeps topics in memory: after a restart the worker comes back
    to ready (both of its consumers) and generates what is published next (the
    reconciler covers what was lost)."""
    port = free_port()
    kafka = start_kafka(port, tmp_path)
    own = derive(settings, kafka_bootstrap_servers=kafka.address)
    try:
        async with serve(create_worker(own).app) as url, httpx.AsyncClient(base_url=url) as client:
            assert (await client.get("/ready")).status_code == 200
            kafka.stop()
            kafka = start_kafka(port, tmp_path)
            await ensure_topics(own)  # what `persona dev` does when it restarts the broker
            after = PersonaRequested(brief="after the broker restart", count=1)
            await publish_requests(own, [after])
            await created_events(own, after.request_id, 1)
            # The shard consumer rejoins its own group on its own schedule.
            deadline = time.monotonic() + 30
            while (ready := await client.get("/ready")).status_code != 200:
                assert time.monotonic() < deadline, ready.json()
                await asyncio.sleep(0.2)
    finally:
        kafka.stop()


async def test_persona_request_not_queued_is_retried_by_id_and_generated_once(
    settings: Settings, tmp_path: Path
) -> None:
    """``persona request`` against a frozen broker says "not queued" within the timeout and
    names the retry; the frozen copy may still land after the thaw, and with the retry's
    same id both are one request: exactly its personas, once."""
    kafka = start_kafka(free_port(), tmp_path)
    own = derive(settings, kafka_bootstrap_servers=kafka.address, kafka_publish_timeout_s=1.0)
    await ensure_topics(own)
    env = worker_env(own, KAFKA_PUBLISH_TIMEOUT_S="1")
    request_id = uuid.uuid4()
    command = [PERSONA, "request", "--brief", "ferry pilots", "--count", "2", "--seed", "7"]
    command += ["--request-id", str(request_id)]
    try:
        os.kill(kafka.process.pid, signal.SIGSTOP)
        started = time.monotonic()
        refused = await asyncio.to_thread(run_command, command, env)
        assert time.monotonic() - started < 15
        os.kill(kafka.process.pid, signal.SIGCONT)
        assert refused.returncode == 1
        said = " ".join(refused.stderr.split())
        assert "not queued" in said
        assert "KAFKA_PUBLISH_TIMEOUT_S" in said
        assert f"--request-id {request_id}" in said
        retried = await asyncio.to_thread(run_command, command, env)
        assert retried.returncode == 0, retried.stderr
        assert retried.stdout.strip() == str(request_id)
        async with (
            serve(create_worker(own).app),
            serve(create_app(own)) as url,
            httpx.AsyncClient(base_url=url) as api,
        ):
            status = await settled(api, request_id, timeout=30)
            await asyncio.sleep(1)  # a second copy, if any, is handled by now
            personas = (await api.get("/v1/persona", params={"request_id": str(request_id)})).json()
        assert status["status"] == "completed"
        assert sorted(p["ordinal"] for p in personas["items"]) == [0, 1]
    finally:
        os.kill(kafka.process.pid, signal.SIGCONT)
        kafka.stop()


def run_command(command: list[str], env: dict[str, str]) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=60)
