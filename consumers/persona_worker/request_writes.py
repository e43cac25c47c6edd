"""The worker's side of a request's document: taking it, heartbeats, its plan, waiting for a
provider batch, settling it, and the reconciler's re-drives.

The document's shape and lifecycle are ``persona_infra.request_documents``; the API
records it and reads it (``persona_api.request_records``).
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, cast

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from persona_contracts import GenerationMode, Persona, PersonaRequested, RequestState, TokenUsage
from persona_contracts.events import utcnow
from persona_contracts.plan import AudiencePlan, Planning
from persona_infra.mongo import Collections
from persona_infra.request_documents import (
    ACTIVE,
    IN_BATCH,
    NOT_STARTABLE,
    on_insert,
    same_content,
)
from persona_worker.shard_writes import ShardTotals


class NotStartedError(Exception):
    """A delivery of a request that is not to be (re)started here: it waits for a provider
    batch (the batch poller drives it), was cancelled, or has a cancel pending."""

    def __init__(self, state: RequestState, *, cancel_requested: bool) -> None:
        super().__init__(state.value)
        self.state = state
        self.cancel_requested = cancel_requested


class RequestConflictError(Exception):
    """A delivery the stored request refuses: other content under its id, or a request
    the API reported as not queued. ``reason`` is safe to log and dead-letter."""

    def __init__(self, reason: str, *, unqueued: bool) -> None:
        super().__init__(reason)
        self.reason = reason
        self.unqueued = unqueued


@dataclass(frozen=True, slots=True)
class Settlement:
    state: RequestState
    newly_counted: list[Persona]
    """Personas the statistics have not counted yet."""
    failed_delta: int
    """Change in failed ordinals since the previous settlement (negative when fixed)."""


def _plan_in(doc: Mapping[str, Any] | None) -> AudiencePlan | None:
    plan = (doc or {}).get("plan")
    return AudiencePlan.model_validate(plan) if plan else None


def final_state(requested: int, stored: int, *, cancelled: bool = False) -> RequestState:
    """How a request ends; one a cancel stopped ends ``cancelled`` unless all was stored."""
    if stored >= requested:
        return RequestState.COMPLETED
    if cancelled:
        return RequestState.CANCELLED
    return RequestState.PARTIAL if stored else RequestState.FAILED


def _final(
    state: RequestState,
    stored: int,
    usage: TokenUsage,
    cost_usd: float,
    failures: Mapping[int, str],
) -> dict[str, Any]:
    """The fields a settled request sets (sums, never increments: settling is repeatable)."""
    now = utcnow()
    return {
        "status": state.value,
        "stored": stored,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "cached_prompt_tokens": usage.cached_prompt_tokens,
        "cost_usd": round(cost_usd, 8),
        "failed": len(failures),
        "failures": {str(k): v for k, v in sorted(failures.items())},
        "updated_at": now,
        "progress_at": now,
        "finished_at": now,
    }


class RequestWriter:
    def __init__(self, collections: Collections) -> None:
        self._requests = collections.requests
        self._personas = collections.personas

    async def mark_generating(
        self, request: PersonaRequested, generator: str, mode: GenerationMode
    ) -> AudiencePlan | None:
        """Record that a worker took the request; returns the plan stored with it by an
        earlier delivery (read in the same round trip), or None on the first one.

        Raises ``NotStartedError`` for a request waiting for its batch or cancelled, and
        ``RequestConflictError`` for a delivery the stored request refuses."""
        now = utcnow()
        try:
            doc = await self._requests.find_one_and_update(
                {
                    "_id": request.request_id,
                    "unqueued": {"$ne": True},
                    "status": {"$nin": NOT_STARTABLE},
                    "cancel_requested": {"$ne": True},
                    **same_content(request),
                },
                {
                    "$setOnInsert": on_insert(request, now),
                    "$set": {
                        "status": RequestState.GENERATING.value,
                        "generator": generator,
                        "mode": mode.value,
                        "updated_at": now,
                        "progress_at": now,
                        "finished_at": None,
                    },
                    "$min": {"started_at": now},
                },
                upsert=True,
                projection={"plan": 1},
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # the document exists but refused the filter
            raise await self._refusal(request) from None
        return _plan_in(doc)

    async def _refusal(self, request: PersonaRequested) -> Exception:
        doc = (
            await self._requests.find_one(
                {"_id": request.request_id},
                {"unqueued": 1, "status": 1, "cancel_requested": 1, "content_hash": 1},
            )
            or {}
        )
        same = doc.get("content_hash", request.content_hash()) == request.content_hash()
        if same and not doc.get("unqueued"):
            cancel = bool(doc.get("cancel_requested"))
            if doc.get("status") in NOT_STARTABLE or cancel:
                return NotStartedError(RequestState(str(doc["status"])), cancel_requested=cancel)
        if doc.get("unqueued"):
            return RequestConflictError(
                "the API answered 503 for this request (not queued); a late copy is ignored",
                unqueued=True,
            )
        return RequestConflictError(
            f"request_id {request.request_id} is already used by a request with other content "
            "(brief, count, constraints, audience or seed); publish new work under a new id",
            unqueued=False,
        )

    async def heartbeat(self, request_id: uuid.UUID) -> None:
        """Show the reconciler that a worker is still generating the request."""
        await self._requests.update_one(
            {"_id": request_id, "status": RequestState.GENERATING.value},
            {"$set": {"progress_at": utcnow()}},
        )

    async def stalled(self, before: datetime, limit: int) -> list[PersonaRequested]:
        """Requests not final whose progress stopped before ``before``, oldest first: taken
        by a worker, or recorded and confirmed queued (documents from before ``queued``
        existed count as queued)."""
        cursor = self._requests.find(
            {
                "$or": [
                    {"status": RequestState.GENERATING.value},
                    {"status": RequestState.PENDING.value, "queued": {"$ne": False}},
                ],
                "unqueued": {"$ne": True},
                "progress_at": {"$lt": before},
            },
            projection={"event": 1},
            sort=[("progress_at", 1)],
            limit=limit,
        )
        return [
            PersonaRequested.model_validate(doc["event"])
            async for doc in cursor
            if doc.get("event")
        ]

    async def drop_unconfirmed(self, before: datetime) -> int:
        """End records whose publish was never confirmed (the client was told 503) as not
        accepted; returns how many."""
        now = utcnow()
        result = await self._requests.update_many(
            {
                "status": RequestState.PENDING.value,
                "queued": False,
                "unqueued": {"$ne": True},
                "progress_at": {"$lt": before},
            },
            {
                "$set": {
                    "status": RequestState.FAILED.value,
                    "unqueued": True,
                    "error": "not accepted: the API could not confirm it was queued",
                    "updated_at": now,
                    "finished_at": now,
                }
            },
        )
        return result.modified_count

    async def redriven(self, request_id: uuid.UUID, max_redrives: int) -> bool:
        """Count one re-drive; False (and nothing counted) once ``max_redrives`` were made."""
        doc = await self._requests.find_one_and_update(
            {"_id": request_id, "status": {"$in": ACTIVE}, "redrives": {"$lt": max_redrives}},
            {"$inc": {"redrives": 1}, "$set": {"progress_at": utcnow()}},
            projection={"_id": 1},
        )
        return doc is not None

    async def give_up(self, request_id: uuid.UUID, reason: str) -> None:
        """End a request that re-drives could not move, with what it stored."""
        doc = await self._requests.find_one({"_id": request_id}, {"requested": 1}) or {}
        stored = await self._personas.count_documents({"request_id": request_id})
        state = final_state(int(str(doc.get("requested", 0))), stored)
        now = utcnow()
        await self._requests.update_one(
            {"_id": request_id, "status": {"$in": ACTIVE}},
            {
                "$set": {
                    "status": state.value,
                    "stored": stored,
                    "error": reason,
                    "updated_at": now,
                    "finished_at": now,
                    "progress_at": now,
                }
            },
        )

    async def keep_plan(self, request_id: uuid.UUID, plan: AudiencePlan) -> AudiencePlan:
        """Store ``plan`` unless the request has one already, and return the one it has:
        two workers planning the same request at once agree on the first one stored."""
        stored = await self._requests.find_one_and_update(
            {"_id": request_id, "plan": {"$exists": False}},
            {"$set": {"plan": plan.model_dump(mode="json")}},
            projection={"_id": 1},
        )
        if stored is not None:
            return plan
        return _plan_in(await self._requests.find_one({"_id": request_id}, {"plan": 1})) or plan

    async def reject(self, request_id: uuid.UUID, reason: str) -> None:
        """End a request that cannot be planned as ``failed``, with the reason."""
        now = utcnow()
        await self._requests.update_one(
            {"_id": request_id, "status": {"$in": ACTIVE}},
            {
                "$set": {
                    "status": RequestState.FAILED.value,
                    "error": reason,
                    "updated_at": now,
                    "finished_at": now,
                }
            },
        )

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
        """Settle the request from all its stored ``personas`` (sums are set, not added),
        with what the planning call cost added to its tokens and cost; ``cancelled`` when
        a cancel stopped it (``completed`` still, should everything be stored anyway).

        The document remembers which ordinals the statistics already count, so the
        caller learns exactly which personas are new to them, once."""
        stored = list(personas.values())
        state = final_state(request.count, len(stored), cancelled=cancelled)
        usage = sum((p.usage for p in stored), planning.usage)
        cost = planning.cost_usd + sum(p.cost_usd for p in stored)
        before = await self._requests.find_one_and_update(
            {"_id": request.request_id},
            {
                "$set": _final(state, len(stored), usage, cost, failures),
                "$inc": {"retried": retries},
                "$addToSet": {"counted_ordinals": {"$each": sorted(personas)}},
            },
            projection={"failed": 1, "counted_ordinals": 1},
            return_document=ReturnDocument.BEFORE,
        )
        before = before or {}
        counted = set(cast(list[int], before.get("counted_ordinals", [])))
        return Settlement(
            state=state,
            newly_counted=[p for o, p in sorted(personas.items()) if o not in counted],
            failed_delta=len(failures) - int(str(before.get("failed", 0))),
        )

    async def mark_sharded(self, request_id: uuid.UUID, shards: int) -> None:
        """Record that the request was split into ``shards`` parts (its status shows them)."""
        await self._requests.update_one(
            {"_id": request_id}, {"$set": {"shards_total": shards, "progress_at": utcnow()}}
        )

    async def finish_sharded(
        self,
        request: PersonaRequested,
        totals: ShardTotals,
        planning: Planning,
        *,
        cancelled: bool = False,
    ) -> RequestState:
        """Settle a request from the sums of its shards (set, not added: any worker may
        settle it again after a crash); its statistics were counted shard by shard."""
        state = final_state(request.count, totals.stored, cancelled=cancelled)
        usage = planning.usage + totals.usage
        cost = planning.cost_usd + totals.cost_usd
        ended = _final(state, totals.stored, usage, cost, totals.failures)
        await self._requests.update_one(
            {"_id": request.request_id}, {"$set": {**ended, "retried": totals.retried}}
        )
        return state

    async def plan_of(self, request_id: uuid.UUID) -> AudiencePlan | None:
        return _plan_in(await self._requests.find_one({"_id": request_id}, {"plan": 1}))

    async def mark_batch(
        self, request_id: uuid.UUID, state: RequestState, batch: Mapping[str, Any], poll_s: float
    ) -> None:
        """Record the provider batch the request now waits for (``batch``: its id, round,
        counts and the ordinals it carries); the poller looks at it in ``poll_s``."""
        now = utcnow()
        await self._requests.update_one(
            {"_id": request_id, "status": {"$in": ACTIVE}},
            {
                "$set": {
                    "status": state.value,
                    "batch": dict(batch),
                    "poll_at": now + timedelta(seconds=poll_s),
                    "updated_at": now,
                    "progress_at": now,
                }
            },
        )

    async def claim_due_batches(
        self, owner: str, lease_s: float, limit: int
    ) -> list[dict[str, Any]]:
        """Take the batch requests due for a poll, each for ``lease_s`` seconds, so that of
        several workers exactly one polls a batch; returns their documents."""
        now = utcnow()
        due = {"status": {"$in": IN_BATCH}, "poll_at": {"$lte": now}}
        cursor = self._requests.find(due, {"_id": 1}, sort=[("poll_at", 1)], limit=limit)
        claimed = []
        async for candidate in cursor:
            taken = await self._requests.update_one(
                {"_id": candidate["_id"], **due},
                {"$set": {"poll_at": now + timedelta(seconds=lease_s), "poll_owner": owner}},
            )
            if taken.modified_count:
                doc = await self._requests.find_one({"_id": candidate["_id"]})
                if doc is not None:
                    claimed.append(doc)
        return claimed

    async def batch_polled(
        self,
        request_id: uuid.UUID,
        state: RequestState,
        progress: Mapping[str, Any],
        poll_s: float,
    ) -> None:
        """A poll found the batch still running: record its progress, poll again later."""
        now = utcnow()
        await self._requests.update_one(
            {"_id": request_id, "status": {"$in": IN_BATCH}},
            {
                "$set": {
                    "status": state.value,
                    **{f"batch.{key}": value for key, value in progress.items()},
                    "poll_at": now + timedelta(seconds=poll_s),
                    "updated_at": now,
                    "progress_at": now,
                }
            },
        )

    async def cancel_requested(self, request_id: uuid.UUID) -> bool:
        found = await self._requests.find_one(
            {"_id": request_id, "cancel_requested": True}, {"_id": 1}
        )
        return found is not None
