"""Leases: one process of a deployment at a time runs a task (the reconciler).

A lease is a document ``{_id: name, owner, expires_at}``. Taking it is one atomic
update that matches only a free, expired or already-owned lease; when another owner
holds a live lease the upsert collides on ``_id`` and the taker learns it is not the
holder. Holders renew by taking it again before it expires; a crashed holder's lease
simply runs out.
"""

from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from persona_contracts.events import utcnow
from persona_infra.mongo import Collections


class LeaseStore:
    def __init__(self, collections: Collections) -> None:
        self._leases = collections.leases

    async def take(self, name: str, owner: str, ttl_s: float) -> bool:
        """Take or renew the lease ``name`` for ``ttl_s`` seconds; False if another holds it."""
        now = utcnow()
        try:
            await self._leases.update_one(
                {"_id": name, "$or": [{"owner": owner}, {"expires_at": {"$lt": now}}]},
                {"$set": {"owner": owner, "expires_at": now + timedelta(seconds=ttl_s)}},
                upsert=True,
            )
        except DuplicateKeyError:
            return False
        return True

    async def release(self, name: str, owner: str) -> None:
        """Give the lease up at shutdown, so another process need not wait for it to expire."""
        await self._leases.delete_one({"_id": name, "owner": owner})
