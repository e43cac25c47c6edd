"""Offsets committed while requests finish out of order, and batched inserts."""

import asyncio
from typing import Any

import pytest

from persona_worker.batcher import InsertBatcher
from persona_worker.offsets import OffsetTracker


def test_position_waits_for_the_lowest_unfinished_offset() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    for offset in (10, 11, 12):
        tracker.begin("p0", offset)
    assert tracker.committable() == {"p0": 10}
    tracker.committed({"p0": 10})
    tracker.end("p0", 12)
    tracker.end("p0", 11)
    assert tracker.committable() == {}  # 10 still runs: nothing new is safe
    tracker.end("p0", 10)
    assert tracker.committable() == {"p0": 13}


def test_partitions_are_independent_and_forgotten_on_revoke() -> None:
    tracker: OffsetTracker[str] = OffsetTracker()
    tracker.begin("p0", 5)
    tracker.begin("p1", 7)
    tracker.end("p1", 7)
    assert tracker.committable() == {"p0": 5, "p1": 8}
    assert tracker.committable(only=["p1"]) == {"p1": 8}
    tracker.forget(["p0"])
    tracker.end("p0", 5)  # a revoked partition's late finish is ignored
    assert tracker.committable() == {"p1": 8}
    assert tracker.in_flight == 0


class RecordingStore:
    def __init__(self, existing: set[str], fail: bool = False) -> None:
        self.batches: list[list[str]] = []
        self._existing = existing
        self._fail = fail

    async def insert_many(self, documents: list[dict[str, Any]]) -> list[bool]:
        self.batches.append([d["_id"] for d in documents])
        if self._fail:
            raise ConnectionError("database unreachable")
        return [d["_id"] not in self._existing for d in documents]


async def test_concurrent_inserts_share_one_write_and_learn_about_duplicates() -> None:
    store = RecordingStore(existing={"b"})
    batcher = InsertBatcher(store, max_batch=10, linger_s=0.01)  # type: ignore[arg-type]
    results = await asyncio.gather(*(batcher.insert({"_id": k}) for k in "abc"))
    assert results == [True, False, True]
    assert store.batches == [["a", "b", "c"]]


async def test_a_full_batch_is_written_without_waiting() -> None:
    store = RecordingStore(existing=set())
    batcher = InsertBatcher(store, max_batch=2, linger_s=60)  # type: ignore[arg-type]
    async with asyncio.timeout(5):
        assert await asyncio.gather(batcher.insert({"_id": "a"}), batcher.insert({"_id": "b"}))
    assert store.batches == [["a", "b"]]


async def test_a_failed_write_fails_every_waiter() -> None:
    batcher = InsertBatcher(RecordingStore(set(), fail=True), linger_s=0)  # type: ignore[arg-type]
    outcomes = await asyncio.gather(
        batcher.insert({"_id": "a"}), batcher.insert({"_id": "b"}), return_exceptions=True
    )
    assert all(isinstance(o, ConnectionError) for o in outcomes)


@pytest.mark.parametrize("count", [1, 7])
async def test_every_document_is_written_exactly_once(count: int) -> None:
    store = RecordingStore(existing=set())
    batcher = InsertBatcher(store, max_batch=3, linger_s=0.001)  # type: ignore[arg-type]
    await asyncio.gather(*(batcher.insert({"_id": str(i)}) for i in range(count)))
    written = [key for batch in store.batches for key in batch]
    assert sorted(written) == sorted(str(i) for i in range(count))
