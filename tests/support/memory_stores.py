"""In-memory stand-ins for the stores the generation use case writes to
(``consumers/ports.py``), for fast unit tests of its rules.

They keep the rules the MongoDB stores enforce that the use case relies on: one persona
per ``(request_id, ordinal)``, a request refusing a delivery once cancelled or reused
for other content, a plan kept once, each persona counted in the statistics once.
The integration tests prove the MongoDB stores keep the same rules.
"""

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from persona_contracts import (
    GenerationMode,
    Persona,
    PersonaCreated,
    PersonaFailed,
    PersonaRequested,
    RequestState,
    ShardRequested,
    TokenUsage,
)
from persona_contracts.plan import AudiencePlan, Planning
from persona_infra.documents import brief_key, from_document
from persona_infra.shard_documents import DONE, PENDING, RUNNING
from persona_worker.request_writes import (
    NotStartedError,
    RequestConflictError,
    Settlement,
    final_state,
)
from persona_worker.shard_writes import ShardTotals


class MemoryPersonas:
    def __init__(self) -> None:
        self.documents: dict[tuple[uuid.UUID, int], dict[str, Any]] = {}

    async def insert_many(self, documents: Sequence[dict[str, Any]]) -> list[bool]:
        inserted = []
        for document in documents:
            key = (document["request_id"], document["ordinal"])
            inserted.append(key not in self.documents)
            self.documents.setdefault(key, document)
        return inserted

    async def for_request(
        self, request_id: uuid.UUID, ordinals: range | None = None
    ) -> dict[int, Persona]:
        return {
            ordinal: from_document(doc)
            for (owner, ordinal), doc in self.documents.items()
            if owner == request_id and (ordinals is None or ordinal in ordinals)
        }

    async def recent_signatures(self, brief: str, limit: int) -> list[tuple[str, list[int]]]:
        same = [d for d in self.documents.values() if d.get("brief_key") == brief_key(brief)]
        newest = sorted(same, key=lambda d: d["sort_key"], reverse=True)[:limit]
        return [(str(d["_id"]), list(d["minhash"])) for d in newest if d.get("minhash")]

    async def get(self, persona_id: uuid.UUID) -> Persona | None:
        found = [d for d in self.documents.values() if d["_id"] == persona_id]
        return from_document(found[0]) if found else None


@dataclass
class _Request:
    content_hash: str
    status: RequestState = RequestState.GENERATING
    plan: AudiencePlan | None = None
    cancel_requested: bool = False
    counted: set[int] = field(default_factory=set)
    failed: int = 0
    heartbeats: int = 0
    error: str | None = None
    shards: int | None = None
    settled: int = 0


class MemoryRequests:
    def __init__(self) -> None:
        self.requests: dict[uuid.UUID, _Request] = {}

    async def mark_generating(
        self, request: PersonaRequested, generator: str, mode: GenerationMode
    ) -> AudiencePlan | None:
        doc = self.requests.setdefault(request.request_id, _Request(request.content_hash()))
        if doc.content_hash != request.content_hash():
            raise RequestConflictError("other content under this request_id", unqueued=False)
        if doc.status is RequestState.CANCELLED or doc.cancel_requested:
            raise NotStartedError(doc.status, cancel_requested=doc.cancel_requested)
        doc.status = RequestState.GENERATING
        return doc.plan

    def cancel(self, request: PersonaRequested) -> None:
        """What ``POST /v1/requests/{id}/cancel`` records."""
        doc = self.requests.setdefault(request.request_id, _Request(request.content_hash()))
        doc.cancel_requested = True

    async def keep_plan(self, request_id: uuid.UUID, plan: AudiencePlan) -> AudiencePlan:
        doc = self.requests[request_id]
        doc.plan = doc.plan or plan
        return doc.plan

    async def plan_of(self, request_id: uuid.UUID) -> AudiencePlan | None:
        return self.requests[request_id].plan

    async def heartbeat(self, request_id: uuid.UUID) -> None:
        self.requests[request_id].heartbeats += 1

    async def cancel_requested(self, request_id: uuid.UUID) -> bool:
        return self.requests[request_id].cancel_requested

    async def reject(self, request_id: uuid.UUID, reason: str) -> None:
        doc = self.requests[request_id]
        doc.status, doc.error = RequestState.FAILED, reason

    async def finish(
        self,
        request: PersonaRequested,
        personas: Mapping[int, Persona],
        failures: dict[int, str],
        retries: int,
        planning: Planning,
        *,
        cancelled: bool = False,
    ) -> Settlement:
        doc = self.requests[request.request_id]
        state = final_state(request.count, len(personas), cancelled=cancelled)
        new = [p for o, p in sorted(personas.items()) if o not in doc.counted]
        settlement = Settlement(state, new, len(failures) - doc.failed)
        doc.status, doc.failed = state, len(failures)
        doc.counted |= set(personas)
        return settlement

    async def mark_sharded(self, request_id: uuid.UUID, shards: int) -> None:
        self.requests[request_id].shards = shards

    async def finish_sharded(
        self,
        request: PersonaRequested,
        totals: ShardTotals,
        planning: Planning,
        *,
        cancelled: bool = False,
    ) -> RequestState:
        doc = self.requests[request.request_id]
        state = final_state(request.count, totals.stored, cancelled=cancelled)
        doc.status, doc.failed = state, len(totals.failures)
        doc.settled += 1
        return state


