"""The synchronous generation use case on in-memory stores: its rules, in milliseconds.

The same rules are proven through the real broker and database by the integration
tests (``test_pipeline.py``, ``test_crash_recovery.py``, ``test_cancel.py``); here each
one is pinned down without servers, so a change that breaks one says which.
"""

import asyncio
from collections.abc import Callable
from dataclasses import replace
from functools import cache

import pytest
from prometheus_client import CollectorRegistry

from persona_audience.gazetteer import Gazetteer
from persona_audience.planner import RulePlanner
from persona_audience.reference import Reference
from persona_contracts import (
    Constraints,
    PersonaDraft,
    PersonaRequested,
    RequestState,
    TokenUsage,
)
from persona_llm.errors import FailureKind, GenerationError
from persona_llm.pricing import PriceTable
from persona_worker.generation import RequestGeneration
from persona_worker.generators.base import Generated, GenerationTask
from persona_worker.grounding import QuotaSampler
from persona_worker.metrics import PipelineMetrics
from persona_worker.request_writes import RequestConflictError
from persona_worker.stages import DedupPolicy, Stages
from tests.support.memory_stores import MemoryPersonas, MemoryRequests, MemoryStats, RecordingSink

Write = Callable[[GenerationTask], PersonaDraft]


def distinct(task: GenerationTask) -> PersonaDraft:
    """A narrative unlike any other task's: ordinal and variant are in every sentence."""
    tag = f"{task.ordinal}-{task.variant}"
    return PersonaDraft(
        name=f"Person {tag}",
        bio=f"Person {tag} keeps bees on roof {tag} and repairs radios number {tag}.",
        interests=[f"hobby {tag}"],
        goals=[f"Finish project {tag} this year."],
        pain_points=[f"Queue {tag} moves slowly."],
    )


class ScriptedGenerator:
    """Writes with ``write``; fails the ordinals in ``failing`` with a fatal error."""

    name = "openai"
    model = "gpt-4o-mini"

    def __init__(self, write: Write = distinct, failing: frozenset[int] = frozenset()) -> None:
        self.write = write
        self.failing = failing
        self.calls: list[tuple[int, int]] = []
        self.gate: asyncio.Event | None = None

    async def generate(self, task: GenerationTask) -> Generated:
        self.calls.append((task.ordinal, task.variant))
        if self.gate is not None:
            await self.gate.wait()
        if task.ordinal in self.failing:
            raise GenerationError("model refused: no", kind=FailureKind.FATAL)
        return Generated(self.write(task), TokenUsage(prompt_tokens=100, completion_tokens=50))

    async def aclose(self) -> None:
        return None


@cache
def sampler() -> QuotaSampler:
    return QuotaSampler(Gazetteer.load(), Reference.load().population)


class World:
    """The use case wired to in-memory stores, as ``create_worker`` wires it to MongoDB."""

    def __init__(self, generator: ScriptedGenerator, heartbeat_s: float = 30.0) -> None:
        self.personas, self.requests, self.stats = MemoryPersonas(), MemoryRequests(), MemoryStats()
        self.events, self.generator = RecordingSink(), generator
        stages = Stages(
            personas=self.personas,
            requests=self.requests,
            stats=self.stats,
            planner=RulePlanner.default(),
            sampler=sampler(),
            events=self.events,
            metrics=PipelineMetrics.create(CollectorRegistry()),
            prices=PriceTable.with_overrides({}),
            dedup=DedupPolicy(threshold=0.9, max_regenerations=2),
            generator_name=generator.name,
            model=generator.model,
        )
        self.generation = RequestGeneration(
            stages=stages, generator=generator, concurrency=4, heartbeat_s=heartbeat_s
        )

    def stored_ordinals(self) -> list[int]:
        return sorted(ordinal for _, ordinal in self.personas.documents)


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
