"""The API's reads of stored personas: one by id, and pages of a list or a search.

Pages are keyset-paginated on an indexed, unique string field (``sort_key`` or
``age_key``), so every page is an index range scan however deep it is. Newest-first
pages (lists and the window a search ranks) are read in windows of creation time
(``persona_infra.newest_first``), which the embedded database also serves from the
index; the windows start at the newest persona the statistics counted.
"""

import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING

from persona_api import search
from persona_contracts import Persona
from persona_infra.documents import PUBLIC_PROJECTION, from_document, time_bound
from persona_infra.mongo import Collections
from persona_infra.newest_first import by_ids, newest_first
from persona_infra.stats_document import newest_counted
from persona_infra.text import fold


class Ordering(StrEnum):
    """How a page is sorted; each is one unique, indexed string field (keyset pagination)."""

    NEWEST = "created_at"
    """Newest first, on ``sort_key`` (creation time, then id)."""
    AGE = "age"
    """Youngest first, on ``age_key`` (age, then ``sort_key``)."""
    RELEVANCE = "relevance"
    """Search only: most matching fields first (see ``persona_api.search``)."""

    @property
    def field(self) -> str:
        return "sort_key" if self is Ordering.NEWEST else "age_key"


@dataclass(frozen=True, slots=True)
class PersonaFilter:
    """Filters shared by list and search; ``None`` means "any"."""

    country: str | None = None
    city: str | None = None
    occupation: str | None = None
    gender: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    tag: str | None = None
    interest: str | None = None
    request_id: uuid.UUID | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None
    generator: str | None = None
    terms: Sequence[str] = ()

    def to_query(self) -> dict[str, Any]:
        """A MongoDB filter built only from typed values, never from raw user input.

        Strings are compared as folded literals; none can become an operator."""
        folded = {
            "keys.country": self.country,
            "keys.city": self.city,
            "keys.occupation": self.occupation,
            "keys.tags": self.tag,
            "keys.interests": self.interest,
        }
        query: dict[str, Any] = {k: fold(v) for k, v in folded.items() if v is not None}
        exact = {"gender": self.gender, "generator": self.generator, "request_id": self.request_id}
        query |= {k: v for k, v in exact.items() if v is not None}
        if age := _range(self.min_age, self.max_age):
            query["age"] = age
        created = _range(
            time_bound(self.created_after) if self.created_after else None,
            time_bound(self.created_before, end=True) if self.created_before else None,
        )
        if created:
            query["sort_key"] = created
        if self.terms:
            query["search_terms"] = {"$all": list(self.terms)}
        return query


def _range(low: object | None, high: object | None) -> dict[str, object]:
    return {op: bound for op, bound in (("$gte", low), ("$lte", high)) if bound is not None}


@dataclass(frozen=True, slots=True)
class Page:
    items: list[Persona]
    next_after: str | None


class PersonaQueries:
    def __init__(self, collections: Collections) -> None:
        self._personas = collections.personas
        self._stats = collections.stats

    async def get(self, persona_id: uuid.UUID) -> Persona | None:
        doc = await self._personas.find_one({"_id": persona_id}, PUBLIC_PROJECTION)
        return None if doc is None else from_document(doc)

    async def page(
        self,
        where: PersonaFilter,
        limit: int,
        after: str | None,
        ordering: Ordering = Ordering.NEWEST,
    ) -> Page:
        """One page; ``after`` is the ordering field of the previous page's last item."""
        if ordering is Ordering.RELEVANCE:
            return await self._relevance_page(where, limit, after)
        if ordering is Ordering.NEWEST:
            docs = await self._newest(where, limit + 1, after)
        else:
            docs = await self._by_age(where, limit + 1, after)
        has_more = len(docs) > limit
        docs = docs[:limit]
        next_after = str(docs[-1][ordering.field]) if has_more and docs else None
        return Page(items=[from_document(doc) for doc in docs], next_after=next_after)

    async def batches(
        self, where: PersonaFilter, size: int, limit: int | None = None
    ) -> AsyncIterator[list[Persona]]:
        """Every persona ``where`` matches (up to ``limit``), newest first, ``size`` at a time:
        one keyset page per batch, so an export of any length holds one batch."""
        after, left = None, limit
        while left is None or left > 0:
            page = await self.page(where, size if left is None else min(size, left), after)
            if page.items:
                yield page.items
            if page.next_after is None:
                return
            after = page.next_after
            left = None if left is None else left - len(page.items)

    async def _newest(self, where: PersonaFilter, limit: int, after: str | None) -> list[Any]:
        # Only a first page starts at the top: below a position, the windows start there.
        start = await newest_counted(self._stats) if after is None else None
        return await newest_first(
            self._personas, where.to_query(), limit, PUBLIC_PROJECTION, below=after, start=start
        )

    async def _by_age(self, where: PersonaFilter, limit: int, after: str | None) -> list[Any]:
        query = where.to_query()
        if after is not None:
            query["age_key"] = {"$gt": after}
        cursor = self._personas.find(query, PUBLIC_PROJECTION).sort("age_key", ASCENDING)
        return await cursor.limit(limit).to_list(length=limit)

    async def _relevance_page(self, where: PersonaFilter, limit: int, after: str | None) -> Page:
        """Rank the newest matches by matching fields; past that window, newest first."""
        phase, _, position = (after or f"{search.RANKED}:").partition(":")
        if phase == search.NEWEST:
            page = await self.page(where, limit, position)
            beyond = f"{search.NEWEST}:{page.next_after}" if page.next_after else None
            return Page(items=page.items, next_after=beyond)
        window = search.RANKING_WINDOW
        # Ranked on the fields that score, then only the page is read whole.
        start = await newest_counted(self._stats)
        docs = await newest_first(
            self._personas, where.to_query(), window + 1, search.RANKED_FIELDS, start=start
        )
        overflow = docs[window]["sort_key"] if len(docs) > window else None
        ordered = search.ranked(docs[:window], where.terms)
        remaining = [(p, d) for p, d in ordered if not position or p < position]
        chosen = remaining[:limit]
        if len(remaining) > limit:
            next_after: str | None = f"{search.RANKED}:{chosen[-1][0]}"
        elif overflow is not None:  # the ranked window is done: continue below its oldest
            next_after = f"{search.NEWEST}:{docs[window - 1]['sort_key']}"
        else:
            next_after = None
        ids = [doc["_id"] for _, doc in chosen]
        shown = await by_ids(self._personas, ids, PUBLIC_PROJECTION)
        return Page(items=[from_document(doc) for doc in shown], next_after=next_after)
