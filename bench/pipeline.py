"""Pipeline benchmark: prints figures, asserts nothing.

    .venv/bin/python -m bench.pipeline [--quick] [--scaling]

(a) LLM-bound: a fake OpenAI-compatible server with latency L, one worker
    process at concurrency C; personas/s against the ideal C/L.
(b) Overhead-bound: the offline generator (no latency), N personas; personas/s
    against a raw loop (aiokafka consume -> PyMongo insert -> aiokafka produce)
    on the same broker and database, in the same run.
(c) The worker's resident memory at steady state, after (a) and (b).
(d) Adaptive concurrency: a fake server that answers 429 above K calls in flight,
    latency L, the worker's ceiling C well above K; personas/s against K/L and the
    share of calls answered 429.

(e) Batch mode: personas per second of worker CPU, one batch request against the
    fake's Batch API versus the same requests through synchronous calls, in one run.
(f) Scaling: one large request (4,000 personas; 1,000 with --quick) in shards of 25,
    latency L = 1 s, concurrency C = 32 per worker, on 1, 2 and 3 worker processes in one
    run: personas/s, the ratio to N times the 1-worker rate, and worker CPU per persona
    (the 2 cores of this machine are shared by the workers, the broker and the database).

(a) and (d) are measured at steady state: a warm-up of two waves first lets the
adaptive limit finish its start (it starts at 8 and doubles per round trip).

Everything runs on this machine: the embedded broker and database, the worker
as a separate `persona worker` process, the fake server in this process.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from tests.support.fake_openai import FakeOpenAI
from tests.support.processes import start_worker, stop, worker_env

from bench.offline import offline_persona
from persona_contracts import GenerationMode, PersonaCreated, PersonaRequested
from persona_infra.documents import to_document
from persona_infra.kafka import ensure_topics
from persona_infra.mongo import Collections, connect, ensure_indexes
from persona_infra.settings import Settings
from persona_pipeline.devstack.servers import free_port, start_kafka, start_mongodb
from persona_producers.request_command import publish_requests

PER_REQUEST = 5


@dataclass
class Stack:
    kafka: str
    mongodb_uri: str


@contextmanager
def embedded_stack() -> Iterator[Stack]:
    workdir = Path(tempfile.mkdtemp(prefix="persona-bench-"))
    kafka = start_kafka(free_port(), workdir)
    mongo = start_mongodb(free_port(), workdir / "db", workdir)
    try:
        yield Stack(kafka.address, f"mongodb://{mongo.address}")
    finally:
        kafka.stop()
        mongo.stop()
        shutil.rmtree(workdir, ignore_errors=True)


async def fresh_settings(stack: Stack) -> Settings:
    tag = uuid.uuid4().hex[:8]
    settings = Settings(
        _env_file=None,
        kafka_bootstrap_servers=stack.kafka,
        mongodb_uri=stack.mongodb_uri,  # type: ignore[arg-type]
        mongodb_database=f"bench_{tag}",
        kafka_topic_prefix=f"b{tag}.",
        kafka_session_timeout_ms=2000,
        kafka_heartbeat_interval_ms=400,
    )
    await ensure_topics(settings)
    return settings


def cpu_seconds(pid: int) -> float:
    """User and system CPU the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


async def wait_for_created(settings: Settings, target: int, timeout: float = 300) -> None:
    """Until ``target`` distinct personas were announced on ``persona.created``.

    Reads Kafka rather than polling the database, so measuring adds no load to the
    store being measured."""
    consumer = AIOKafkaConsumer(
        settings.topics.created,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )
    await consumer.start()
    seen: set[bytes] = set()
    try:
        async with asyncio.timeout(timeout):
            while len(seen) < target:
                for records in (await consumer.getmany(timeout_ms=100)).values():
                    seen.update(json.loads(r.value)["event_id"].encode() for r in records)
    finally:
        await consumer.stop()


async def timed_run(settings: Settings, requests: list[PersonaRequested], already: int) -> float:
    """Seconds from publishing ``requests`` until all their personas are announced."""
    started = time.perf_counter()
    await publish_requests(settings, requests)
    await wait_for_created(settings, already + sum(r.count for r in requests))
    return time.perf_counter() - started


