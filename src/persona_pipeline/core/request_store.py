"""Request lifecycle: ``pending`` → ``generating`` → ``completed`` / ``partial`` / ``failed``."""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from pymongo import ReturnDocument

from persona_pipeline.contracts import Persona, PersonaRequested, RequestState, RequestStatus
from persona_pipeline.contracts.events import utcnow
from persona_pipeline.contracts.plan import AudiencePlan, Planning
from persona_pipeline.core.mongo import Collections


def _on_insert(request: PersonaRequested, now: datetime) -> dict[str, Any]:
    return {
        "brief": request.brief,
        "requested": request.count,
        "requested_by": request.requested_by,
        "created_at": now,
    }


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


def final_state(requested: int, stored: int) -> RequestState:
    if stored >= requested:
        return RequestState.COMPLETED
    return RequestState.PARTIAL if stored else RequestState.FAILED


class RequestStore:
    def __init__(self, collections: Collections) -> None:
        self._requests = collections.requests
        self._personas = collections.personas

    async def record_pending(self, request: PersonaRequested) -> None:
        """Called by the API before publishing, so the status URL works at once."""
        now = utcnow()
        await self._requests.update_one(
            {"_id": request.request_id},
            {
                "$setOnInsert": {
                    **_on_insert(request, now),
                    "status": RequestState.PENDING.value,
                    "updated_at": now,
                }
            },
            upsert=True,
        )

    async def discard_unqueued(self, request_id: uuid.UUID) -> None:
        """Undo ``record_pending`` when publishing failed, so no status URL reports a request
        that will never run. Should the event have reached Kafka after all (an ack lost to a
        timeout), the worker recreates the record when it starts on it."""
        await self._requests.delete_one({"_id": request_id, "status": RequestState.PENDING.value})

    async def mark_generating(
        self, request: PersonaRequested, generator: str
    ) -> AudiencePlan | None:
        """Record that a worker took the request; returns the plan stored with it by an
        earlier delivery (read in the same round trip), or None on the first one."""
        now = utcnow()
        doc = await self._requests.find_one_and_update(
            {"_id": request.request_id},
            {
                "$setOnInsert": _on_insert(request, now),
                "$set": {
                    "status": RequestState.GENERATING.value,
                    "generator": generator,
                    "updated_at": now,
                    "finished_at": None,
                },
                "$min": {"started_at": now},
            },
            upsert=True,
            projection={"plan": 1},
            return_document=ReturnDocument.AFTER,
        )
        return _plan_in(doc)

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
            {"_id": request_id},
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
    ) -> Settlement:
        """Settle the request from all its stored ``personas`` (sums are set, not added),
        with what the planning call cost added to its tokens and cost.

        The document remembers which ordinals the statistics already count, so the
        caller learns exactly which personas are new to them, once."""
        stored = list(personas.values())
        state = final_state(request.count, len(stored))
        now = utcnow()
        plan_usage = planning.usage
        before = await self._requests.find_one_and_update(
            {"_id": request.request_id},
            {
                "$set": {
                    "status": state.value,
                    "stored": len(stored),
                    "prompt_tokens": plan_usage.prompt_tokens
                    + sum(p.usage.prompt_tokens for p in stored),
                    "completion_tokens": plan_usage.completion_tokens
                    + sum(p.usage.completion_tokens for p in stored),
                    "cost_usd": round(planning.cost_usd + sum(p.cost_usd for p in stored), 8),
                    "failed": len(failures),
                    "failures": {str(k): v for k, v in sorted(failures.items())},
                    "updated_at": now,
                    "finished_at": now,
                },
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

    async def get(self, request_id: uuid.UUID) -> RequestStatus | None:
        """The request's status; while it runs, ``stored`` is counted live from the personas."""
        doc = await self._requests.find_one({"_id": request_id})
        if doc is None:
            return None
        status = RequestStatus.model_validate({**doc, "request_id": doc["_id"]})
        if status.status.is_final:
            return status
        live = await self._personas.count_documents({"request_id": request_id})
        return status.model_copy(update={"stored": live})
