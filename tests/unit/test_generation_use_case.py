"""The synchronous generation use case on in-memory stores: its rules, in milliseconds.

The same rules are proven through the real broker and database by the integration
tests (``test_pipeline.py``, ``test_crash_recovery.py``, ``test_cancel.py``); here each
one is pinned down without servers, so a change that breaks one says which.
"""

import asyncio
from dataclasses import replace

import pytest

from persona_contracts import (
    Constraints,
    PersonaDraft,
    PersonaRequested,
    RequestState,
)
from persona_worker.generators.base import GenerationTask
from persona_worker.request_writes import RequestConflictError, final_state
from tests.support.generation_world import ScriptedGenerator, World, distinct

REQUEST = PersonaRequested(brief="beekeepers in Leeds", count=5, seed=7)
# Two personas with the same city and occupation: the same narrative makes them twins.
SAME_CELL = PersonaRequested(
    brief="nurses in Leeds",
    count=2,
    seed=1,
    constraints=Constraints(cities={"Leeds, United Kingdom": 1}, occupation="nurse"),
)


async def test_a_request_stores_announces_and_counts_every_persona_once() -> None:
    world = World(ScriptedGenerator())
    assert await world.generation.process(REQUEST) is RequestState.COMPLETED
    assert world.stored_ordinals() == [0, 1, 2, 3, 4]
    assert sorted(e.persona.ordinal for e in world.events.created_events) == [0, 1, 2, 3, 4]
    assert len(world.stats.counted) == 5
    assert all(p.location.city == "Leeds" for p in world.stats.counted)


async def test_a_redelivery_costs_no_call_reannounces_and_counts_nothing_twice() -> None:
    world = World(ScriptedGenerator())
    await world.generation.process(REQUEST)
    calls = len(world.generator.calls)
    assert await world.generation.process(REQUEST) is RequestState.COMPLETED
    assert len(world.generator.calls) == calls
    assert len(world.events.created_events) == 10, "a crash may have cut the first announce"
    assert len(world.stats.counted) == 5


async def test_a_redelivery_after_a_partial_run_generates_only_what_is_missing() -> None:
    world = World(ScriptedGenerator(failing=frozenset({1, 3})))
    assert await world.generation.process(REQUEST) is RequestState.PARTIAL
    assert world.stats.failed_ordinals == 2
    assert sorted(e.ordinal for e in world.events.failed_events) == [1, 3]
    world.generator.failing = frozenset()
    world.generator.calls.clear()
    assert await world.generation.process(REQUEST) is RequestState.COMPLETED
    assert sorted(world.generator.calls) == [(1, 0), (3, 0)]
    assert world.stats.failed_ordinals == 0, "fixed failures leave the stats"


async def test_a_near_duplicate_is_regenerated_from_another_skeleton() -> None:
    def twins(task: GenerationTask) -> PersonaDraft:
        """Ordinal 1's first answer repeats ordinal 0's."""
        same = task.ordinal == 1 and task.variant == 0
        return distinct(replace(task, ordinal=0) if same else task)

    world = World(ScriptedGenerator(twins))
    await world.generation.process(SAME_CELL)
    assert sorted(world.generator.calls) == [(0, 0), (1, 0), (1, 1)]
    assert world.stats.near_duplicates == 1
    assert all(p.near_duplicate_of is None for p in world.stats.counted)


async def test_a_near_duplicate_after_the_last_regeneration_is_kept_and_marked() -> None:
    world = World(ScriptedGenerator(lambda task: distinct(replace(task, ordinal=0, variant=0))))
    await world.generation.process(SAME_CELL)
    assert sorted(world.generator.calls) == [(0, 0), (1, 0), (1, 1), (1, 2)]
    first, second = sorted(world.stats.counted, key=lambda p: p.ordinal)
    assert second.near_duplicate_of == first.id


async def test_other_content_under_a_stored_request_id_is_refused() -> None:
    world = World(ScriptedGenerator())
    await world.generation.process(REQUEST)
    with pytest.raises(RequestConflictError):
        await world.generation.process(REQUEST.model_copy(update={"brief": "something else"}))


async def test_a_cancel_seen_at_a_heartbeat_stops_starting_personas() -> None:
    generator = ScriptedGenerator()
    generator.gate = asyncio.Event()
    world = World(generator, heartbeat_s=0.01)
    running = asyncio.create_task(
        world.generation.process(REQUEST.model_copy(update={"count": 12}))
    )
    while len(generator.calls) < 4:  # the first wave is in flight (concurrency 4)
        await asyncio.sleep(0.001)
    world.requests.cancel(REQUEST)
    while world.requests.requests[REQUEST.request_id].heartbeats < 2:
        await asyncio.sleep(0.005)
    generator.gate.set()
    assert await running is RequestState.CANCELLED
    assert world.stored_ordinals() == [0, 1, 2, 3]
    assert len(generator.calls) == 4


async def test_a_delivery_after_a_cancel_settles_cancelled_without_a_call() -> None:
    world = World(ScriptedGenerator())
    world.requests.cancel(REQUEST)
    assert await world.generation.process(REQUEST) is RequestState.CANCELLED
    assert world.generator.calls == []


@pytest.mark.parametrize(("stored", "state"), [(5, "completed"), (3, "partial"), (0, "failed")])
def test_final_state_follows_the_stored_count(stored: int, state: str) -> None:
    assert final_state(5, stored).value == state