def requests_for(
    personas: int, label: str, per_request: int = PER_REQUEST, mode: GenerationMode | None = None
) -> list[PersonaRequested]:
    """Requests of ``per_request`` personas; ``personas`` must be a multiple of it."""
    if personas % per_request:
        raise ValueError(f"{personas} is not a multiple of {per_request}")
    return [
        PersonaRequested(brief=f"{label} {i}", count=per_request, mode=mode)
        for i in range(personas // per_request)
    ]


async def warm_up(settings: Settings, personas: int) -> int:
    """``personas`` through the worker, so neither joining the group nor the adaptive
    limit's start is in the timing; returns how many were announced (``personas``
    rounded up to whole requests)."""
    personas = -(-personas // PER_REQUEST) * PER_REQUEST
    requests = requests_for(personas, "warm-up")
    await timed_run(settings, requests, already=0)
    return personas


def llm_worker_env(settings: Settings, fake: FakeOpenAI, concurrency: int) -> dict[str, str]:
    return worker_env(
        settings,
        OPENAI_API_KEY="sk-bench",
        OPENAI_BASE_URL=fake.base_url,
        GENERATION_CONCURRENCY=str(concurrency),
        MAX_REQUESTS_IN_FLIGHT=str(max(64, 2 * concurrency // PER_REQUEST)),
        OPENAI_RPM="0",
        OPENAI_TPM="0",
    )


async def llm_bound(stack: Stack, latency: float, concurrency: int, waves: int) -> dict[str, float]:
    settings = await fresh_settings(stack)
    personas = concurrency * waves  # full waves; waves is a multiple of PER_REQUEST
    with FakeOpenAI(latency=latency) as fake:
        worker = start_worker(llm_worker_env(settings, fake, concurrency))
        try:
            done = await warm_up(settings, 2 * concurrency)
            fake.reset()
            elapsed = await timed_run(settings, requests_for(personas, "llm-bound"), done)
            rss = rss_mib(worker.pid)
            peak = fake.max_in_flight
        finally:
            stop(worker)
    return {
        "C": concurrency,
        "L": latency,
        **throughput(personas, elapsed, ideal=concurrency / latency),
        "peak_in_flight": peak,
        "rss_mib": rss,
    }


def throughput(personas: int, elapsed: float, ideal: float) -> dict[str, float]:
    """Personas per second, and as a share of the rate the setup allows at best."""
    rate = personas / elapsed
    return {
        "personas": personas,
        "seconds": elapsed,
        "rate": rate,
        "ideal": ideal,
        "ratio": rate / ideal,
    }


async def capacity_bound(
    stack: Stack, capacity: int, concurrency: int, latency: float, personas: int
) -> dict[str, float]:
    settings = await fresh_settings(stack)
    with FakeOpenAI(latency=latency, capacity=capacity) as fake:
        worker = start_worker(llm_worker_env(settings, fake, concurrency))
        try:
            done = await warm_up(settings, 2 * concurrency)
            fake.reset()
            elapsed = await timed_run(settings, requests_for(personas, "capacity"), done)
            calls, rejected = fake.calls, fake.rejected_for_capacity
        finally:
            stop(worker)
    return {
        "K": capacity,
        "C": concurrency,
        "L": latency,
        **throughput(personas, elapsed, ideal=capacity / latency),
        "calls": calls,
        "rejected_share": rejected / calls if calls else float("nan"),
    }


async def worker_cpu(stack: Stack, personas: int, mode: GenerationMode) -> dict[str, float]:
    """Personas per second of worker CPU for ``personas`` in requests of 50 in ``mode``."""
    settings = await fresh_settings(stack)
    with FakeOpenAI(batch_step_s=0.05) as fake:
        env = llm_worker_env(settings, fake, 32)
        env.update(OPENAI_MODEL="gpt-4o-mini", OPENAI_BATCH_POLL_S="0.2")
        worker = start_worker(env)
        try:
            done = await warm_up(settings, PER_REQUEST)
            before = cpu_seconds(worker.pid)
            requests = requests_for(personas, f"cpu-{mode.value}", 50, mode)
            elapsed = await timed_run(settings, requests, done)
            cpu = cpu_seconds(worker.pid) - before
        finally:
            stop(worker)
    return {"personas": personas, "seconds": elapsed, "cpu": cpu, "per_cpu_s": personas / cpu}


SHARD = 25


async def scaling(stack: Stack, personas: int, workers: int) -> dict[str, float]:
    """One request of ``personas`` in shards, shared by ``workers`` worker processes."""
    settings = await fresh_settings(stack)
    latency, concurrency = 1.0, 32
    with FakeOpenAI(latency=latency) as fake:
        env = {"REQUEST_SHARD_SIZE": str(SHARD)}
        processes = [
            start_worker({**llm_worker_env(settings, fake, concurrency), **env})
            for _ in range(workers)
        ]
        try:
            done = await warm_up(settings, 2 * concurrency * workers)
            before = sum(cpu_seconds(w.pid) for w in processes)
            request = PersonaRequested(brief="a large panel", count=personas)
            elapsed = await timed_run(settings, [request], done)
            cpu = sum(cpu_seconds(w.pid) for w in processes) - before
        finally:
            for worker in processes:
                stop(worker)
    return {
        "workers": workers,
        **throughput(personas, elapsed, ideal=workers * concurrency / latency),
        "cpu_ms_per_persona": 1000 * cpu / personas,
    }


async def offline_pipeline(stack: Stack, personas: int) -> dict[str, float]:
    settings = await fresh_settings(stack)
    env = worker_env(settings, GENERATOR="offline")
    worker = start_worker(env)
    try:
        done = await warm_up(settings, PER_REQUEST)
        elapsed = await timed_run(settings, requests_for(personas, "overhead"), done)
        rss = rss_mib(worker.pid)
    finally:
        stop(worker)
    return {"personas": personas, "seconds": elapsed, "rate": personas / elapsed, "rss_mib": rss}


async def raw_loop(stack: Stack, personas: int) -> dict[str, float]:
    """The floor any pipeline pays: consume a request, insert its personas, produce events.

    It writes the same documents the pipeline writes (built before the clock
    starts), into a collection with the same indexes and write concern, so the
    ratio measures the pipeline's own overhead, not the cost of indexing."""
    settings = await fresh_settings(stack)
    requests = requests_for(personas, "raw")
    documents = {r.request_id: _documents(r) for r in requests}
    await publish_requests(settings, requests)
    client = connect(settings)
    collections = Collections.of(client[settings.mongodb_database])
    await ensure_indexes(collections)
    consumer = AIOKafkaConsumer(
        settings.topics.requests,
        bootstrap_servers=settings.kafka_bootstrap_servers,
        group_id="raw-loop",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=2000,
        heartbeat_interval_ms=400,
    )
    producer = AIOKafkaProducer(bootstrap_servers=settings.kafka_bootstrap_servers)
    await consumer.start()
    await producer.start()
    stored = 0
    started = time.perf_counter()
    try:
        while stored < personas:
            for records in (await consumer.getmany(timeout_ms=200)).values():
                for record in records:
                    request_id = uuid.UUID(json.loads(record.value)["request_id"])
                    for doc, event in documents[request_id]:
                        await collections.personas.insert_one(doc)
                        await producer.send_and_wait(settings.topics.created, event)
                        stored += 1
                    await consumer.commit()
        elapsed = time.perf_counter() - started
    finally:
        await consumer.stop()
        await producer.stop()
        await client.close()
    return {"personas": personas, "seconds": elapsed, "rate": personas / elapsed}


def _documents(request: PersonaRequested) -> list[tuple[dict[str, object], bytes]]:
    """The stored documents and ``persona.created`` payloads of a request, precomputed."""
    pairs = []
    for ordinal in range(request.count):
        persona = offline_persona(request, ordinal, datetime.now(UTC))
        event = PersonaCreated.for_persona(persona).model_dump_json().encode()
        pairs.append((to_document(persona), event))
    return pairs


def print_scaling(scaled: list[dict[str, float]]) -> None:
    one = scaled[0]["rate"]
    print(
        f"\n(f) Scaling: one request of {scaled[0]['personas']:.0f} personas in shards of "
        f"{SHARD}, L=1 s, C=32 per worker"
    )
    print(
        f"{'workers':>8} {'seconds':>8} {'persona/s':>10} {'ideal N*C/L':>12} "
        f"{'vs N x 1 worker':>16} {'worker CPU ms/persona':>22}"
    )
    for r in scaled:
        print(
            f"{r['workers']:>8.0f} {r['seconds']:>8.1f} {r['rate']:>10.1f} {r['ideal']:>12.0f} "
            f"{r['rate'] / (r['workers'] * one):>16.2f} {r['cpu_ms_per_persona']:>22.2f}"
        )
    print("  target: >= 0.90 of linear, as far as the machine's CPU allows")


async def scale_rows(stack: Stack, quick: bool) -> list[dict[str, float]]:
    """The rows of (f); each is printed as it is measured, so a later failure keeps it."""
    large = 1000 if quick else 4000
    rows = []
    for workers in (1, 2, 3):
        rows.append(await scaling(stack, large, workers))
        print(f"(f) measured: {rows[-1]}", flush=True)
    return rows


async def main(quick: bool, only_scaling: bool) -> None:
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    if only_scaling:
        with embedded_stack() as stack:
            print_scaling(await scale_rows(stack, quick))
        return
    # (C, L, waves). C=128 at L=4 s asks the same concurrency for a quarter of the call
    # rate: it separates "can keep C calls in flight" from "has the CPU for C/L calls/s".
    runs = [(32, 1.0, 5)] if quick else [(32, 1.0, 10), (128, 1.0, 10), (128, 4.0, 5)]
    overhead_personas = 500 if quick else 2000
    with embedded_stack() as stack:
        llm = [await llm_bound(stack, latency, c, waves) for c, latency, waves in runs]
        capped = await capacity_bound(stack, 16, 64, 1.0, 16 * (20 if quick else 40))
        raw = await raw_loop(stack, overhead_personas)
        pipeline = await offline_pipeline(stack, overhead_personas)
        cpu_personas = 500 if quick else 2000
        cpu = {m: await worker_cpu(stack, cpu_personas, m) for m in GenerationMode}
        scaled = await scale_rows(stack, quick)
    print("\n(a) LLM-bound: fake OpenAI server, latency L, one worker at concurrency C")
    print(
        f"{'C':>5} {'L s':>5} {'personas':>9} {'seconds':>8} {'persona/s':>10} "
        f"{'ideal C/L':>10} {'ratio':>6} {'peak in flight':>15}"
    )
    for r in llm:
        print(
            f"{r['C']:>5.0f} {r['L']:>5.1f} {r['personas']:>9.0f} {r['seconds']:>8.2f} "
            f"{r['rate']:>10.1f} {r['ideal']:>10.1f} {r['ratio']:>6.2f} "
            f"{r['peak_in_flight']:>15.0f}"
        )
    print(
        "\n(b) Overhead-bound: zero-latency offline generator vs raw loop, same broker and database"
    )
    print(f"{'':>10} {'personas':>9} {'seconds':>8} {'persona/s':>10}")
    for name, r in (("raw loop", raw), ("pipeline", pipeline)):
        print(f"{name:>10} {r['personas']:>9.0f} {r['seconds']:>8.2f} {r['rate']:>10.1f}")
    print(f"pipeline / raw = {pipeline['rate'] / raw['rate']:.2f}  (target >= 0.50)")
    print("\n(c) Worker RSS at steady state")
    for r in llm:
        print(f"  after LLM-bound C={r['C']:.0f} L={r['L']:.0f}s: {r['rss_mib']:.0f} MiB")
    print(
        f"  after {pipeline['personas']:.0f} offline personas: {pipeline['rss_mib']:.0f} MiB "
        "(target <= 256 MiB)"
    )
    c = capped
    print(
        f"\n(d) Adaptive concurrency: server answers 429 above K={c['K']:.0f} in flight, "
        f"L={c['L']:.1f} s, ceiling C={c['C']:.0f}"
    )
    print(
        f"  {c['personas']:.0f} personas in {c['seconds']:.1f} s: {c['rate']:.1f}/s, "
        f"K/L = {c['ideal']:.1f}/s, ratio {c['ratio']:.2f} (target >= 0.80); "
        f"{c['rejected_share']:.1%} of {c['calls']:.0f} calls answered 429 (target <= 5 %)"
    )
    sync, batch = cpu[GenerationMode.SYNC], cpu[GenerationMode.BATCH]
    print("\n(e) Worker CPU per persona: requests of 50, fake server, sync vs batch mode")
    for name, r in (("sync", sync), ("batch", batch)):
        print(
            f"  {name:>5}: {r['personas']:.0f} personas, {r['cpu']:.2f} s worker CPU in "
            f"{r['seconds']:.1f} s: {r['per_cpu_s']:.0f} personas per CPU second"
        )
    print(f"  batch / sync: {batch['per_cpu_s'] / sync['per_cpu_s']:.2f}x")
    print_scaling(scaled)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (about a minute)")
    parser.add_argument("--scaling", action="store_true", help="only (f), the scaling row")
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    arguments = parser.parse_args()
    asyncio.run(main(arguments.quick, arguments.scaling))
