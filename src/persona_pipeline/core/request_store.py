"""Request lifecycle: ``pending`` → ``generating`` → ``completed`` / ``partial`` / ``failed``."""

import uuid
from datetime import datetime
from typing import Any

from pymongo import ReturnDocument

from persona_pipeline.contracts import Persona, PersonaRequested, RequestState, RequestStatus
from persona_pipeline.contracts.events import utcnow
from persona_pipeline.core.mongo import Collections


def _on_insert(request: PersonaRequested, now: datetime) -> dict[str, Any]:
    return {
        "brief": request.brief,
        "requested": request.count,
        "requested_by": request.requested_by,
        "created_at": now,
    }


def final_state(requested: int, stored: int) -> RequestState:
    if stored >= requested:
        return RequestState.COMPLETED
    return RequestState.PARTIAL if stored else RequestState.FAILED


class RequestStore:
    def __init__(self, collections: Collections) -> None:
        self._requests = collections.requests

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

    async def mark_generating(self, request: PersonaRequested, generator: str) -> None:
        now = utcnow()
        await self._requests.update_one(
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
        )

    async def record_stored(self, persona: Persona, retries: int) -> None:
        """Live progress; called only for new personas, so redelivery never double-counts."""
        await self._requests.update_one(
            {"_id": persona.request_id},
            {
                "$inc": {
                    "stored": 1,
                    "retried": retries,
                    "prompt_tokens": persona.usage.prompt_tokens,
                    "completion_tokens": persona.usage.completion_tokens,
                    "cost_usd": persona.cost_usd,
                },
                "$set": {"updated_at": utcnow()},
            },
        )

    async def finish(
        self, request: PersonaRequested, stored: int, failures: dict[int, str], retries: int
    ) -> tuple[RequestState, int]:
        """Settle the final state from the authoritative stored count.

        Returns the state and how many more ordinals are failed than before this
        delivery (negative when a redelivery fixed some), so stats stay exact."""
        state = final_state(request.count, stored)
        now = utcnow()
        before = await self._requests.find_one_and_update(
            {"_id": request.request_id},
            {
                "$set": {
                    "status": state.value,
                    "stored": stored,
                    "failed": len(failures),
                    "failures": {str(k): v for k, v in sorted(failures.items())},
                    "updated_at": now,
                    "finished_at": now,
                },
                "$inc": {"retried": retries},
            },
            projection={"failed": 1},
            return_document=ReturnDocument.BEFORE,
        )
        previously_failed = int(str(before.get("failed", 0))) if before else 0
        return state, len(failures) - previously_failed

    async def get(self, request_id: uuid.UUID) -> RequestStatus | None:
        doc = await self._requests.find_one({"_id": request_id})
        if doc is None:
            return None
        return RequestStatus.model_validate({**doc, "request_id": doc["_id"]})
