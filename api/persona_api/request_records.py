"""The API's side of a request's document: recorded before its event is published, marked
queued or not, cancelled on demand, and read as the request's status.

The document's shape and lifecycle are ``persona_infra.request_documents``; the worker
moves it on from ``pending`` (``persona_worker.request_writes``).
"""

import uuid
from datetime import datetime

from pymongo import ReturnDocument

from persona_contracts import PersonaRequested, RequestState, RequestStatus
from persona_contracts.events import utcnow
from persona_contracts.requests import ShardProgress
from persona_infra.mongo import Collections
from persona_infra.request_documents import ACTIVE, on_insert
from persona_infra.shard_documents import DONE, PENDING


class RequestRecords:
    def __init__(self, collections: Collections) -> None:
        self._requests = collections.requests
        self._personas = collections.personas
        self._shards = collections.shards

    async def record_pending(self, request: PersonaRequested) -> None:
        """Called by the API before publishing, so the status URL works at once and the
        reconciler can re-drive the request should its event never reach a worker."""
        now = utcnow()
        await self._requests.update_one(
            {"_id": request.request_id},
            {
                "$setOnInsert": {
                    **on_insert(request, now),
                    "status": RequestState.PENDING.value,
                    "queued": False,
                    "updated_at": now,
                    "progress_at": now,
                }
            },
            upsert=True,
        )

    async def mark_queued(self, request_id: uuid.UUID) -> None:
        """The request's event is in Kafka: from now on the reconciler may re-drive it."""
        await self._requests.update_one({"_id": request_id}, {"$set": {"queued": True}})

    async def mark_unqueued(self, request_id: uuid.UUID, reason: str) -> None:
        """The publish did not complete, and the client was told so (503): the request ends
        ``failed`` and a late copy of its event is not generated. A retry with the same
        ``Idempotency-Key`` queues it again (``requeue``)."""
        now = utcnow()
        await self._requests.update_one(
            {"_id": request_id, "status": RequestState.PENDING.value},
            {
                "$set": {
                    "status": RequestState.FAILED.value,
                    "unqueued": True,
                    "error": reason,
                    "updated_at": now,
                    "finished_at": now,
                }
            },
        )

    async def requeue(self, request_id: uuid.UUID) -> PersonaRequested | None:
        """Make a request that was not queued pending again; returns its event to publish
        (None when it was queued after all, so there is nothing to do)."""
        now = utcnow()
        doc = await self._requests.find_one_and_update(
            {"_id": request_id, "unqueued": True},
            {
                "$set": {
                    "status": RequestState.PENDING.value,
                    "unqueued": False,
                    "queued": False,
                    "error": None,
                    "updated_at": now,
                    "progress_at": now,
                    "finished_at": None,
                }
            },
            projection={"event": 1},
            return_document=ReturnDocument.AFTER,
        )
        return PersonaRequested.model_validate(doc["event"]) if doc else None

    async def request_cancel(self, request_id: uuid.UUID) -> RequestStatus | None:
        """Ask for the request to stop: one never taken by a worker ends ``cancelled`` now;
        one generating stops starting personas, one in a batch has the batch cancelled
        (at its next poll, made due now). Final requests stay as they are."""
        now = utcnow()
        await self._requests.update_one(
            {"_id": request_id, "status": {"$in": ACTIVE}},
            {"$set": {"cancel_requested": True, "updated_at": now, "poll_at": now}},
        )
        await self._requests.update_one(
            {"_id": request_id, "status": RequestState.PENDING.value},
            {
                "$set": {
                    "status": RequestState.CANCELLED.value,
                    "updated_at": now,
                    "finished_at": now,
                    "progress_at": now,
                }
            },
        )
        return await self.get(request_id)

    async def get(self, request_id: uuid.UUID) -> RequestStatus | None:
        """The request's status; while it runs, ``stored`` is counted live, with its
        shards' progress and the time left at the pace so far."""
        doc = await self._requests.find_one({"_id": request_id})
        if doc is None:
            return None
        status = RequestStatus.model_validate({**doc, "request_id": doc["_id"]})
        total = doc.get("shards_total")
        shards, live = None, None
        if isinstance(total, int):
            done, live = await self._shards_stored(request_id)
            shards = ShardProgress(total=total, done=done)
        if status.status.is_final:
            return status.model_copy(update={"shards": shards})
        if live is None:
            live = await self._personas.count_documents({"request_id": request_id})
        eta = eta_s(status.started_at, live, status.requested)
        return status.model_copy(update={"stored": live, "shards": shards, "eta_s": eta})

    async def _shards_stored(self, request_id: uuid.UUID) -> tuple[int, int]:
        """Shards done, and personas stored so far: what the done shards recorded plus a
        count of the ordinals of the others under way. Counting every persona of a
        10,000-persona request would load them all on the embedded database."""
        done = stored = 0
        started = self._shards.find(
            {"request_id": request_id, "status": {"$ne": PENDING}},
            {"status": 1, "stored": 1, "first": 1, "end": 1},
        )
        async for shard in started:
            if shard["status"] == DONE:
                done += 1
                stored += int(str(shard.get("stored", 0)))
            else:
                ordinals = {"$gte": shard["first"], "$lt": shard["end"]}
                stored += await self._personas.count_documents(
                    {"request_id": request_id, "ordinal": ordinals}
                )
        return done, stored


def eta_s(started_at: datetime | None, stored: int, requested: int) -> float | None:
    """Seconds until ``requested`` are stored, at the pace since ``started_at``."""
    if started_at is None or not 0 < stored < requested:
        return None
    elapsed = (utcnow() - started_at).total_seconds()
    return round(elapsed / stored * (requested - stored), 1)
