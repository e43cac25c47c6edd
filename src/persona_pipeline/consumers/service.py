"""The generation use case: one request in, its personas stored and announced.

Invariants this module keeps (see docs/ARCHITECTURE.md):
- an ordinal already stored is never generated again, so a redelivered request
  costs no second LLM call for it;
- every stored persona of the request is (re)announced on each delivery, because
  a previous delivery may have crashed between storing and publishing;
- the caller commits the Kafka offset only after ``process`` returns.
"""

import asyncio
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loguru import logger

from persona_pipeline.consumers.emitter import EventSink
from persona_pipeline.consumers.generators.base import (
    Generated,
    GenerationError,
    GenerationTask,
    PersonaGenerator,
)
from persona_pipeline.consumers.grounding import DemographicSampler
from persona_pipeline.contracts import (
    Persona,
    PersonaCreated,
    PersonaFailed,
    PersonaRequested,
    RequestState,
)
from persona_pipeline.contracts.persona import persona_id
from persona_pipeline.core.metrics import PipelineMetrics
from persona_pipeline.core.persona_store import PersonaStore
from persona_pipeline.core.request_store import RequestStore
from persona_pipeline.core.stats_store import StatsStore


def now_ms() -> datetime:
    """Now, truncated to what BSON dates keep, so the stored and published times agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass
class GenerationService:
    personas: PersonaStore
    requests: RequestStore
    stats: StatsStore
    sampler: DemographicSampler
    generator: PersonaGenerator
    events: EventSink
    metrics: PipelineMetrics
    concurrency: int
    _slots: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)

    async def process(self, request: PersonaRequested) -> RequestState:
        """Generate what is missing, announce everything; raises on infrastructure errors."""
        await self.requests.mark_generating(request, self.generator.name)
        stored = await self.personas.for_request(request.request_id)
        for persona in stored.values():
            await self.events.created(PersonaCreated.for_persona(persona))
        missing = [o for o in range(request.count) if o not in stored]
        async with asyncio.TaskGroup() as group:
            tasks = {o: group.create_task(self._produce(request, o)) for o in missing}
        failures = {o: reason for o, t in tasks.items() if (reason := t.result()) is not None}
        for ordinal, reason in failures.items():
            event = PersonaFailed.for_ordinal(request.request_id, ordinal, reason, now_ms())
            await self.events.failed(event)
        self.metrics.ordinals_failed.inc(len(failures))
        total = await self.personas.count_for_request(request.request_id)
        state = await self.requests.finish(request, total, failures)
        logger.info(
            "request {} {}: {} stored, {} reused, {} failed",
            request.request_id,
            state.value,
            len(missing) - len(failures),
            len(stored),
            len(failures),
        )
        return state

    async def _produce(self, request: PersonaRequested, ordinal: int) -> str | None:
        """Generate, store and announce one persona; returns a failure reason or ``None``."""
        task = GenerationTask(
            brief=request.brief,
            skeleton=self.sampler.sample(request.constraints, request.effective_seed, ordinal),
            ordinal=ordinal,
            seed=request.effective_seed,
            locale=request.constraints.locale,
        )
        try:
            generated = await self._generate(task)
        except GenerationError as exc:
            logger.warning("ordinal {} of {} failed: {}", ordinal, request.request_id, exc.reason)
            return exc.reason
        persona = Persona.assemble(
            request_id=request.request_id,
            ordinal=ordinal,
            skeleton=task.skeleton,
            draft=generated.draft,
            generator=self.generator.name,
            model=self.generator.model,
            usage=generated.usage,
            created_at=now_ms(),
        )
        await self._store(persona)
        return None

    async def _store(self, persona: Persona) -> None:
        if await self.personas.insert(persona):
            await self.stats.record(persona)
            await self.requests.record_stored(persona.request_id, persona.usage)
            self.metrics.personas_stored.inc()
        else:  # another worker stored it first (a rebalance mid-request): announce theirs
            theirs = await self.personas.get(persona_id(persona.request_id, persona.ordinal))
            persona = theirs or persona
        await self.events.created(PersonaCreated.for_persona(persona))

    async def _generate(self, task: GenerationTask) -> Generated:
        name = self.generator.name
        async with self._slots:
            self.metrics.in_flight.inc()
            started = time.perf_counter()
            try:
                generated = await self.generator.generate(task)
            except GenerationError:
                self.metrics.llm_calls.labels(name, "error").inc()
                raise
            finally:
                self.metrics.in_flight.dec()
                self.metrics.llm_latency.labels(name).observe(time.perf_counter() - started)
        self.metrics.llm_calls.labels(name, "ok").inc()
        model = self.generator.model
        self.metrics.tokens.labels(model, "prompt").inc(generated.usage.prompt_tokens)
        self.metrics.tokens.labels(model, "completion").inc(generated.usage.completion_tokens)
        return generated
