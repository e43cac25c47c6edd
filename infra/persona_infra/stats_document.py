"""Persona statistics kept in one counter document, so reading them never scans personas.

The document's shape is here, where the worker's counting (``persona_worker.stats_writes``)
and the API's reading and recount (``persona_api.stats_queries``) both find it.
Counting happens once per request delivery, not once per persona: the request
document records which ordinals are counted (``RequestWriter.finish``) and the
personas new to the statistics are applied with a single ``$inc``. The record
is written *before* the increment, so a crash between the two can only
under-count; a redelivery never counts a persona twice.

Besides the counts it keeps ``NEWEST``, the ``sort_key`` of the newest persona
counted: newest-first reads start their windows there rather than at "now"
(``persona_infra.newest_first``), which spares a store idle for days a slow first page.
"""

from collections import Counter
from collections.abc import Iterable, Sequence
from datetime import UTC
from typing import Any

from pymongo.asynchronous.collection import AsyncCollection

from persona_contracts import Persona
from persona_infra.documents import sort_key

STATS_ID = "personas"
NEWEST = "newest"
AGE_BUCKETS = ((16, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 100))


def age_bucket(age: int) -> str:
    for low, high in AGE_BUCKETS:
        if low <= age <= high:
            return f"{low}-{high}" if high < 100 else f"{low}+"
    raise ValueError(f"age {age} is outside every bucket")


def escape(key: str) -> str:
    """Map keys may come from user input: keep ``.`` and a leading ``$`` out of field paths."""
    key = key.replace(".", "\uff0e")
    return "\uff04" + key[1:] if key.startswith("$") else key


def unescape(key: str) -> str:
    key = key.replace("\uff0e", ".")
    return "$" + key[1:] if key.startswith("\uff04") else key


def increments(personas: Iterable[Persona]) -> dict[str, int | float]:
    """The ``$inc`` that counts ``personas`` in every dimension."""
    inc: Counter[str] = Counter()
    cost: dict[str, float] = {}
    for persona in personas:
        model = escape(f"{persona.generator}/{persona.model}")
        inc["total"] += 1
        inc[f"country.{escape(persona.location.country)}"] += 1
        inc[f"age.{age_bucket(persona.age)}"] += 1
        inc[f"age_gender.{age_bucket(persona.age)}.{escape(persona.gender)}"] += 1
        inc[f"day.{persona.created_at.astimezone(UTC).date().isoformat()}"] += 1
        inc[f"occupation.{escape(persona.occupation)}"] += 1
        inc[f"model.{model}.personas"] += 1
        inc[f"model.{model}.prompt_tokens"] += persona.usage.prompt_tokens
        inc[f"model.{model}.completion_tokens"] += persona.usage.completion_tokens
        key = f"model.{model}.cost_usd"
        cost[key] = cost.get(key, 0.0) + persona.cost_usd
    return {**inc, **cost}


def newest_of(personas: Sequence[Persona]) -> str | None:
    """The ``$max`` of ``NEWEST`` that counting ``personas`` sets."""
    return max((sort_key(persona) for persona in personas), default=None)


async def newest_counted(stats: AsyncCollection[Any]) -> str | None:
    """The ``sort_key`` of the newest persona counted, if any is (one small read)."""
    doc = await stats.find_one({"_id": STATS_ID}, {NEWEST: 1})
    newest = (doc or {}).get(NEWEST)
    return newest if isinstance(newest, str) else None


def nest(flat: dict[str, float]) -> dict[str, Any]:
    """``{"a.b": 1}`` → ``{"a": {"b": 1}}``: the document an ``$inc`` of ``flat`` would build."""
    nested: dict[str, Any] = {}
    for path, value in flat.items():
        *parents, leaf = path.split(".")
        node = nested
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return nested
