"""``Idempotency-Key`` on ``POST /v1/persona``: a retried request is the same request.

A key is scoped to its caller (the API key's name, or the client address when the API
is open), maps to one request id and the digest of the body it was first sent with,
and expires after a day (a TTL index). Claiming is an insert on ``_id``, so two
concurrent retries agree on one request.
"""

import uuid
from dataclasses import dataclass

from pymongo.errors import DuplicateKeyError

from persona_contracts.events import utcnow
from persona_infra.mongo import Collections


@dataclass(frozen=True, slots=True)
class Claim:
    request_id: uuid.UUID
    content_hash: str
    new: bool
    """True for the first use of the key; False for a retry (same or other body)."""


class IdempotencyStore:
    def __init__(self, collections: Collections) -> None:
        self._keys = collections.idempotency

    async def claim(self, scoped_key: str, request_id: uuid.UUID, content_hash: str) -> Claim:
        """Bind the key to ``request_id`` unless it is bound already; returns the binding."""
        try:
            await self._keys.insert_one(
                {
                    "_id": scoped_key,
                    "request_id": request_id,
                    "content_hash": content_hash,
                    "created_at": utcnow(),
                }
            )
        except DuplicateKeyError:
            found = await self._keys.find_one({"_id": scoped_key}) or {}
            bound = found.get("request_id")
            assert isinstance(bound, uuid.UUID), "a claimed key always holds its request id"
            return Claim(bound, str(found.get("content_hash")), new=False)
        return Claim(request_id, content_hash, new=True)

    async def release(self, scoped_key: str, request_id: uuid.UUID) -> None:
        """Forget a key whose request was never recorded (the database failed in between)."""
        await self._keys.delete_one({"_id": scoped_key, "request_id": request_id})
