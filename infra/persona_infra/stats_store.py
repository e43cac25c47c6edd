"""Persona statistics kept in one counter document, so reading them never scans personas.

Counting happens once per request delivery, not once per persona: the request
document records which ordinals are counted (``RequestStore.finish``) and the
personas new to the statistics are applied with a single ``$inc``. The record
is written *before* the increment, so a crash between the two can only
under-count; a redelivery never counts a persona twice.
"""

from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from typing import Any

from pydantic import BaseModel, Field

from persona_contracts import Persona
from persona_infra.documents import from_document
from persona_infra.mongo import Collections

DAYS = 30
AGE_BUCKETS = ((16, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 100))
TOP_OCCUPATIONS = 10
STATS_ID = "personas"


def age_bucket(age: int) -> str:
    for low, high in AGE_BUCKETS:
        if low <= age <= high:
            return f"{low}-{high}" if high < 100 else f"{low}+"
    raise ValueError(f"age {age} is outside every bucket")


def _escape(key: str) -> str:
    """Map keys may come from user input: keep ``.`` and a leading ``$`` out of field paths."""
    key = key.replace(".", "\uff0e")
    return "\uff04" + key[1:] if key.startswith("$") else key


def _unescape(key: str) -> str:
    key = key.replace("\uff0e", ".")
    return "$" + key[1:] if key.startswith("\uff04") else key


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


def increments(personas: Iterable[Persona]) -> dict[str, int | float]:
    """The ``$inc`` that counts ``personas`` in every dimension."""
    inc: Counter[str] = Counter()
    cost: dict[str, float] = {}
    for persona in personas:
        model = _escape(f"{persona.generator}/{persona.model}")
        inc["total"] += 1
        inc[f"country.{_escape(persona.location.country)}"] += 1
        inc[f"age.{age_bucket(persona.age)}"] += 1
        inc[f"day.{persona.created_at.astimezone(UTC).date().isoformat()}"] += 1
        inc[f"occupation.{_escape(persona.occupation)}"] += 1
        inc[f"model.{model}.personas"] += 1
        inc[f"model.{model}.prompt_tokens"] += persona.usage.prompt_tokens
        inc[f"model.{model}.completion_tokens"] += persona.usage.completion_tokens
        key = f"model.{model}.cost_usd"
        cost[key] = cost.get(key, 0.0) + persona.cost_usd
    return {**inc, **cost}


class StatsStore:
    def __init__(self, collections: Collections) -> None:
        self._stats = collections.stats
        self._personas = collections.personas
        self._requests = collections.requests

    async def apply(
        self, new: Iterable[Persona], failed_delta: int = 0, near_duplicates: int = 0
    ) -> None:
        """Count personas new to the statistics and a request's quality figures: one write."""
        inc = increments(new)
        for name, delta in (
            ("failed_ordinals", failed_delta),
            ("near_duplicates", near_duplicates),
        ):
            if delta:
                inc[name] = delta
        if inc:
            await self._stats.update_one({"_id": STATS_ID}, {"$inc": inc}, upsert=True)

    async def snapshot(self, today: date | None = None) -> Stats:
        doc = await self._stats.find_one({"_id": STATS_ID}) or {}
        return parse_stats(doc, today or datetime.now(UTC).date())

    async def rebuild(self) -> Stats:
        """Recount everything from the personas and requests (reads them all: an admin job).

        Run it when the counters are in doubt, e.g. after a crash between settling a
        request and counting it; it agrees with the incremental figures otherwise."""
        totals: dict[str, float] = {"near_duplicates": 0, "failed_ordinals": 0}
        async for doc in self._personas.find({}, {"minhash": 0, "search_terms": 0}):
            totals["near_duplicates"] += int(str(doc.get("near_duplicates", 0)))
            for key, value in increments([from_document(doc)]).items():
                totals[key] = totals.get(key, 0) + value
        async for request in self._requests.find({}, {"failed": 1}):
            totals["failed_ordinals"] += int(str(request.get("failed", 0)))
        document = _nest(totals)
        await self._stats.replace_one({"_id": STATS_ID}, document, upsert=True)
        return await self.snapshot()


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return {_unescape(k): v for k, v in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))}


def _nest(flat: dict[str, float]) -> dict[str, Any]:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``: the document an ``$inc`` of ``flat`` would build."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested


def _last_days(per_day: dict[str, int], today: date) -> dict[str, int]:
    days = [(today - timedelta(days=n)).isoformat() for n in range(DAYS - 1, -1, -1)]
    return {day: per_day.get(day, 0) for day in days}


def parse_stats(doc: dict[str, Any], today: date) -> Stats:
    models = [
        ModelUsage(
            generator=_unescape(key).split("/", 1)[0],
            model=_unescape(key).split("/", 1)[1],
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
