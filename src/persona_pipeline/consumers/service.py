"""The generation use case: one request in, its personas stored and announced.

Invariants this module keeps (see docs/ARCHITECTURE.md):
- an ordinal already stored is never generated again, so a redelivered request
  costs no second LLM call for it;
- every stored persona of the request is (re)announced on each delivery, because
  a previous delivery may have crashed between storing and publishing;
- a near-duplicate (of a sibling or of a recent persona of the same brief) is
  regenerated from a fresh skeleton a bounded number of times, then accepted
  with ``near_duplicate_of`` set;
- the caller commits the Kafka offset only after ``process`` returns.
"""

import asyncio
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loguru import logger

from persona_pipeline.consumers.batcher import InsertBatcher
from persona_pipeline.consumers.dedup import MinHasher, NearDuplicateIndex, fingerprint_text
from persona_pipeline.consumers.emitter import EventSink
from persona_pipeline.consumers.generators.base import (
    GenerationError,
    GenerationTask,
    PersonaGenerator,
)
from persona_pipeline.consumers.grounding import DemographicSampler
from persona_pipeline.contracts import (
    Persona,
    PersonaCreated,
    PersonaDraft,
    PersonaFailed,
    PersonaRequested,
    RequestState,
    TokenUsage,
)
from persona_pipeline.core.documents import brief_key, to_document
from persona_pipeline.core.metrics import PipelineMetrics
from persona_pipeline.core.persona_store import PersonaStore
from persona_pipeline.core.pricing import PriceTable
from persona_pipeline.core.request_store import RequestStore
from persona_pipeline.core.stats_store import StatsStore

RECENT_FOR_DEDUP = 300


def now_ms() -> datetime:
    """Now, truncated to what BSON dates keep, so the stored and published times agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class DedupPolicy:
    threshold: float
    max_regenerations: int


@dataclass
class _Candidate:
    """One ordinal's generation so far, across retries and regenerations."""

    persona: Persona
    signature: tuple[int, ...]
    attempts: int
    near_duplicates: int


@dataclass
class _Outcome:
    """What one delivery of a request produced, filled in by its ordinals' tasks."""

    personas: dict[int, Persona] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    retries: int = 0
    near_duplicates: int = 0


