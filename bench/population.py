"""One request's population (the console's request charts): prints figures, asserts nothing.

    .venv/bin/python -m bench.population [--quick]

``GET /v1/requests/{id}/population`` reads every persona of one request and counts it
like the statistics, plus the plan cells against the plan's quotas. For each request
size (1,000 and 10,000 personas, the most a request may ask for; 1,000 and 3,000 with
``--quick``), on the embedded broker and database:

1. One request is stored as a worker leaves it: its personas through the offline
   generation path and ``PersonaWriter.insert_many``, its document completed with its
   plan.
2. ``persona api`` runs as a separate process.
3. The endpoint is timed against the raw PyMongo read it makes (the request's personas
   by ``request_id`` with the same projection, every document fetched), interleaved
   call by call: p50, p95, and the HTTP / raw ratio, which is what parsing, counting
   and HTTP add to reading the documents. The API's RSS is sampled before and after.
"""

import argparse
import asyncio
import sys
import time
from dataclasses import dataclass

import httpx
from loguru import logger
from tests.support.processes import stop

from bench.api import headers, percentiles, start_api
from bench.offline import offline_path
from bench.pipeline import embedded_stack, fresh_settings, rss_mib
from persona_api.stats_queries import COUNTED_PROJECTION
from persona_contracts import PersonaRequested, RequestState
from persona_contracts.events import utcnow
from persona_infra.documents import to_document
from persona_infra.mongo import Collections, connect, ensure_indexes
from persona_infra.request_documents import on_insert
from persona_infra.settings import Settings
from persona_worker.persona_writes import PersonaWriter

INSERT_BATCH = 500


async def seed_request(settings: Settings, count: int) -> PersonaRequested:
    """One completed request of ``count`` personas, stored as the worker stores them."""
    request = PersonaRequested(brief="night-shift nurses in Leeds and Manchester", count=count)
    path = offline_path()
    plan = path.planner.plan_now(request)
    personas = path.personas(request, plan)
    client = connect(settings)
    collections = Collections.of(client[settings.mongodb_database])
    try:
        await ensure_indexes(collections)
        writer = PersonaWriter(collections)
        for start in range(0, count, INSERT_BATCH):
            batch = personas[start : start + INSERT_BATCH]
            await writer.insert_many([to_document(p) for p in batch])
        now = utcnow()
        document = on_insert(request, now) | {
            "_id": request.request_id,
            "status": RequestState.COMPLETED.value,
            "stored": count,
            "updated_at": now,
            "finished_at": now,
            "plan": plan.model_dump(mode="json"),
        }
        await collections.requests.insert_one(document)
    finally:
        await client.close()
    return request


@dataclass
class Row:
    count: int
    http_s: list[float]
    raw_s: list[float]
    rss_before: float
    rss_after: float

    def line(self) -> str:
        http50, http95 = percentiles(self.http_s)
        raw50, raw95 = percentiles(self.raw_s)
        return (
            f"{self.count:>8,} {len(self.http_s):>6} {http50:>9.0f} {http95:>9.0f} "
            f"{raw50:>8.0f} {raw95:>8.0f} {http50 / raw50:>7.2f} "
            f"{self.rss_before:>7.0f} {self.rss_after:>7.0f}"
        )


async def measure(settings: Settings, request: PersonaRequested, calls: int) -> Row:
    api, base_url = start_api(settings)
    client = connect(settings)
    personas = Collections.of(client[settings.mongodb_database]).personas
    http_s: list[float] = []
    raw_s: list[float] = []
    try:
        rss_before = rss_mib(api.pid)
        async with httpx.AsyncClient(base_url=base_url, timeout=300, headers=headers()) as http:
            path = f"/v1/requests/{request.request_id}/population"
            first = await http.get(path)
            first.raise_for_status()
            assert first.json()["stats"]["total"] == request.count, first.text[:300]
            for _ in range(calls):
                started = time.perf_counter()
                (await http.get(path)).raise_for_status()
                http_s.append(time.perf_counter() - started)
                started = time.perf_counter()
                cursor = personas.find({"request_id": request.request_id}, COUNTED_PROJECTION)
                fetched = await cursor.to_list()
                raw_s.append(time.perf_counter() - started)
                assert len(fetched) == request.count
        rss_after = rss_mib(api.pid)
    finally:
        stop(api)
        await client.close()
    return Row(request.count, http_s, raw_s, rss_before, rss_after)


async def main(quick: bool) -> None:
    sizes = (1_000, 3_000) if quick else (1_000, 10_000)
    calls = 5 if quick else 10
    logger.remove()
    logger.add(sys.stderr, level="WARNING")
    print(
        f"{'personas':>8} {'calls':>6} {'HTTP p50':>9} {'HTTP p95':>9} {'raw p50':>8} "
        f"{'raw p95':>8} {'ratio':>7} {'RSS MiB':>7} {'after':>7}"
    )
    with embedded_stack() as stack:
        for count in sizes:
            settings = await fresh_settings(stack)
            request = await seed_request(settings, count)
            print((await measure(settings, request, calls)).line(), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller requests, fewer calls")
    asyncio.run(main(parser.parse_args().quick))
