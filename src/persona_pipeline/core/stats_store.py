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


class Stats(BaseModel):
    total: int = Field(description="Personas stored.")
    by_country: dict[str, int]
    by_age_bucket: dict[str, int]
    top_occupations: list[OccupationCount]
    by_model: list[ModelUsage]
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


def _counter(dim: str, key: str, inc: dict[str, int]) -> UpdateOne:
    return UpdateOne(
        {"_id": f"{dim}:{key}"},
        {"$setOnInsert": {"dim": dim, "key": key}, "$inc": inc},
        upsert=True,
    )


class StatsStore:
    def __init__(self, collections: Collections) -> None:
        self._stats = collections.stats

    async def record(self, persona: Persona) -> None:
        """Count a newly inserted persona in every dimension, in one round trip."""
        usage = persona.usage
        model_key = f"{persona.generator}/{persona.model}"
        await self._stats.bulk_write(
            [
                _counter(TOTAL, TOTAL, {"n": 1}),
                _counter(COUNTRY, persona.location.country, {"n": 1}),
                _counter(AGE, age_bucket(persona.age), {"n": 1}),
                _counter(OCCUPATION, persona.occupation, {"n": 1}),
                _counter(
                    MODEL,
                    model_key,
                    {"n": 1, "prompt": usage.prompt_tokens, "completion": usage.completion_tokens},
                ),
            ],
            ordered=False,
        )

    async def snapshot(self) -> Stats:
        small = await self._stats.find({"dim": {"$in": [TOTAL, COUNTRY, AGE, MODEL]}}).to_list()
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
        )
        for d in small
        if d["dim"] == MODEL
    ]
    prompt = sum(m.prompt_tokens for m in models)
    completion = sum(m.completion_tokens for m in models)
    buckets = by(AGE)
    return Stats(
        total=by(TOTAL).get(TOTAL, 0),
        by_country=by(COUNTRY),
        by_age_bucket={b: buckets[b] for b in sorted(buckets)},
        top_occupations=[OccupationCount(occupation=d["key"], count=d["n"]) for d in top],
        by_model=models,
        prompt_tokens=prompt,
        completion_tokens=completion,
        total_tokens=prompt + completion,
    )
