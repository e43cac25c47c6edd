"""Reads and writes of stored personas.

Writes are idempotent through the unique ``(request_id, ordinal)`` index; reads
are keyset-paginated on ``sort_key`` so every page is an index range scan.
"""

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from pymongo import DESCENDING
from pymongo.errors import BulkWriteError

from persona_pipeline.contracts import Persona
from persona_pipeline.core.documents import brief_key, from_document, to_document
from persona_pipeline.core.mongo import Collections
from persona_pipeline.core.text import fold

DUPLICATE_KEY = 11000


@dataclass(frozen=True, slots=True)
class PersonaFilter:
    """Filters shared by list and search; ``None`` means "any"."""

    country: str | None = None
    occupation: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    request_id: uuid.UUID | None = None
    terms: Sequence[str] = ()

    def to_query(self) -> dict[str, Any]:
        """A MongoDB filter built only from typed values, never from raw user input."""
        query: dict[str, Any] = {}
        if self.country is not None:
            query["keys.country"] = fold(self.country)
        if self.occupation is not None:
            query["keys.occupation"] = fold(self.occupation)
        age = {
            op: bound
            for op, bound in (("$gte", self.min_age), ("$lte", self.max_age))
            if bound is not None
        }
        if age:
            query["age"] = age
        if self.request_id is not None:
            query["request_id"] = self.request_id
        if self.terms:
            query["search_terms"] = {"$all": list(self.terms)}
        return query


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Persona]
    next_after: str | None


class PersonaStore:
    def __init__(self, collections: Collections) -> None:
        self._personas = collections.personas

    async def insert(self, persona: Persona, **extra: Any) -> bool:
        """Store a persona; ``False`` when this ``(request_id, ordinal)`` already exists."""
        return (await self.insert_many([to_document(persona, **extra)]))[0]

    async def insert_many(self, documents: Sequence[dict[str, Any]]) -> list[bool]:
        """Store documents in one round trip; per document, ``False`` if it already existed.

        One ``insert_many`` costs the server far less per document than single
        inserts; ``ordered=False`` keeps one duplicate from blocking the rest."""
        try:
            await self._personas.insert_many(documents, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(e.get("code") != DUPLICATE_KEY for e in errors):
                raise
            duplicates = {e["index"] for e in errors}
            return [i not in duplicates for i in range(len(documents))]
        return [True] * len(documents)

    async def for_request(self, request_id: uuid.UUID) -> dict[int, Persona]:
        """The personas already stored for a request, by ordinal."""
        cursor = self._personas.find({"request_id": request_id})
        return {p.ordinal: p for p in [from_document(doc) async for doc in cursor]}

    async def recent_signatures(self, brief: str, limit: int) -> list[tuple[str, list[int]]]:
        """``(id, minhash)`` of the newest personas generated for the same brief."""
        cursor = (
            self._personas.find({"brief_key": brief_key(brief)}, {"minhash": 1})
            .sort("sort_key", DESCENDING)
            .limit(limit)
        )
        return [
            (str(doc["_id"]), cast(list[int], doc["minhash"]))
            async for doc in cursor
            if doc.get("minhash")
        ]

    async def get(self, persona_id: uuid.UUID) -> Persona | None:
        doc = await self._personas.find_one({"_id": persona_id})
        return None if doc is None else from_document(doc)

    async def page(self, where: PersonaFilter, limit: int, after: str | None) -> Page:
        """Newest first; ``after`` is the ``sort_key`` of the previous page's last item."""
        query = where.to_query()
        if after is not None:
            query["sort_key"] = {"$lt": after}
        cursor = self._personas.find(query).sort("sort_key", DESCENDING).limit(limit + 1)
        docs = await cursor.to_list(length=limit + 1)
        has_more = len(docs) > limit
        docs = docs[:limit]
        next_after = str(docs[-1]["sort_key"]) if has_more and docs else None
        return Page(items=[from_document(doc) for doc in docs], next_after=next_after)