@dataclass
class GenerationService:
    personas: PersonaStore
    requests: RequestStore
    stats: StatsStore
    sampler: DemographicSampler
    generator: PersonaGenerator
    events: EventSink
    metrics: PipelineMetrics
    prices: PriceTable
    dedup: DedupPolicy
    concurrency: int
    hasher: MinHasher = field(default_factory=MinHasher)
    inserts: InsertBatcher = field(init=False)
    _slots: asyncio.Semaphore = field(init=False)
    _storing: asyncio.Semaphore = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)
        self._storing = asyncio.Semaphore(self.concurrency)
        self.inserts = InsertBatcher(self.personas, on_batch=self.metrics.insert_batch_size.observe)
        if not self.prices.knows(self.generator.model):
            logger.warning(
                "no price for model {}; costs will read 0 (set PRICE_TABLE)", self.generator.model
            )

    async def process(self, request: PersonaRequested) -> RequestState:
        """Generate what is missing, announce everything; raises on infrastructure errors."""
        self.metrics.requests_in_flight.inc()
        try:
            return await self._process(request)
        finally:
            self.metrics.requests_in_flight.dec()

    async def _process(self, request: PersonaRequested) -> RequestState:
        await self.requests.mark_generating(request, self.generator.name)
        stored = await self.personas.for_request(request.request_id)
        for persona in stored.values():
            await self.events.created(PersonaCreated.for_persona(persona))
        index = await self._dedup_index(request, stored)
        missing = [o for o in range(request.count) if o not in stored]
        outcome = _Outcome(personas=dict(stored))
        async with asyncio.TaskGroup() as group:
            for ordinal in missing:
                group.create_task(self._produce(request, ordinal, index, outcome))
        for ordinal, reason in sorted(outcome.failures.items()):
            event = PersonaFailed.for_ordinal(request.request_id, ordinal, reason, now_ms())
            await self.events.failed(event)
        self.metrics.ordinals_failed.inc(len(outcome.failures))
        settled = await self.requests.finish(
            request, outcome.personas, outcome.failures, outcome.retries
        )
        await self.stats.apply(settled.newly_counted, settled.failed_delta, outcome.near_duplicates)
        state = settled.state
        logger.info(
            "request {} {}: {} new, {} reused, {} failed",
            request.request_id,
            state.value,
            len(missing) - len(outcome.failures),
            len(stored),
            len(outcome.failures),
        )
        return state

    async def _dedup_index(
        self, request: PersonaRequested, stored: dict[int, Persona]
    ) -> NearDuplicateIndex:
        """Recent personas of the same brief, plus this request's stored ones (their stored
        signatures come with the recent ones unless they fell out of that window)."""
        index = NearDuplicateIndex(self.dedup.threshold)
        recent = await self.personas.recent_signatures(request.brief, RECENT_FOR_DEDUP)
        for key, signature in recent:
            index.add(key, signature)
        indexed = {key for key, _ in recent}
        for persona in stored.values():
            if str(persona.id) not in indexed:
                index.add(str(persona.id), self._signature(persona))
        return index

    def _signature(self, persona: Persona) -> tuple[int, ...]:
        text = fingerprint_text(
            persona.name, persona.occupation, persona.location.city, persona.bio
        )
        return self.hasher.signature(text)

    async def _produce(
        self, request: PersonaRequested, ordinal: int, index: NearDuplicateIndex, outcome: _Outcome
    ) -> None:
        """Generate, store and announce one ordinal, or record why it failed.

        A generation slot is handed over to a storage slot (both ``concurrency``
        wide) once the answer is in, so the next call starts while this one is
        written, and a crash can lose at most twice ``concurrency`` paid answers
        however far storage lags behind."""
        try:
            async with self._slots:
                self.metrics.in_flight.inc()
                try:
                    candidate = await self._generate_distinct(request, ordinal, index)
                    await self._storing.acquire()
                finally:
                    self.metrics.in_flight.dec()
        except GenerationError as exc:
            logger.warning("ordinal {} of {} failed: {}", ordinal, request.request_id, exc.reason)
            outcome.failures[ordinal] = exc.reason
            outcome.retries += exc.attempts - 1
            return
        try:
            outcome.personas[ordinal] = await self._store(request, candidate)
        finally:
            self._storing.release()
        outcome.retries += candidate.attempts - 1
        outcome.near_duplicates += candidate.near_duplicates

    async def _generate_distinct(
        self, request: PersonaRequested, ordinal: int, index: NearDuplicateIndex
    ) -> _Candidate:
        usage, attempts, caught, duplicate_of = TokenUsage(), 0, 0, None
        for variant in range(self.dedup.max_regenerations + 1):
            task = GenerationTask(
                brief=request.brief,
                skeleton=self.sampler.sample(
                    request.constraints, request.effective_seed, ordinal, variant
                ),
                ordinal=ordinal,
                seed=request.effective_seed,
                locale=request.constraints.locale,
                request_id=request.request_id,
                variant=variant,
            )
            generated = await self.generator.generate(task)
            usage += generated.usage
            attempts += generated.attempts
            persona = self._assemble(request, task, generated.draft, usage)
            signature = self._signature(persona)
            match = index.find(signature)
            if match is None:
                duplicate_of = None
                break
            duplicate_of = uuid.UUID(match)
            caught += 1
            self.metrics.near_duplicates.inc()
        if duplicate_of is not None:
            persona = persona.model_copy(update={"near_duplicate_of": duplicate_of})
        index.add(str(persona.id), signature)
        return _Candidate(persona, signature, attempts, near_duplicates=caught)

    def _assemble(
        self,
        request: PersonaRequested,
        task: GenerationTask,
        draft: PersonaDraft,
        usage: TokenUsage,
    ) -> Persona:
        model = self.generator.model
        return Persona.assemble(
            request_id=request.request_id,
            ordinal=task.ordinal,
            skeleton=task.skeleton,
            draft=draft,
            generator=self.generator.name,
            model=model,
            usage=usage,
            cost_usd=self.prices.cost(model, usage),
            created_at=now_ms(),
        )

    async def _store(self, request: PersonaRequested, candidate: _Candidate) -> Persona:
        """Insert and announce; returns the persona as stored (possibly another worker's)."""
        persona = candidate.persona
        document = to_document(
            persona,
            minhash=list(candidate.signature),
            brief_key=brief_key(request.brief),
            near_duplicates=candidate.near_duplicates,  # lets a stats rebuild recount them
        )
        if await self.inserts.insert(document):
            self.metrics.personas_stored.inc()
            self.metrics.cost.labels(persona.model).inc(persona.cost_usd)
        else:  # another worker stored it first (a rebalance mid-request): announce theirs
            theirs = await self.personas.get(persona.id)
            persona = theirs or persona
        await self.events.created(PersonaCreated.for_persona(persona))
        return persona
