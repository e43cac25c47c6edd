"""The shards of large requests in MongoDB: who generates each one, and what it stored.

The document is ``persona_infra.shard_documents``. A worker claims a shard with a
lease it renews while it generates, so a copy of the shard's event (a redelivery, a
re-drive) is skipped while the lease lives and taken over once it lapsed, by a worker
that then generates only what is missing.
Claims and the move to ``done`` are conditional updates, atomic on every MongoDB-wire
server; the worker whose update marked the shard done is the one that counts it.
"""

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

from persona_contracts import Persona, ShardRequested, TokenUsage
from persona_contracts.events import utcnow
from persona_infra.mongo import Collections, insert_new
from persona_infra.shard_documents import DONE, PENDING, RUNNING, shard_id


@dataclass(frozen=True, slots=True)
class ShardTotals:
    """What a request's shards stored and spent, summed: its settlement."""

    done: int
    stored: int
    failures: dict[int, str]
    retried: int
    usage: TokenUsage
    cost_usd: float


class ShardWriter:
    def __init__(self, collections: Collections) -> None:
        self._shards = collections.shards

    async def create(self, parts: Iterable[ShardRequested]) -> None:
        """Record the request's shards as ``pending``; those recorded already stay as they are."""
        now = utcnow()
        documents = [
            {
                "_id": shard_id(part.request.request_id, part.shard),
                "request_id": part.request.request_id,
                "shard": part.shard,
                "first": part.first,
                "end": part.end,
                "status": PENDING,
                "created_at": now,
            }
            for part in parts
        ]
        await insert_new(self._shards, documents)

    async def undone(self, request_id: uuid.UUID) -> set[int]:
        cursor = self._shards.find(
            {"request_id": request_id, "status": {"$ne": DONE}}, {"shard": 1}
        )
        return {cast(int, doc["shard"]) async for doc in cursor}

    async def claim(self, request_id: uuid.UUID, shard: int, owner: str, lease_s: float) -> bool:
        """Take the shard for ``lease_s`` unless it is done or another worker's lease lives."""
        now = utcnow()
        taken = await self._shards.update_one(
            {
                "_id": shard_id(request_id, shard),
                "status": {"$ne": DONE},
                "$or": [{"lease_until": {"$lt": now}}, {"owner": {"$in": [None, owner]}}],
            },
            {
                "$set": {
                    "status": RUNNING,
                    "owner": owner,
                    "lease_until": now + timedelta(seconds=lease_s),
                    "updated_at": now,
                }
            },
        )
        return taken.modified_count == 1

    async def renew(self, request_id: uuid.UUID, shard: int, owner: str, lease_s: float) -> None:
        now = utcnow()
        await self._shards.update_one(
            {"_id": shard_id(request_id, shard), "owner": owner, "status": RUNNING},
            {"$set": {"lease_until": now + timedelta(seconds=lease_s), "updated_at": now}},
        )

    async def finish(
        self,
        request_id: uuid.UUID,
        shard: int,
        personas: Mapping[int, Persona],
        failures: Mapping[int, str],
        retries: int,
    ) -> bool:
        """Mark the shard done with its sums; ``True`` for the call that marked it (which
        alone counts its personas in the statistics)."""
        stored = list(personas.values())
        usage = sum((p.usage for p in stored), TokenUsage())
        now = utcnow()
        marked = await self._shards.update_one(
            {"_id": shard_id(request_id, shard), "status": {"$ne": DONE}},
            {
                "$set": {
                    "status": DONE,
                    "stored": len(stored),
                    "failures": {str(k): v for k, v in sorted(failures.items())},
                    "retried": retries,
                    "prompt_tokens": usage.prompt_tokens,
                    "completion_tokens": usage.completion_tokens,
                    "cached_prompt_tokens": usage.cached_prompt_tokens,
                    "cost_usd": round(sum(p.cost_usd for p in stored), 8),
                    "updated_at": now,
                    "finished_at": now,
                }
            },
        )
        return marked.modified_count == 1

    async def totals(self, request_id: uuid.UUID) -> ShardTotals:
        """The sums of the request's finished shards (a few hundred small documents)."""
        done = stored = retried = prompt = completion = cached = 0
        failures: dict[int, str] = {}
        cost = 0.0
        async for raw in self._shards.find({"request_id": request_id, "status": DONE}):
            doc = cast(dict[str, Any], raw)
            done += 1
            stored += int(doc.get("stored", 0))
            retried += int(doc.get("retried", 0))
            prompt += int(doc.get("prompt_tokens", 0))
            completion += int(doc.get("completion_tokens", 0))
            cached += int(doc.get("cached_prompt_tokens", 0))
            cost += float(doc.get("cost_usd", 0.0))
            failures |= {int(k): str(v) for k, v in doc.get("failures", {}).items()}
        usage = TokenUsage(
            prompt_tokens=prompt, completion_tokens=completion, cached_prompt_tokens=cached
        )
        return ShardTotals(done, stored, failures, retried, usage, round(cost, 8))
