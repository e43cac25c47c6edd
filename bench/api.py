"""Read-API benchmark: prints figures, asserts nothing.

    .venv/bin/python -m bench.api [--quick] [--wrk-seconds S] [--case-seconds S] [--no-wrk]

For each collection size N, on the embedded broker and database:

1. Seed N personas through the storage path the worker uses: offline generator
   and grounding sampler, ``to_document`` (with ``minhash`` and ``brief_key``),
   ``PersonaWriter.insert_many`` in batches, ``StatsCounter.apply`` (one ``$inc`` per
   batch rather than per request: the counters end the same). Five personas per
   request id, creation times spread over the last 30 days.
2. Start ``persona api`` as a separate process and wait for ``/ready``.
3. Per endpoint case (the ``CASES`` table below): p50/p95 of sequential calls
   over one keep-alive ``http.client`` connection (the leanest client, so the
   figure is the API's, not the client's), and of the raw PyMongo query that
   endpoint issues (same filter, sort, limit, projection), interleaved call by call
   in the same run. "added" is HTTP p50 - raw p50: what the API process and HTTP
   add. One extra row repeats get-by-id over httpx to show what a heavier client
   costs. Each case runs up to a number of calls or a time budget, whichever ends
   first (see ``Budget``). The API logs as in production: JSON access lines at INFO.
4. ``GET /v1/persona/{id}`` under load: wrk (2 threads, 16 connections, rotating
   ids) when it is on PATH, else an asyncio httpx loop with 16 connections.
5. ``GET /v1/persona/export`` of the whole store in each format: rows, time, size, and
   the API's RSS before and at its peak while streaming (memory must stay flat).

Only public read endpoints are requested. When ``BENCH_API_KEY`` is set it is
sent as ``X-API-Key``.
"""

import argparse
import asyncio
import http.client
import json
import os
import random
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, Protocol, cast

import httpx
from loguru import logger
from pymongo.asynchronous.collection import AsyncCollection
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from tests.support import processes
from tests.support.processes import stop, worker_env

from bench.offline import offline_persona
from bench.pipeline import (
    PER_REQUEST,
    Stack,
    embedded_stack,
    fresh_settings,
    rss_mib,
)
from persona_api import search
from persona_api.cursor import CursorCodec, fingerprint
from persona_api.persona_queries import Ordering, PersonaFilter
from persona_contracts import Persona, PersonaRequested
from persona_infra.documents import PUBLIC_PROJECTION, brief_key, to_document
from persona_infra.mongo import Collections, Document, connect, ensure_indexes
from persona_infra.newest_first import by_ids, newest_first
from persona_infra.settings import Settings
from persona_infra.stats_document import STATS_ID, newest_counted
from persona_infra.text import terms
from persona_worker.dedup import MinHasher, fingerprint_text
from persona_worker.persona_writes import PersonaWriter
from persona_worker.stats_writes import StatsCounter

# --- What is measured: one row per endpoint case --------------------------------------------
#
# ``params`` is the HTTP query string. ``where`` and ``ordering`` are what the route builds
# from it; the raw reads are the ones ``PersonaQueries.page`` makes (``newest_first`` on
# ``where.to_query()`` with ``PUBLIC_PROJECTION``, for relevance the newest
# ``RANKING_WINDOW + 1`` matches that the API then ranks), through the driver alone.
# Before timing, both sides' ids are compared and a difference is flagged in the table, so
# a drift between this table and the API shows up. ``deep`` times page ``deep`` instead of
# the first (newest-first lists only).

SEARCH_TERM = "retiree"  # an occupation word in about 13% of the sampled personas
COUNTRY = "CN"  # the most common country of the grounding sampler


@dataclass(frozen=True)
class Case:
    name: str
    kind: Literal["get", "page", "stats", "floor"]
    path: str
    params: Mapping[str, str] = field(default_factory=dict)
    where: PersonaFilter = field(default_factory=PersonaFilter)
    ordering: Ordering = Ordering.NEWEST
    deep: int = 0
    client: Literal["httpx", "stdlib"] = "stdlib"

    @property
    def limit(self) -> int:
        return int(self.params.get("limit", 20))


