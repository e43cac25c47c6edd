"""The request document the API and the worker share, and its lifecycle:
``pending`` → ``generating`` → ``completed`` / ``partial`` / ``failed``.

The request document holds the whole event (``event``) and a digest of what it asks
for (``content_hash``), so the reconciler can re-drive a request whose event was lost
and a request id reused for other work can be told apart from a redelivery.
``progress_at`` moves whenever a worker shows the request is alive (taking it, a
heartbeat while it generates, settling it); the reconciler re-drives what stopped
moving. ``unqueued`` marks a request the API answered 503 for: a late copy of its
event must not be generated behind the client's back. ``queued`` is false from the
API's record until its publish is confirmed: a record that reached the database while
the client was told 503 (a write applied after a timeout) is never re-driven, and the
reconciler ends it as not accepted.
"""

from datetime import datetime
from typing import Any

from persona_contracts import PersonaRequested, RequestState
from persona_contracts.requests import BATCH_STATES

ACTIVE = [
    RequestState.PENDING.value,
    RequestState.GENERATING.value,
    *(state.value for state in BATCH_STATES),
]
IN_BATCH = [state.value for state in BATCH_STATES]
# A delivery does not (re)start a request that waits for a provider batch or was cancelled.
NOT_STARTABLE = [*IN_BATCH, RequestState.CANCELLED.value]


def on_insert(request: PersonaRequested, now: datetime) -> dict[str, Any]:
    return {
        "brief": request.brief,
        "requested": request.count,
        "requested_by": request.requested_by,
        "created_at": now,
        "event": request.model_dump(mode="json"),
        "content_hash": request.content_hash(),
        "redrives": 0,
    }


def same_content(request: PersonaRequested) -> dict[str, Any]:
    """Matches the request's document unless it holds other content (or none was recorded,
    as for documents written before the digest existed)."""
    return {
        "$or": [
            {"content_hash": request.content_hash()},
            {"content_hash": {"$exists": False}},
        ]
    }
