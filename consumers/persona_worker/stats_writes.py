"""The worker's counting of personas into the statistics document: one ``$inc`` per
request delivery (see ``persona_infra.stats_document``)."""

from collections.abc import Sequence
from typing import Any

from persona_contracts import Persona
from persona_infra.mongo import Collections
from persona_infra.stats_document import NEWEST, STATS_ID, increments, newest_of


class StatsCounter:
    def __init__(self, collections: Collections) -> None:
        self._stats = collections.stats

    async def apply(
        self, new: Sequence[Persona], failed_delta: int = 0, near_duplicates: int = 0
    ) -> None:
        """Count personas new to the statistics and a request's quality figures: one write."""
        inc = increments(new)
        for name, delta in (
            ("failed_ordinals", failed_delta),
            ("near_duplicates", near_duplicates),
        ):
            if delta:
                inc[name] = delta
        if not inc:
            return
        update: dict[str, Any] = {"$inc": inc}
        if newest := newest_of(new):
            update["$max"] = {NEWEST: newest}
        await self._stats.update_one({"_id": STATS_ID}, update, upsert=True)