CASES: tuple[Case, ...] = (
    # No I/O and no raw side: what any request through this server costs, interleaved
    # with database calls as the other cases are.
    Case("GET /health (no I/O)", "floor", "/health"),
    Case("get by id", "get", "/v1/persona/{id}"),
    # The same calls over httpx: how much a heavier client adds on top.
    Case("get by id (httpx client)", "get", "/v1/persona/{id}", client="httpx"),
    Case("list first page", "page", "/v1/persona", params={"limit": "20"}),
    Case(
        f"list country={COUNTRY}",
        "page",
        "/v1/persona",
        params={"limit": "20", "country": COUNTRY},
        where=PersonaFilter(country=COUNTRY),
    ),
    Case("list page 50", "page", "/v1/persona", params={"limit": "20"}, deep=50),
    Case(
        f"search q={SEARCH_TERM}",
        "page",
        "/v1/persona/search",
        params={"limit": "20", "q": SEARCH_TERM},
        where=PersonaFilter(terms=tuple(terms(SEARCH_TERM))),
        ordering=Ordering.RELEVANCE,  # the search default
    ),
    Case("stats", "stats", "/v1/persona/stats"),
)
LOAD_PATH = "/v1/persona/{id}"  # the load test's endpoint, over rotating existing ids

BRIEFS = (
    "Users of a meal-planning app for busy families",
    "Customers of a regional bank switching to mobile banking",
    "Listeners of a weekly science podcast",
    "Commuters who cycle to work in mid-sized cities",
    "Small shop owners evaluating a point-of-sale system",
    "Retirees learning to use video calls",
    "Parents choosing an after-school coding club",
    "Readers of a local news site",
)
SEED_BATCH = 500  # personas per insert_many
# Bulk work slows down as the collection grows on the embedded database (a batch of 500
# took over the default 5 s past 30,000 personas, dropping 20,000 too): it may take this.
SLOW_OPERATION_MS = 120_000
SPREAD = timedelta(days=30)
LOAD_CONNECTIONS = 16
LOAD_THREADS = 2
LOAD_IDS = 1000

API_KEY_HEADER = "X-API-Key"
API_KEY_ENV = "BENCH_API_KEY"


# --- Seeding ----------------------------------------------------------------------------------


def _build(
    requests: Sequence[tuple[PersonaRequested, datetime]],
) -> tuple[list[Persona], list[dict[str, Any]]]:
    """Personas and their documents as the worker stores them (offline generator)."""
    hasher = MinHasher()
    personas, documents = [], []
    for request, created in requests:
        for ordinal in range(request.count):
            persona = offline_persona(
                request, ordinal, created + timedelta(milliseconds=7 * ordinal)
            )
            signature = hasher.signature(
                fingerprint_text(
                    persona.name, persona.occupation, persona.location.city, persona.bio
                )
            )
            personas.append(persona)
            documents.append(
                to_document(persona, minhash=list(signature), brief_key=brief_key(request.brief))
            )
    return personas, documents


