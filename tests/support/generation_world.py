"""The generation use case wired to in-memory stores and a scripted generator, as
``create_worker`` wires it to MongoDB, Kafka and an LLM: for unit tests of its rules."""

import asyncio
from collections.abc import Callable
from functools import cache

from prometheus_client import CollectorRegistry

from persona_audience.gazetteer import Gazetteer
from persona_audience.planner import RulePlanner
from persona_audience.reference import Reference
from persona_contracts import PersonaDraft, ShardRequested, TokenUsage
from persona_llm.errors import FailureKind, GenerationError
from persona_llm.pricing import PriceTable
from persona_worker.generation import RequestGeneration
from persona_worker.generators.base import Generated, GenerationTask
from persona_worker.grounding import QuotaSampler
from persona_worker.metrics import PipelineMetrics
from persona_worker.sharding import Sharding
from persona_worker.stages import DedupPolicy, Stages
from tests.support.memory_stores import (
    MemoryPersonas,
    MemoryRequests,
    MemoryShards,
    MemoryStats,
    RecordingShardSink,
    RecordingSink,
)

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

    def __init__(
        self, generator: ScriptedGenerator, heartbeat_s: float = 30.0, shard_size: int = 1000
    ) -> None:
        self.personas, self.requests, self.stats = MemoryPersonas(), MemoryRequests(), MemoryStats()
        self.events, self.generator = RecordingSink(), generator
        self.registry = CollectorRegistry()
        self.metrics = PipelineMetrics.create(self.registry)
        stages = Stages(
            personas=self.personas,
            requests=self.requests,
            stats=self.stats,
            planner=RulePlanner.default(),
            sampler=sampler(),
            events=self.events,
            metrics=self.metrics,
            prices=PriceTable.with_overrides({}),
            dedup=DedupPolicy(threshold=0.9, max_regenerations=2),
            generator_name=generator.name,
            model=generator.model,
        )
        self.shards, self.shard_sink = MemoryShards(), RecordingShardSink()
        self.sharding = Sharding(
            stages=stages,
            shards=self.shards,
            sink=self.shard_sink,
            size=shard_size,
            owner="this-worker",
            lease_s=60.0,
        )
        self.generation = RequestGeneration(
            stages=stages,
            generator=generator,
            concurrency=4,
            heartbeat_s=heartbeat_s,
            sharding=self.sharding,
        )

    def take_published_shards(self) -> list[ShardRequested]:
        published, self.shard_sink.published = self.shard_sink.published, []
        return published

    def stored_ordinals(self) -> list[int]:
        return sorted(ordinal for _, ordinal in self.personas.documents)