@dataclass
class _Shard:
    first: int
    end: int
    status: str = PENDING
    owner: str | None = None
    lease_until: float = 0.0
    stored: int = 0
    failures: dict[int, str] = field(default_factory=dict)
    usage: TokenUsage = field(default_factory=TokenUsage)
    cost_usd: float = 0.0
    retried: int = 0


class MemoryShards:
    """Shards with leases on a clock the test moves (``now``)."""

    def __init__(self) -> None:
        self.shards: dict[tuple[uuid.UUID, int], _Shard] = {}
        self.now = 0.0

    async def create(self, parts: Iterable[ShardRequested]) -> None:
        for part in parts:
            key = (part.request.request_id, part.shard)
            self.shards.setdefault(key, _Shard(part.first, part.end))

    async def undone(self, request_id: uuid.UUID) -> set[int]:
        return {k for (r, k), s in self.shards.items() if r == request_id and s.status != DONE}

    async def claim(self, request_id: uuid.UUID, shard: int, owner: str, lease_s: float) -> bool:
        doc = self.shards[(request_id, shard)]
        free = doc.owner in (None, owner) or doc.lease_until < self.now
        if doc.status == DONE or not free:
            return False
        doc.status, doc.owner, doc.lease_until = RUNNING, owner, self.now + lease_s
        return True

    async def renew(self, request_id: uuid.UUID, shard: int, owner: str, lease_s: float) -> None:
        doc = self.shards[(request_id, shard)]
        if doc.owner == owner:
            doc.lease_until = self.now + lease_s

    async def finish(
        self,
        request_id: uuid.UUID,
        shard: int,
        personas: Mapping[int, Persona],
        failures: Mapping[int, str],
        retries: int,
    ) -> bool:
        doc = self.shards[(request_id, shard)]
        if doc.status == DONE:
            return False
        doc.status, doc.stored, doc.failures = DONE, len(personas), dict(failures)
        doc.usage = sum((p.usage for p in personas.values()), TokenUsage())
        doc.cost_usd, doc.retried = sum(p.cost_usd for p in personas.values()), retries
        return True

    async def totals(self, request_id: uuid.UUID) -> ShardTotals:
        done = [s for (r, _), s in self.shards.items() if r == request_id and s.status == DONE]
        failures = {k: v for s in done for k, v in s.failures.items()}
        usage = sum((s.usage for s in done), TokenUsage())
        cost = sum(s.cost_usd for s in done)
        return ShardTotals(
            len(done),
            sum(s.stored for s in done),
            failures,
            sum(s.retried for s in done),
            usage,
            cost,
        )


class RecordingShardSink:
    """A ``ShardSink`` that keeps the shards published, for the test to deliver."""

    def __init__(self) -> None:
        self.published: list[ShardRequested] = []

    async def publish(self, shard: ShardRequested) -> None:
        self.published.append(shard)


@dataclass
class MemoryStats:
    counted: list[Persona] = field(default_factory=list)
    failed_ordinals: int = 0
    near_duplicates: int = 0

    async def apply(
        self, new: Sequence[Persona], failed_delta: int = 0, near_duplicates: int = 0
    ) -> None:
        self.counted.extend(new)
        self.failed_ordinals += failed_delta
        self.near_duplicates += near_duplicates


class RecordingSink:
    """An ``EventSink`` that keeps what was published."""

    def __init__(self) -> None:
        self.created_events: list[PersonaCreated] = []
        self.failed_events: list[PersonaFailed] = []

    async def created(self, event: PersonaCreated) -> None:
        self.created_events.append(event)

    async def failed(self, event: PersonaFailed) -> None:
        self.failed_events.append(event)