def _requests(n: int, rng: random.Random) -> list[tuple[PersonaRequested, datetime]]:
    """``n / PER_REQUEST`` requests at random times (whole ms) over the last ``SPREAD``."""
    now = datetime.now(UTC).replace(microsecond=0)
    out = []
    for i in range(n // PER_REQUEST):
        ms = rng.randrange(int(SPREAD.total_seconds() * 1000))
        request = PersonaRequested(
            brief=BRIEFS[i % len(BRIEFS)], count=PER_REQUEST, seed=rng.randrange(2**31)
        )
        out.append((request, now - timedelta(milliseconds=ms)))
    return out


def _patient(settings: Settings) -> Settings:
    """``settings`` for seeding and dropping, which wait up to ``SLOW_OPERATION_MS``."""
    return settings.model_copy(update={"mongodb_timeout_ms": SLOW_OPERATION_MS})


async def seed(settings: Settings, n: int) -> list[uuid.UUID]:
    """Store ``n`` personas and count them; returns their ids.

    The next batch is built in a thread while the current one is inserted."""
    client = connect(_patient(settings))
    collections = Collections.of(client[settings.mongodb_database])
    await ensure_indexes(collections)
    store, stats = PersonaWriter(collections), StatsCounter(collections)
    requests = _requests(n, random.Random(n))
    per_batch = SEED_BATCH // PER_REQUEST
    batches = [requests[i : i + per_batch] for i in range(0, len(requests), per_batch)]
    ids: list[uuid.UUID] = []
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TaskProgressColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns) as progress:
            task = progress.add_task(f"seeding N={n:,}", total=n)
            building = asyncio.create_task(asyncio.to_thread(_build, batches[0]))
            for k in range(len(batches)):
                personas, documents = await building
                if k + 1 < len(batches):
                    building = asyncio.create_task(asyncio.to_thread(_build, batches[k + 1]))
                await store.insert_many(documents)
                await stats.apply(personas)
                ids.extend(p.id for p in personas)
                progress.advance(task, len(personas))
    finally:
        await client.close()
    return ids


# --- The API process --------------------------------------------------------------------------


def start_api(settings: Settings, timeout: float = 60) -> tuple[subprocess.Popen[bytes], str]:
    """``persona api`` on a free port, using ``settings``' servers; waits for ``/ready``."""
    env = worker_env(
        settings,
        API_HOST="127.0.0.1",
        # Explicit, so a local .env cannot change what the API signs cursors with.
        CURSOR_SECRET=settings.cursor_secret.get_secret_value(),
        LOG_LEVEL="INFO",  # as in production: one JSON access line per request
        LOG_FORMAT="json",
    )
    process = processes.start_api(env, timeout, stderr=subprocess.DEVNULL)
    return process, f"http://127.0.0.1:{env['API_PORT']}"


def headers() -> dict[str, str]:
    key = os.environ.get(API_KEY_ENV)
    return {API_KEY_HEADER: key} if key else {}


# --- Latency: HTTP and raw, call by call ------------------------------------------------------


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body)


class Client(Protocol):
    async def get(self, path: str, params: Mapping[str, str]) -> Reply: ...


@dataclass
class HttpxClient:
    """One keep-alive ``httpx.AsyncClient``, for comparison."""

    client: httpx.AsyncClient

    async def get(self, path: str, params: Mapping[str, str]) -> Reply:
        response = await self.client.get(path, params=params)
        return Reply(response.status_code, response.content)


class StdlibClient:
    """The client the figures are for: one keep-alive ``http.client`` connection,
    blocking, so nothing else in this process runs meanwhile."""

    def __init__(self, base_url: str) -> None:
        url = urllib.parse.urlsplit(base_url)
        self._connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=60)

    async def get(self, path: str, params: Mapping[str, str]) -> Reply:
        target = f"{path}?{urllib.parse.urlencode(params)}" if params else path
        try:
            return self._get(target)
        except (http.client.RemoteDisconnected, ConnectionError):
            # The server closes connections idle past its keep-alive timeout (uvicorn: 5 s),
            # as between slow cases; like any keep-alive client, reconnect and resend a GET.
            self._connection.close()
            return self._get(target)

    def _get(self, target: str) -> Reply:
        self._connection.request("GET", target, headers=headers())
        response = self._connection.getresponse()
        return Reply(response.status, response.read())

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class Budget:
    """How many calls a case gets: up to ``calls``, or fewer if they take over ``seconds``.

    A read shape the database does not serve from an index costs O(N) on SecantusDB
    (seconds at N = 100,000); the time budget keeps such a run short, and the table
    reports how many calls each row had."""

    calls: int
    seconds: float
    min_calls: int = 8
    warmup_calls: int = 20
    warmup_seconds: float = 2.0


