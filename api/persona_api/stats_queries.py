"""The API's statistics: read from the one counter document (never a scan of the personas),
recounted from scratch by the admin route when the counters are in doubt, and counted the
same way for the personas of one request (``of_request``)."""

import uuid
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from persona_contracts import Persona
from persona_contracts.persona import PlanCell
from persona_infra.documents import PUBLIC_PROJECTION, from_document
from persona_infra.mongo import Collections
from persona_infra.stats_document import NEWEST, STATS_ID, increments, nest, unescape

DAYS = 30
TOP_OCCUPATIONS = 10


class OccupationCount(BaseModel):
    occupation: str
    count: int


class ModelUsage(BaseModel):
    generator: str
    model: str
    personas: int
    prompt_tokens: int
    completion_tokens: int
    cost_usd: float


class Stats(BaseModel):
    total: int = Field(description="Personas stored.")
    by_country: dict[str, int]
    by_age_bucket: dict[str, int]
    by_age_and_gender: dict[str, dict[str, int]] = Field(
        description="Age bucket -> gender -> personas: the population pyramid. Counted for "
        "personas stored since it was added; `POST /v1/admin/stats/rebuild` fills it for "
        "older ones."
    )
    top_occupations: list[OccupationCount]
    by_model: list[ModelUsage]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float
    personas_per_day: dict[str, int] = Field(
        description=f"Personas created per UTC day, the last {DAYS} days, oldest first."
    )
    near_duplicates_caught: int = Field(description="Near-duplicates detected and regenerated.")
    failed_ordinals: int = Field(description="Personas currently failed in their requests.")


COUNTED_PROJECTION = PUBLIC_PROJECTION | {"near_duplicates": 1}
COUNTED_BATCH = 500
"""Documents per cursor batch while counting: the driver's own batches fill 16 MiB, which
decoded held about 75 MiB of a 10,000-persona request in the API at once (measured)."""


class _Tally:
    """Counts personas one stored document at a time, as the worker's ``$inc`` would."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = {"near_duplicates": 0}
        self.newest = ""

    def add(self, doc: dict[str, Any]) -> Persona:
        persona = from_document(doc)
        self.totals["near_duplicates"] += int(str(doc.get("near_duplicates", 0)))
        self.newest = max(self.newest, str(doc["sort_key"]))
        for key, value in increments([persona]).items():
            self.totals[key] = self.totals.get(key, 0) + value
        return persona


class StatsQueries:
    def __init__(self, collections: Collections) -> None:
        self._stats = collections.stats
        self._personas = collections.personas
        self._requests = collections.requests

    async def snapshot(self, today: date | None = None) -> Stats:
        doc = await self._stats.find_one({"_id": STATS_ID}) or {}
        return parse_stats(doc, today or datetime.now(UTC).date())

    async def rebuild(self) -> Stats:
        """Recount everything from the personas and requests (reads them all: an admin job).

        Run it when the counters are in doubt, e.g. after a crash between settling a
        request and counting it; it agrees with the incremental figures otherwise."""
        tally = _Tally()
        async for doc in self._personas.find({}, COUNTED_PROJECTION, batch_size=COUNTED_BATCH):
            tally.add(doc)
        failed = 0
        async for request in self._requests.find({}, {"failed": 1}):
            failed += int(str(request.get("failed", 0)))
        document = nest(tally.totals | {"failed_ordinals": failed})
        if tally.newest:
            document[NEWEST] = tally.newest
        await self._stats.replace_one({"_id": STATS_ID}, document, upsert=True)
        return await self.snapshot()

    async def of_request(
        self, request_id: uuid.UUID, failed: int, today: date | None = None
    ) -> tuple[Stats, list[PlanCell]]:
        """The statistics of one request's personas (read by the ``(request_id, ordinal)``
        index: at most a request's 10,000), and the plan cell each was drawn from."""
        tally, cells = _Tally(), []
        mine = self._personas.find(
            {"request_id": request_id}, COUNTED_PROJECTION, batch_size=COUNTED_BATCH
        )
        async for doc in mine:
            if (cell := tally.add(doc).plan_cell) is not None:
                cells.append(cell)
        stats = parse_stats(
            nest(tally.totals | {"failed_ordinals": failed}), today or datetime.now(UTC).date()
        )
        return stats, cells


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return {unescape(k): v for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _last_days(per_day: dict[str, int], today: date) -> dict[str, int]:
    days = [(today - timedelta(days=n)).isoformat() for n in range(DAYS - 1, -1, -1)]
    return {day: per_day.get(day, 0) for day in days}


def parse_stats(doc: dict[str, Any], today: date) -> Stats:
    models = [
        ModelUsage(
            generator=unescape(key).split("/", 1)[0],
            model=unescape(key).split("/", 1)[1],
            personas=m.get("personas", 0),
            prompt_tokens=m.get("prompt_tokens", 0),
            completion_tokens=m.get("completion_tokens", 0),
            cost_usd=round(m.get("cost_usd", 0.0), 6),
        )
        for key, m in sorted(doc.get("model", {}).items())
    ]
    occupations = _ranked(doc.get("occupation", {}))
    prompt = sum(m.prompt_tokens for m in models)
    completion = sum(m.completion_tokens for m in models)
    return Stats(
        total=doc.get("total", 0),
        by_country=_ranked(doc.get("country", {})),
        by_age_bucket=dict(sorted(doc.get("age", {}).items())),
        by_age_and_gender={
            bucket: {unescape(g): n for g, n in sorted(genders.items())}
            for bucket, genders in sorted(doc.get("age_gender", {}).items())
        },
        top_occupations=[
            OccupationCount(occupation=k, count=v)
            for k, v in list(occupations.items())[:TOP_OCCUPATIONS]
        ],
        by_model=models,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cost_usd=round(sum(m.cost_usd for m in models), 6),
        personas_per_day=_last_days(doc.get("day", {}), today),
        near_duplicates_caught=doc.get("near_duplicates", 0),
        failed_ordinals=doc.get("failed_ordinals", 0),
    )
