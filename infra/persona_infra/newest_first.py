"""The newest documents matching a query, read in widening windows of creation time.

The embedded development database loads every document a query matches, whole,
before it sorts and limits, whatever the limit: "the newest 20" of 100,000 personas
read all 100,000 (15 s measured). Bounded below on ``sort_key`` it reads only that
range. So the newest ``limit`` are read window by window, going back in time: the last
``FIRST_SPAN``; while windows come back empty, each ``EMPTY_GROWTH`` times longer; once
some are found, sized from their density for what is still missing (``GROWTH`` times
longer at most, and after an empty one ``EMPTY_GROWTH`` times at least: the last page
of a store reads on to ``EPOCH``). The reads end when ``limit`` are found, the query's
own lower bound is reached, or the windows reach ``EPOCH`` (then one last read without
a bound).
Windows do not overlap, so no document is read twice, and each read returns only what
the page still lacks (projected: a caller that needs few fields asks for those only).

What a read costs is the number of documents in its window, so the windows must not
overshoot: an empty read costs about a millisecond and a half, a loaded document a
tenth of one. Growing gently while empty keeps the window that reaches the first
matches small. A store that has been idle for a day would still make the windows
cross that day from "now" and land in one huge window: a caller that knows the newest
``sort_key`` (the statistics keep it) passes it as ``start``.

A search's terms are matched the way that server serves from the ``(search_terms,
sort_key)`` index: one term as an equality (``$all`` is not served from it), several
as an aggregation whose first ``$match`` is an equality on one of them (the longest,
as the likeliest to be rare), followed by the ``$all``. On MongoDB every window is a
range scan of the same compound index, and the first one usually fills the page.

The API's list and search pages and the worker's near-duplicate check share this.
"""

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from persona_contracts.events import utcnow
from persona_infra.documents import moment_of, time_bound

FIRST_SPAN = timedelta(seconds=1)
"""A second: one large request stores thousands of personas of one brief a minute."""
MIN_SPAN = timedelta(milliseconds=10)
EMPTY_GROWTH = 4
GROWTH = 16
SLACK = 1.25
"""A window sized from the density seen so far asks for this much more than it needs."""
READ_DOCS = 10
"""What one read costs by itself, in documents loaded: a window asks for at least this
many, or the last few missing would take a read each."""
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)
"""No persona is older: the windows stop here and the last read has no lower bound."""

Query = dict[str, Any]
Collection = AsyncCollection[Any]


async def newest_first(
    collection: Collection,
    query: Query,
    limit: int,
    projection: Mapping[str, Any] | None = None,
    below: str | None = None,
    start: str | None = None,
) -> list[Any]:
    """Up to ``limit`` documents matching ``query`` (with ``projection``), newest
    ``sort_key`` first, all below the ``sort_key`` ``below`` when given (the next page
    of a keyset).

    ``query`` may bound ``sort_key`` itself (a creation-time filter): ``$gte`` and
    ``$lte`` are kept, and the windows start at its upper end. ``start`` is a
    ``sort_key`` where the windows begin instead of now (the newest one stored, when
    known). Only speed depends on it: the first window is open above (up to the
    query's own bound), so documents newer than ``start`` are found all the same."""
    bounds: dict[str, str] = dict(query.get("sort_key", {}))
    if below is not None:
        bounds["$lt"] = below
    floor = bounds.pop("$gte", None)
    top = min([*bounds.values(), *([start] if start else [])], default=None)
    start_at = moment_of(top) if top else utcnow()
    return await _windows(collection, query, limit, projection, bounds, floor, start_at)


async def _windows(
    collection: Collection,
    query: Query,
    limit: int,
    projection: Mapping[str, Any] | None,
    bounds: dict[str, str],
    floor: str | None,
    start: datetime,
) -> list[Any]:
    """The reads, each reaching further back from ``start`` (``reach``); ``idle`` is how
    far the windows reached while they were all empty."""
    reach, idle, found = FIRST_SPAN, timedelta(0), list[Any]()
    while len(found) < limit:
        # Compared before subtracting: far from EPOCH, start - reach may leave the calendar.
        low: str | None = time_bound(start - reach) if reach < start - EPOCH else None
        if low is not None and (floor is None or low > floor):
            window = {**bounds, "$gte": low}
        else:  # the last window: down to the query's own bound, or unbounded
            low = None
            window = {**bounds, **({"$gte": floor} if floor else {})}
        selector = _within(query, window)
        read = await _read(collection, selector, projection, limit - len(found))
        found += read
        if low is None:
            break
        bounds = {"$lt": low}
        idle = idle if found else reach
        reach = _next_reach(reach, idle, len(found), limit, empty=not read)
    return found


async def by_ids(
    collection: Collection, ids: Sequence[Any], projection: Mapping[str, Any] | None = None
) -> list[Any]:
    """The documents with these ids, in the order of ``ids`` (missing ones left out)."""
    if not ids:
        return []
    docs = await collection.find({"_id": {"$in": list(ids)}}, projection).to_list(length=None)
    by_id = {doc["_id"]: doc for doc in docs}
    return [by_id[key] for key in ids if key in by_id]


def _next_reach(
    reach: timedelta, idle: timedelta, found: int, wanted: int, empty: bool
) -> timedelta:
    """How far back the next window should reach: as far as the density found past the
    idle stretch says the rest takes (with ``SLACK``, and ``READ_DOCS`` at least);
    ``EMPTY_GROWTH`` times as far at least after an empty window (nothing found yet, or
    the documents ran out), ``GROWTH`` times at most."""
    floor = reach * EMPTY_GROWTH if empty else reach + MIN_SPAN
    if not found:
        return floor
    step = (reach - idle) * (SLACK * max(wanted - found, READ_DOCS) / found)
    return min(max(reach + step, floor), reach * GROWTH)


def _within(query: Query, window: dict[str, str]) -> Query:
    """``query`` with ``sort_key`` limited to ``window`` (no condition when it is open)."""
    rest = {key: value for key, value in query.items() if key != "sort_key"}
    return {**rest, "sort_key": window} if window else rest


async def _read(
    collection: Collection, query: Query, projection: Mapping[str, Any] | None, limit: int
) -> list[Any]:
    terms = _terms(query)
    if len(terms) <= 1:
        if terms:
            query = {**query, "search_terms": terms[0]}
        cursor = collection.find(query, projection).sort("sort_key", DESCENDING).limit(limit)
        return await cursor.to_list(length=limit)
    first = max(terms, key=len)
    pipeline: list[Query] = [
        {"$match": {**query, "search_terms": first}},
        {"$match": {"search_terms": {"$all": terms}}},
        {"$sort": {"sort_key": DESCENDING}},
        {"$limit": limit},
        *([{"$project": dict(projection)}] if projection else []),
    ]
    return await (await collection.aggregate(pipeline)).to_list(length=limit)


def _terms(query: Query) -> list[str]:
    """The words of a ``{"search_terms": {"$all": [...]}}`` condition, if there is one."""
    condition = query.get("search_terms")
    return list(condition["$all"]) if isinstance(condition, dict) else []
