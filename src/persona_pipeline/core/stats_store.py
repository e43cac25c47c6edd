"""Persona statistics kept as counter documents, so reading them never scans personas.

Each stored persona increments one small document per dimension value
(``country:Germany``, ``age:25-34`` ...). Counters are bumped only when a
persona is newly inserted, which keeps them exact under redelivery.
"""

from typing import Any

from pydantic import BaseModel, Field
from pymongo import DESCENDING, UpdateOne

from persona_pipeline.contracts import Persona
from persona_pipeline.core.mongo import Collections

AGE_BUCKETS = ((16, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 100))
TOP_OCCUPATIONS = 10
TOTAL, COUNTRY, AGE, OCCUPATION, MODEL = "total", "country", "age", "occupation", "model"
QUALITY = "quality"
NEAR_DUPLICATES, FAILED_ORDINALS = "near_duplicates", "failed_ordinals"


def age_bucket(age: int) -> str:
    for low, high in AGE_BUCKETS:
        if low <= age <= high:
            return f"{low}-{high}" if high < 100 else f"{low}+"
    raise ValueError(f"age {age} is outside every bucket")


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
    near_duplicates_caught: int = Field(description="Near-duplicates detected and regenerated.")
    failed_ordinals: int = Field(description="Personas currently failed in their requests.")


def _counter(dim: str, key: str, inc: dict[str, int | float]) -> UpdateOne:
    return UpdateOne(
        {"_id": f"{dim}:{key}"},
        {"$setOnInsert": {"dim": dim, "key": key}, "$inc": inc},
        upsert=True,
    )


class StatsStore:
    def __init__(self, collections: Collections) -> None:
        self._stats = collections.stats

    async def record(self, persona: Persona, near_duplicates: int = 0) -> None:
        """Count a newly inserted persona in every dimension, in one round trip."""
        usage = persona.usage
        model_key = f"{persona.generator}/{persona.model}"
        quality = (
            [_counter(QUALITY, NEAR_DUPLICATES, {"n": near_duplicates})] if near_duplicates else []
        )
        await self._stats.bulk_write(
            [
                *quality,
                _counter(TOTAL, TOTAL, {"n": 1}),
                _counter(COUNTRY, persona.location.country, {"n": 1}),
                _counter(AGE, age_bucket(persona.age), {"n": 1}),
                _counter(OCCUPATION, persona.occupation, {"n": 1}),
                _counter(
                    MODEL,
                    model_key,
                    {
                        "n": 1,
                        "prompt": usage.prompt_tokens,
                        "completion": usage.completion_tokens,
                        "cost": persona.cost_usd,
                    },
                ),
            ],
            ordered=False,
        )

    async def record_failed(self, delta: int) -> None:
        """Adjust the failed-ordinals count by what a request's settlement changed."""
        if delta:
            await self._stats.bulk_write([_counter(QUALITY, FAILED_ORDINALS, {"n": delta})])

    async def snapshot(self) -> Stats:
        dims = [TOTAL, COUNTRY, AGE, MODEL, QUALITY]
        small = await self._stats.find({"dim": {"$in": dims}}).to_list()
        top = await (
            self._stats.find({"dim": OCCUPATION}).sort("n", DESCENDING).limit(TOP_OCCUPATIONS)
        ).to_list()
        return _assemble(small, top)


def _assemble(small: list[dict[str, Any]], top: list[dict[str, Any]]) -> Stats:
    def by(dim: str) -> dict[str, int]:
        rows = sorted((d for d in small if d["dim"] == dim), key=lambda d: (-d["n"], d["key"]))
        return {d["key"]: d["n"] for d in rows}

    models = [
        ModelUsage(
            generator=d["key"].split("/", 1)[0],
            model=d["key"].split("/", 1)[1],
            personas=d["n"],
            prompt_tokens=d.get("prompt", 0),
            completion_tokens=d.get("completion", 0),
            cost_usd=round(d.get("cost", 0.0), 6),
        )
        for d in small
        if d["dim"] == MODEL
    ]
    prompt = sum(m.prompt_tokens for m in models)
    completion = sum(m.completion_tokens for m in models)
    buckets = by(AGE)
    quality = by(QUALITY)
    return Stats(
        total=by(TOTAL).get(TOTAL, 0),
        by_country=by(COUNTRY),
        by_age_bucket={b: buckets[b] for b in sorted(buckets)},
        top_occupations=[OccupationCount(occupation=d["key"], count=d["n"]) for d in top],
        by_model=models,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
        cost_usd=round(sum(m.cost_usd for m in models), 6),
        near_duplicates_caught=quality.get(NEAR_DUPLICATES, 0),
        failed_ordinals=quality.get(FAILED_ORDINALS, 0),
    )