@dataclass
class Prepared:
    """A case made runnable: the i-th HTTP call and the i-th raw query, and their ids."""

    http: Callable[[int], Awaitable[Reply]]
    raw: Callable[[int], Awaitable[Any]]
    http_ids: Callable[[Any], list[str]]
    raw_ids: Callable[[Any], list[str]]
    label: str


@dataclass
class Timing:
    case: str
    calls: int
    http_p50: float
    http_p95: float
    raw_p50: float
    raw_p95: float
    failures: int
    mismatch: bool

    @property
    def added_p50(self) -> float:
        return self.http_p50 - self.raw_p50


def percentiles(samples: list[float]) -> tuple[float, float]:
    """p50 and p95 in ms (the largest sample's neighbourhood when there are few)."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return cuts[49] * 1000, cuts[94] * 1000


async def _raw_page(
    personas: AsyncCollection[Document],
    stats: AsyncCollection[Document],
    case: Case,
    after: str | None,
) -> list[Document]:
    """``PersonaQueries.page``'s reads, without turning documents into personas: where the
    windows start (a first page), then newest first in windows (the relevance window
    too, which the API then ranks)."""
    query = case.where.to_query()
    start = await newest_counted(stats) if after is None else None
    if case.ordering is not Ordering.RELEVANCE:
        return await newest_first(
            personas, query, case.limit + 1, PUBLIC_PROJECTION, below=after, start=start
        )
    # As the API does: the window on the fields that score, then the ranked page whole.
    window = await newest_first(
        personas, query, search.RANKING_WINDOW + 1, search.RANKED_FIELDS, start=start
    )
    shown = set(_page_ids(case, window))
    await by_ids(personas, [d["_id"] for d in window if str(d["_id"]) in shown], PUBLIC_PROJECTION)
    return window


def _page_ids(case: Case, docs: list[Document]) -> list[str]:
    """The ids the API shows for these raw documents (ranking them for relevance)."""
    if case.ordering is Ordering.RELEVANCE:
        window = cast(list[dict[str, Any]], docs[: search.RANKING_WINDOW])
        docs = [doc for _, doc in search.ranked(window, case.where.terms)]
    return [str(d["_id"]) for d in docs[: case.limit]]


async def _deep_position(personas: AsyncCollection[Document], case: Case) -> tuple[str | None, int]:
    """``after`` of page ``case.deep`` (the previous page's last ``sort_key``) and that
    page's number, or of the last page if there are fewer pages (found the way pages
    are read, window by window: a count or a skip would read every document)."""
    if case.deep <= 1 or case.ordering is Ordering.RELEVANCE:
        return None, 1
    wanted = (case.deep - 1) * case.limit
    above = await newest_first(personas, case.where.to_query(), wanted, {"sort_key": 1})
    depth = min(case.deep, len(above) // case.limit + 1)
    if depth <= 1:
        return None, 1
    return str(above[(depth - 1) * case.limit - 1]["sort_key"]), depth


async def _follow(client: Client, case: Case, depth: int) -> dict[str, str]:
    """The query string of page ``depth``, found by following ``next_cursor`` from page 1."""
    params = dict(case.params)
    for _ in range(depth - 1):
        cursor = (await client.get(case.path, params)).json().get("next_cursor")
        if not cursor:
            break
        params["cursor"] = cursor
    return params


async def prepare(
    case: Case,
    client: Client,
    collections: Collections,
    cursors: CursorCodec,
    ids: list[uuid.UUID],
    calls: int,
    rng: random.Random,
) -> Prepared:
    personas = collections.personas
    if case.kind == "get":
        picks = rng.choices(ids, k=calls)
        return Prepared(
            http=lambda i: client.get(case.path.format(id=picks[i]), case.params),
            raw=lambda i: personas.find_one({"_id": picks[i]}, PUBLIC_PROJECTION),
            http_ids=lambda body: [body["id"]],
            raw_ids=lambda doc: [str(doc["_id"])],
            label=case.name,
        )
    if case.kind == "floor":
        return Prepared(
            http=lambda i: client.get(case.path, case.params),
            raw=lambda i: personas.find_one({"_id": ids[i % len(ids)]}, PUBLIC_PROJECTION),
            http_ids=lambda body: [],
            raw_ids=lambda doc: [],
            label=case.name,
        )
    if case.kind == "stats":
        return Prepared(
            http=lambda i: client.get(case.path, case.params),
            raw=lambda i: collections.stats.find_one({"_id": STATS_ID}),
            http_ids=lambda body: [str(body["total"])],
            raw_ids=lambda doc: [str((doc or {}).get("total", 0))],
            label=case.name,
        )
    # A page. For a deep one, following next_cursor page by page would cost ``deep`` O(N)
    # requests on SecantusDB, so the cursor of that page is signed here the way the API
    # signs it (same secret, same query fingerprint); if the API refuses it, it is followed.
    params = dict(case.params)
    after, depth = await _deep_position(personas, case)
    if after is not None:
        params["cursor"] = cursors.encode(after, fingerprint(case.where, case.ordering))
        probe = await client.get(case.path, params)
        if probe.status == 400:
            print(f"{case.name}: the API refused a signed cursor; following next_cursor")
            params = await _follow(client, case, depth)
    label = case.name if depth == case.deep or not case.deep else f"{case.name} (at {depth})"
    return Prepared(
        http=lambda i: client.get(case.path, params),
        raw=lambda i: _raw_page(personas, collections.stats, case, after),
        http_ids=lambda body: [item["id"] for item in body["items"]],
        raw_ids=lambda docs: _page_ids(case, docs),
        label=label,
    )


async def _time(run: Prepared, budget: Budget) -> Timing:
    """Warm up (the first pair also checks both sides return the same ids), then time."""
    started = time.perf_counter()
    first = await run.http(0)
    mismatch = first.is_success and run.http_ids(first.json()) != run.raw_ids(await run.raw(0))
    i = 1
    while i < budget.warmup_calls and time.perf_counter() - started < budget.warmup_seconds:
        await run.http(i)
        await run.raw(i)
        i += 1
    http_s: list[float] = []
    raw_s: list[float] = []
    failures = 0
    started = time.perf_counter()
    while len(http_s) < budget.calls and (
        len(http_s) < budget.min_calls or time.perf_counter() - started < budget.seconds
    ):
        i += 1
        before = time.perf_counter()
        response = await run.http(i)
        between = time.perf_counter()
        await run.raw(i)
        http_s.append(between - before)
        raw_s.append(time.perf_counter() - between)
        failures += not response.is_success
    return Timing(
        run.label, len(http_s), *percentiles(http_s), *percentiles(raw_s), failures, mismatch
    )


async def measure(
    base_url: str, settings: Settings, ids: list[uuid.UUID], budget: Budget
) -> list[Timing]:
    mongo = connect(settings)
    collections = Collections.of(mongo[settings.mongodb_database])
    cursors = CursorCodec(settings.cursor_secret.get_secret_value().encode())
    rng = random.Random(len(ids))
    calls = budget.warmup_calls + budget.calls + 2
    results = []
    stdlib = StdlibClient(base_url)
    try:
        async with httpx.AsyncClient(base_url=base_url, headers=headers(), timeout=60) as client:
            clients: dict[str, Client] = {"httpx": HttpxClient(client), "stdlib": stdlib}
            for case in CASES:
                run = await prepare(
                    case, clients[case.client], collections, cursors, ids, calls, rng
                )
                results.append(await _time(run, budget))
    finally:
        stdlib.close()
        await mongo.close()
    return results


# --- Load: GET /v1/persona/{id} ---------------------------------------------------------------


@dataclass
class Load:
    tool: str
    seconds: float
    requests: int
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


WRK_SCRIPT = """\
local paths = {%s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
"""


def _wrk_ms(text: str, label: str) -> float:
    match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\b", text, re.MULTILINE)
    if not match:
        return float("nan")
    return float(match[1]) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match[2]]


def wrk_load(wrk: str, base_url: str, ids: list[uuid.UUID], seconds: int) -> Load:
    with tempfile.TemporaryDirectory(prefix="persona-bench-wrk-") as tmp:
        script = Path(tmp) / "ids.lua"
        script.write_text(WRK_SCRIPT % ", ".join(f'"{LOAD_PATH.format(id=i)}"' for i in ids))
        command = [wrk, f"-t{LOAD_THREADS}", f"-c{LOAD_CONNECTIONS}", f"-d{seconds}s"]
        command += ["--latency", "-s", str(script)]
        for name, value in headers().items():
            command += ["-H", f"{name}: {value}"]
        out = subprocess.run(
            [*command, base_url], capture_output=True, text=True, check=False
        ).stdout
    done = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", out)
    if not done:
        print(f"could not parse wrk's output:\n{out}")
        return Load("wrk", float(seconds), 0, 0, float("nan"), float("nan"))
    elapsed = float(done[2]) * {"ms": 0.001, "s": 1.0, "m": 60.0}[done[3]]
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out
    )
    errors = (int(non_2xx[1]) if non_2xx else 0) + (
        sum(int(x) for x in sockets.groups()) if sockets else 0
    )
    return Load("wrk", elapsed, int(done[1]), errors, _wrk_ms(out, "50%"), _wrk_ms(out, "99%"))


async def httpx_load(base_url: str, ids: list[uuid.UUID], seconds: int) -> Load:
    limits = httpx.Limits(
        max_connections=LOAD_CONNECTIONS, max_keepalive_connections=LOAD_CONNECTIONS
    )
    latencies: list[float] = []
    errors = 0
    async with httpx.AsyncClient(
        base_url=base_url, headers=headers(), limits=limits, timeout=10
    ) as client:
        started = time.perf_counter()
        deadline = started + seconds

        async def connection(k: int) -> None:
            nonlocal errors
            i = k
            while time.perf_counter() < deadline:
                sent = time.perf_counter()
                try:
                    response = await client.get(LOAD_PATH.format(id=ids[i % len(ids)]))
                    errors += not response.is_success
                except httpx.HTTPError:
                    errors += 1
                latencies.append(time.perf_counter() - sent)
                i += LOAD_CONNECTIONS

        await asyncio.gather(*(connection(k) for k in range(LOAD_CONNECTIONS)))
        elapsed = time.perf_counter() - started
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    return Load("httpx", elapsed, len(latencies), errors, cuts[49] * 1000, cuts[98] * 1000)


async def load(base_url: str, ids: list[uuid.UUID], seconds: int, use_wrk: bool) -> Load:
    picks = random.Random(0).sample(ids, min(LOAD_IDS, len(ids)))
    wrk = shutil.which("wrk") if use_wrk else None
    if wrk:
        return await asyncio.to_thread(wrk_load, wrk, base_url, picks, seconds)
    if use_wrk:
        print("wrk is not on PATH (install it with `apt-get install wrk`); using httpx instead")
    return await httpx_load(base_url, picks, seconds)


# --- Exports: every persona of the store, each format, with the API's memory ---------------

EXPORT_FORMATS = ("jsonl", "csv", "parquet")
RSS_SAMPLE_S = 0.05


@dataclass
class Export:
    fmt: str
    rows: int
    seconds: float
    megabytes: float
    rss_before: float
    rss_peak: float


async def export_all(base_url: str, api_pid: int, fmt: str) -> Export:
    """Download the whole store in ``fmt`` while sampling the API's RSS; rows are counted
    as JSON lines or CSV records (Parquet: from the file's metadata)."""
    import io

    import pyarrow.parquet as pq

    before = peak = rss_mib(api_pid)
    body = bytearray()
    started = time.perf_counter()
    async with (
        httpx.AsyncClient(base_url=base_url, timeout=600, headers=headers()) as http,
        http.stream("GET", "/v1/persona/export", params={"format": fmt}) as response,
    ):
        response.raise_for_status()
        sampled = started
        async for chunk in response.aiter_bytes():
            body += chunk
            if time.perf_counter() - sampled >= RSS_SAMPLE_S:
                peak, sampled = max(peak, rss_mib(api_pid)), time.perf_counter()
    seconds = time.perf_counter() - started
    if fmt == "parquet":
        rows = pq.ParquetFile(io.BytesIO(bytes(body))).metadata.num_rows
    else:
        rows = body.count(b"\n") if fmt == "jsonl" else body.count(b"\r\n") - 1
    return Export(fmt, rows, seconds, len(body) / 2**20, before, max(peak, rss_mib(api_pid)))


# --- One size, and the report -----------------------------------------------------------------


@dataclass
class Run:
    n: int
    timings: list[Timing]
    load: Load
    rss_after_latency: float
    rss_after_load: float
    exports: list[Export]


async def run_size(stack: Stack, n: int, budget: Budget, load_seconds: int, use_wrk: bool) -> Run:
    settings = await fresh_settings(stack)
    ids = await seed(settings, n)
    api, base_url = start_api(settings)
    try:
        timings = await measure(base_url, settings, ids, budget)
        rss_latency = rss_mib(api.pid)
        under_load = await load(base_url, ids, load_seconds, use_wrk)
        rss_load = rss_mib(api.pid)
        exports = [await export_all(base_url, api.pid, fmt) for fmt in EXPORT_FORMATS]
    finally:
        stop(api)
    mongo = connect(_patient(settings))
    try:
        await mongo.drop_database(settings.mongodb_database)
    finally:
        await mongo.close()
    return Run(n, timings, under_load, rss_latency, rss_load, exports)


# Targets as the store grows: stats stay O(1); list and search pages within 2x and 50 ms.
GROWTH_TARGETS = {"stats": 1.2, "page": 2.0}
PAGE_P95_TARGET_MS = 50.0


def growth(small: Run, large: Run) -> None:
    """p95 at the largest size over p95 at the smallest, per row, against its target."""
    print(f"\np95 at N={large.n:,} / N={small.n:,}, and HTTP p95 at N={large.n:,}")
    print(f"{'endpoint':<26} {'HTTP':>6} {'raw':>6} {'target':>7} {'p95 ms':>7}")
    for case, s, b in zip(CASES, small.timings, large.timings, strict=True):
        if case.kind == "floor":
            continue
        target = GROWTH_TARGETS.get(case.kind)
        limit = f"<={target}" if target else "-"
        note = f"  (target p95 <= {PAGE_P95_TARGET_MS:.0f} ms)" if case.kind == "page" else ""
        print(
            f"{case.name:<26} {b.http_p95 / s.http_p95:>6.2f} {b.raw_p95 / s.raw_p95:>6.2f} "
            f"{limit:>7} {b.http_p95:>7.1f}{note}"
        )


def report_size(run: Run, budget: Budget) -> None:
    """One size's table, printed as soon as it is measured."""
    print(
        f"\nN = {run.n:,} personas: sequential calls per case, up to {budget.calls} "
        f"or {budget.seconds:.0f} s (at least {budget.min_calls}); times in ms"
    )
    print(
        f"{'endpoint':<26} {'calls':>5} {'HTTP p50':>9} {'HTTP p95':>9} {'raw p50':>8} "
        f"{'raw p95':>8} {'added p50':>10}"
    )
    for t, case in zip(run.timings, CASES, strict=True):
        note = f"  ({t.failures} non-2xx)" if t.failures else ""
        note += "  (HTTP and raw ids differ)" if t.mismatch else ""
        raw = (
            f"{'-':>8} {'-':>8} {'-':>10}"
            if case.kind == "floor"
            else f"{t.raw_p50:>8.2f} {t.raw_p95:>8.2f} {t.added_p50:>10.2f}"
        )
        print(f"{t.case:<26} {t.calls:>5} {t.http_p50:>9.2f} {t.http_p95:>9.2f} {raw}{note}")
    print(
        "  (target: added p50 <= 1.5 ms. GET /health has no query; its calls alternate with"
        " get-by-id queries like the other rows, so it shows what any request costs here)"
    )
    print(
        f"API RSS: {run.rss_after_latency:.0f} MiB after the latency cases, "
        f"{run.rss_after_load:.0f} MiB after the load test (target <= 256 MiB)"
    )
    print(f"GET /v1/persona/export of all {run.n:,} (API RSS sampled every {RSS_SAMPLE_S} s)")
    print(
        f"{'format':>8} {'rows':>8} {'seconds':>8} {'rows/s':>8} {'MiB':>7} "
        f"{'RSS before':>11} {'RSS peak':>9} {'peak/before':>12}"
    )
    for e in run.exports:
        print(
            f"{e.fmt:>8} {e.rows:>8,} {e.seconds:>8.1f} {e.rows / e.seconds:>8.0f} "
            f"{e.megabytes:>7.1f} {e.rss_before:>11.0f} {e.rss_peak:>9.0f} "
            f"{e.rss_peak / e.rss_before:>12.2f}"
        )


def report(runs: list[Run]) -> None:
    """What compares the sizes: growth per row, and the load test."""
    if len(runs) > 1:
        growth(runs[0], runs[-1])
    print(
        f"\nGET {LOAD_PATH} under load: {LOAD_CONNECTIONS} connections, "
        f"{min(LOAD_IDS, min(r.n for r in runs))} rotating ids"
    )
    print(
        f"{'N':>7} {'tool':>6} {'seconds':>8} {'requests':>9} {'req/s':>8} {'errors':>7} "
        f"{'p50 ms':>7} {'p99 ms':>7}"
    )
    for run in runs:
        ld = run.load
        print(
            f"{run.n:>7,} {ld.tool:>6} {ld.seconds:>8.1f} {ld.requests:>9} {ld.rate:>8.0f} "
            f"{ld.errors:>7} {ld.p50_ms:>7.2f} {ld.p99_ms:>7.2f}"
        )
    if any(run.load.tool == "httpx" for run in runs):
        print("  (httpx: the Python client shares the CPU and limits the rate; wrk does not)")
    print("  (errors: non-2xx responses plus socket errors and timeouts)")


async def main(
    quick: bool, wrk_seconds: int | None, case_seconds: float | None, use_wrk: bool
) -> None:
    sizes = (1_000, 5_000) if quick else (1_000, 20_000, 100_000)
    budget = Budget(
        calls=100 if quick else 300,
        seconds=case_seconds if case_seconds is not None else (6 if quick else 15),
        min_calls=6 if quick else 8,
    )
    seconds = wrk_seconds if wrk_seconds is not None else (10 if quick else 30)
    logger.remove()  # this process's own INFO lines (topic creation) are not figures
    logger.add(sys.stderr, level="WARNING")
    with embedded_stack() as stack:
        runs = []
        for n in sizes:
            runs.append(await run_size(stack, n, budget, seconds, use_wrk))
            report_size(runs[-1], budget)
    report(runs)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller runs (about three minutes)")
    parser.add_argument(
        "--wrk-seconds",
        type=int,
        default=None,
        help="duration of the load test (default 30; 10 with --quick)",
    )
    parser.add_argument(
        "--case-seconds",
        type=float,
        default=None,
        help="time budget of one case's timed calls (default 15; 6 with --quick)",
    )
    parser.add_argument(
        "--no-wrk", action="store_true", help="use the httpx load loop even if wrk is on PATH"
    )
    args = parser.parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    asyncio.run(main(args.quick, args.wrk_seconds, args.case_seconds, not args.no_wrk))
