"""Newest-first reads in widening time windows return exactly what one sorted, limited
query would, on the real database: however the documents are spread in time, below a
keyset position, within a query's own creation-time bounds, and dated in the future."""

import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from pymongo import DESCENDING
from pymongo.asynchronous.collection import AsyncCollection

from persona_contracts.events import utcnow
from persona_infra.documents import time_bound, time_key
from persona_infra.mongo import Document, connect
from persona_infra.newest_first import newest_first
from persona_infra.settings import Settings

NOW = utcnow()
AGES = [
    timedelta(days=-2),  # a clock ahead of ours
    timedelta(seconds=5),
    timedelta(seconds=50),
    timedelta(minutes=30),
    timedelta(hours=7),
    timedelta(days=2),
    timedelta(days=45),
    timedelta(days=900),
    timedelta(days=365 * 40),  # before the windows' epoch: only the last read finds it
]


@pytest.fixture
async def spread(settings: Settings) -> AsyncIterator[AsyncCollection[Document]]:
    """Three documents per age above, every other one tagged ``even``."""
    client = connect(settings)
    collection = client[settings.mongodb_database]["spread"]
    await collection.create_index([("sort_key", DESCENDING)], unique=True)
    moments = [NOW - age - timedelta(milliseconds=k) for age in AGES for k in range(3)]
    await collection.insert_many(
        {"sort_key": f"{time_key(m)}|{uuid.uuid4()}", "even": i % 2 == 0}
        for i, m in enumerate(moments)
    )
    yield collection
    await client.close()


async def sorted_limited(
    collection: AsyncCollection[Document], query: Document, limit: int
) -> list[object]:
    cursor = collection.find(query).sort("sort_key", DESCENDING).limit(limit)
    return [doc["sort_key"] async for doc in cursor]


@pytest.mark.parametrize("limit", [1, 2, 4, 7, 13, 20, 26, 27, 100])
async def test_the_newest_are_found_however_far_apart_they_are(
    spread: AsyncCollection[Document], limit: int
) -> None:
    found = await newest_first(spread, {}, limit)
    assert [d["sort_key"] for d in found] == await sorted_limited(spread, {}, limit)
    assert len(found) == min(limit, 3 * len(AGES))


@pytest.mark.parametrize(
    "start_age",
    [
        timedelta(seconds=5),  # the newest counted, with newer ones not yet counted
        timedelta(days=45),  # a start far too old: only slower
        timedelta(days=-30),  # a start in the future
    ],
)
@pytest.mark.parametrize("limit", [1, 4, 20, 100])
async def test_a_start_hint_changes_only_where_the_windows_begin(
    spread: AsyncCollection[Document], start_age: timedelta, limit: int
) -> None:
    """Documents newer than ``start`` are found too: the first window is open above."""
    start = time_bound(NOW - start_age, end=True)
    found = await newest_first(spread, {}, limit, start=start)
    assert [d["sort_key"] for d in found] == await sorted_limited(spread, {}, limit)
    below = await newest_first(spread, {}, limit, below=start, start=start)
    assert [d["sort_key"] for d in below] == await sorted_limited(
        spread, {"sort_key": {"$lt": start}}, limit
    )


async def test_pages_below_a_position_walk_everything_once(
    spread: AsyncCollection[Document],
) -> None:
    seen: list[object] = []
    below = None
    while page := await newest_first(spread, {"even": True}, 4, below=below):
        seen += [d["sort_key"] for d in page]
        below = str(page[-1]["sort_key"])
    assert seen == await sorted_limited(spread, {"even": True}, 1000)
    assert len(seen) == len(set(seen)) == (3 * len(AGES) + 1) // 2


async def test_a_query_with_its_own_creation_bounds_stays_within_them(
    spread: AsyncCollection[Document],
) -> None:
    bounds = {
        "$gte": time_bound(NOW - timedelta(days=60)),
        "$lte": time_bound(NOW - timedelta(minutes=1), end=True),
    }
    query = {"sort_key": bounds}
    found = await newest_first(spread, query, 100)
    assert [d["sort_key"] for d in found] == await sorted_limited(spread, query, 100)
    assert len(found) == 3 * 4  # 30 minutes, 7 hours, 2 days and 45 days old


@pytest.mark.parametrize("year", [4955, 9999])
async def test_a_bound_far_in_the_future_reads_everything_below_it(
    spread: AsyncCollection[Document], year: int
) -> None:
    """The windows stop at the epoch however far above it they start (a created_before of
    year 4955 once stepped below year 1)."""
    query = {"sort_key": {"$lte": time_bound(datetime(year, 11, 17, tzinfo=UTC), end=True)}}
    found = await newest_first(spread, query, 100)
    assert [d["sort_key"] for d in found] == await sorted_limited(spread, {}, 100)


async def test_nothing_matching_is_an_empty_page(spread: AsyncCollection[Document]) -> None:
    assert await newest_first(spread, {"even": "neither"}, 20) == []
    assert (
        await newest_first(spread, {}, 20, below=time_bound(datetime(1980, 1, 1, tzinfo=UTC))) == []
    )


@pytest.mark.parametrize("words", [["rare"], ["common", "rare"], ["common", "absent"], ["common"]])
async def test_search_terms_match_as_all_of_them(
    spread: AsyncCollection[Document], words: list[str]
) -> None:
    """One term is read as an equality, several as an aggregation led by one of them:
    either way exactly the documents holding every word."""
    keys = await sorted_limited(spread, {}, 1000)
    for i, key in enumerate(keys):
        held = ["common"] + (["rare"] if i % 5 == 0 else [])
        await spread.update_one({"sort_key": key}, {"$set": {"search_terms": held}})
    query = {"search_terms": {"$all": words}}
    found = await newest_first(spread, query, 4)
    assert [d["sort_key"] for d in found] == await sorted_limited(spread, query, 4)
    assert all(set(words) <= set(d["search_terms"]) for d in found)
