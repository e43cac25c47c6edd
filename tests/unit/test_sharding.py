"""Large requests as shards, on in-memory stores: split once planned, every ordinal
stored once whichever worker takes which shard, a copy of a shard costing nothing, a
dead worker's shard taken over, and the last shard settling the request."""

import pytest

from persona_contracts import PersonaRequested, RequestState
from persona_worker.sharding import parts
from tests.support.generation_world import ScriptedGenerator, World

BIG = PersonaRequested(brief="commuters in Leeds", count=23, seed=3)
SIZE = 5


@pytest.fixture
def world() -> World:
    return World(ScriptedGenerator(), shard_size=SIZE)


def test_parts_are_consecutive_ordinals_of_the_shard_size() -> None:
    shards = parts(BIG, SIZE)
    assert [(s.shard, s.first, s.end) for s in shards] == [
        (0, 0, 5),
        (1, 5, 10),
        (2, 10, 15),
        (3, 15, 20),
        (4, 20, 23),
    ]
    assert len({s.key for s in shards}) == 5


async def test_a_large_request_is_planned_once_and_split_without_generating(world: World) -> None:
    assert await world.generation.process(BIG) is RequestState.GENERATING
    published = world.take_published_shards()
    assert [s.shard for s in published] == [0, 1, 2, 3, 4]
    assert world.generator.calls == []
    stored = world.requests.requests[BIG.request_id]
    assert (stored.status, stored.shards) == (RequestState.GENERATING, 5)
    assert stored.plan is not None


async def test_every_shard_delivered_stores_every_ordinal_once_and_settles_the_request(
    world: World,
) -> None:
    await world.generation.process(BIG)
    for shard in reversed(world.take_published_shards()):  # any order, any worker
        await world.generation.process_shard(shard)

    assert world.stored_ordinals() == list(range(23))
    assert len(world.generator.calls) == 23
    assert len(world.stats.counted) == 23
    assert len({e.event_id for e in world.events.created_events}) == 23
    stored = world.requests.requests[BIG.request_id]
    assert (stored.status, stored.settled) == (RequestState.COMPLETED, 1)


async def test_a_copy_of_a_shard_costs_nothing(world: World) -> None:
    await world.generation.process(BIG)
    first = world.take_published_shards()[0]
    await world.generation.process_shard(first)
    await world.generation.process_shard(first)  # a redelivery after it was done
    assert len(world.generator.calls) == 5
    assert len(world.stats.counted) == 5


async def test_a_shard_another_worker_holds_is_skipped_until_its_lease_lapses(
    world: World,
) -> None:
    await world.generation.process(BIG)
    shard = world.take_published_shards()[1]
    assert await world.shards.claim(BIG.request_id, 1, "another-worker", lease_s=60)
    await world.generation.process_shard(shard)
    assert world.generator.calls == []  # the other worker's lease lives

    world.shards.now += 61  # it died: its lease lapsed
    await world.generation.process_shard(shard)
    assert world.stored_ordinals() == [5, 6, 7, 8, 9]


async def test_a_taken_over_shard_generates_only_what_the_dead_worker_did_not_store(
    world: World,
) -> None:
    await world.generation.process(BIG)
    shard = world.take_published_shards()[0]
    await world.generation.process_shard(shard)
    world.shards.shards[(BIG.request_id, 0)].status = "running"  # died before marking it done
    world.shards.shards[(BIG.request_id, 0)].owner = "dead-worker"
    world.shards.now += 61
    await world.generation.process_shard(shard)
    assert len(world.generator.calls) == 5  # all five were stored: no call twice


async def test_a_redelivered_request_publishes_only_the_shards_not_done(world: World) -> None:
    await world.generation.process(BIG)
    shards = world.take_published_shards()
    for shard in shards[:3]:
        await world.generation.process_shard(shard)
    assert await world.generation.process(BIG) is RequestState.GENERATING
    assert [s.shard for s in world.take_published_shards()] == [3, 4]
    assert len(world.generator.calls) == 15


async def test_after_a_cancel_shards_not_started_generate_nothing_and_it_ends_cancelled(
    world: World,
) -> None:
    await world.generation.process(BIG)
    shards = world.take_published_shards()
    await world.generation.process_shard(shards[0])
    world.requests.cancel(BIG)
    for shard in shards[1:]:
        await world.generation.process_shard(shard)
    assert world.stored_ordinals() == [0, 1, 2, 3, 4]
    assert world.requests.requests[BIG.request_id].status is RequestState.CANCELLED


async def test_a_request_no_larger_than_a_shard_runs_whole(world: World) -> None:
    small = PersonaRequested(brief="commuters in Leeds", count=SIZE, seed=3)
    assert await world.generation.process(small) is RequestState.COMPLETED
    assert world.take_published_shards() == []
