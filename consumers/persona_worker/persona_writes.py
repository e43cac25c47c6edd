"""The worker's writes of personas, and the reads its exactly-once and near-duplicate
checks need.

Writes are idempotent through the unique ``(request_id, ordinal)`` index: a
redelivery that stores a persona again is told it already existed.
"""

import uuid
from collections.abc import Sequence
from typing import Any, cast

from persona_contracts import Persona
from persona_infra.documents import PUBLIC_PROJECTION, brief_key, from_document, to_document
from persona_infra.mongo import Collections, insert_new
from persona_infra.newest_first import newest_first


class PersonaWriter:
    def __init__(self, collections: Collections) -> None:
        self._personas = collections.personas

    async def insert(self, persona: Persona, **extra: Any) -> bool:
        """Store a persona; ``False`` when this ``(request_id, ordinal)`` already exists."""
        return (await self.insert_many([to_document(persona, **extra)]))[0]

    async def insert_many(self, documents: Sequence[dict[str, Any]]) -> list[bool]:
        """Store documents in one round trip (far cheaper per document than single
        inserts); per document, ``False`` if it already existed."""
        return await insert_new(self._personas, documents)

    async def for_request(
        self, request_id: uuid.UUID, ordinals: range | None = None
    ) -> dict[int, Persona]:
        """The personas already stored for a request (or for those of its ``ordinals``, a
        shard's: a range of the unique index), by ordinal."""
        query: dict[str, Any] = {"request_id": request_id}
        if ordinals is not None:
            query["ordinal"] = {"$gte": ordinals.start, "$lt": ordinals.stop}
        cursor = self._personas.find(query)
        return {p.ordinal: p for p in [from_document(doc) async for doc in cursor]}

    async def get(self, persona_id: uuid.UUID) -> Persona | None:
        """The stored persona with this id: another worker's, when it stored it first."""
        doc = await self._personas.find_one({"_id": persona_id}, PUBLIC_PROJECTION)
        return None if doc is None else from_document(doc)

    async def recent_signatures(self, brief: str, limit: int) -> list[tuple[str, list[int]]]:
        """``(id, minhash)`` of the newest personas generated for the same brief."""
        query = {"brief_key": brief_key(brief)}
        docs = await newest_first(self._personas, query, limit, {"minhash": 1})
        return [
            (str(doc["_id"]), cast(list[int], doc["minhash"])) for doc in docs if doc.get("minhash")
        ]
