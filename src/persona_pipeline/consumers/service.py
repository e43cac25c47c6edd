"""The generation use case: one request in, its personas stored and announced.

Invariants this module keeps (see docs/ARCHITECTURE.md):
- the request is planned once: a plan stored with the request is reused, so a
  redelivery never asks an LLM planner twice, and the skeletons it yields are the
  same (the cells and each skeleton are deterministic from the plan and the seed);
- an ordinal already stored is never generated again, so a redelivered request
  costs no second LLM call for it;
- every stored persona of the request is (re)announced on each delivery, because
  a previous delivery may have crashed between storing and publishing;
- a near-duplicate (of a sibling or of a recent persona of the same brief) is
  regenerated from a fresh skeleton of the same plan cell a bounded number of times
  (the quotas stay exact), then accepted with ``near_duplicate_of`` set;
- deliveries of one request run one after the other in a worker: a copy that
  arrives while the first runs waits for it, then finds every ordinal stored and
  costs no LLM call (run side by side, both would pay for the missing ordinals);
- while a request generates, a heartbeat moves its ``progress_at`` (every
  ``heartbeat_s``), so the reconciler re-drives only requests that really stalled;
- the caller commits the Kafka offset only after ``process`` returns.
"""

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Hashable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Generic, TypeVar

from loguru import logger

from persona_pipeline.audience.planner import Planner
from persona_pipeline.consumers.batcher import InsertBatcher
from persona_pipeline.consumers.dedup import MinHasher, NearDuplicateIndex, fingerprint_text
from persona_pipeline.consumers.emitter import EventSink
from persona_pipeline.consumers.generators.base import GenerationTask, PersonaGenerator
from persona_pipeline.consumers.grounding import Cell, QuotaSampler
from persona_pipeline.contracts import (
    Persona,
    PersonaCreated,
    PersonaDraft,
    PersonaFailed,
    PersonaRequested,
    RequestState,
    TokenUsage,
)
from persona_pipeline.contracts.plan import AudiencePlan, Source
from persona_pipeline.core.documents import brief_key, to_document
from persona_pipeline.core.metrics import PipelineMetrics
from persona_pipeline.core.persona_store import PersonaStore
from persona_pipeline.core.pricing import PriceTable
from persona_pipeline.core.request_store import RequestStore
from persona_pipeline.core.stats_store import StatsStore
from persona_pipeline.llm.errors import GenerationError

RECENT_FOR_DEDUP = 300
K = TypeVar("K", bound=Hashable)


def now_ms() -> datetime:
    """Now, truncated to what BSON dates keep, so the stored and published times agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class KeyedLocks(Generic[K]):
    """One lock per key, kept only while someone holds or awaits it."""

    def __init__(self) -> None:
        self._locks: dict[K, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: K) -> AsyncIterator[None]:
        lock, users = self._locks.get(key, (asyncio.Lock(), 0))
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


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


@dataclass(frozen=True, slots=True)
class _Planned:
    """A request's plan and the cell of each ordinal."""

    plan: AudiencePlan
    cells: list[Cell]

    @property
    def locale(self) -> str | None:
        language = self.plan.language
        return None if language.source is Source.DEFAULT else language.code


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
    planner: Planner
    sampler: QuotaSampler
    generator: PersonaGenerator
    events: EventSink
    metrics: PipelineMetrics
    prices: PriceTable
    dedup: DedupPolicy
    concurrency: int
    heartbeat_s: float = 30.0
    hasher: MinHasher = field(default_factory=MinHasher)
    inserts: InsertBatcher = field(init=False)
    _slots: asyncio.Semaphore = field(init=False)
    _storing: asyncio.Semaphore = field(init=False)
    _running: "KeyedLocks[uuid.UUID]" = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)
        self._storing = asyncio.Semaphore(self.concurrency)
        self._running = KeyedLocks()
        self.inserts = InsertBatcher(self.personas, on_batch=self.metrics.insert_batch_size.observe)
        if not self.prices.knows(self.generator.model):
            logger.warning(
                "no price for model {}; costs will read 0 (set PRICE_TABLE)", self.generator.model
            )

    async def process(self, request: PersonaRequested) -> RequestState:
        """Generate what is missing, announce everything; raises on infrastructure errors."""
        async with self._running.hold(request.request_id):
            self.metrics.requests_in_flight.inc()
            beating = asyncio.create_task(self._heartbeat(request))
            try:
                return await self._process(request)
            finally:
                beating.cancel()
                self.metrics.requests_in_flight.dec()

    async def _heartbeat(self, request: PersonaRequested) -> None:
        """Tell the reconciler the request is alive; a failed beat is only logged (the
        next one, or the settlement, moves ``progress_at`` anyway)."""
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await self.requests.heartbeat(request.request_id)
            except Exception as exc:  # never let a heartbeat fail the request
                logger.warning("heartbeat of request {} failed: {}", request.request_id, exc)

    async def _process(self, request: PersonaRequested) -> RequestState:
        plan = await self.requests.mark_generating(request, self.generator.name)
        if plan is None:
            fresh = await self.planner.plan(request)  # AudienceError: the handler dead-letters
            plan = await self.requests.keep_plan(request.request_id, fresh)
        planned = _Planned(plan, self.sampler.cells(plan, request.count, request.effective_seed))
        stored = await self.personas.for_request(request.request_id)
        for persona in stored.values():
            await self.events.created(PersonaCreated.for_persona(persona))
        index = await self._dedup_index(request, stored)
        missing = [o for o in range(request.count) if o not in stored]
        outcome = _Outcome(personas=dict(stored))
        async with asyncio.TaskGroup() as group:
            for ordinal in missing:
                group.create_task(self._produce(request, planned, ordinal, index, outcome))
        for ordinal, reason in sorted(outcome.failures.items()):
            event = PersonaFailed.for_ordinal(request.request_id, ordinal, reason, now_ms())
            await self.events.failed(event)
        self.metrics.ordinals_failed.inc(len(outcome.failures))
        settled = await self.requests.finish(
            request, outcome.personas, outcome.failures, outcome.retries, plan.planning
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
        self,
        request: PersonaRequested,
        planned: _Planned,
        ordinal: int,
        index: NearDuplicateIndex,
        outcome: _Outcome,
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
                    candidate = await self._generate_distinct(request, planned, ordinal, index)
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
        self,
        request: PersonaRequested,
        planned: _Planned,
        ordinal: int,
        index: NearDuplicateIndex,
    ) -> _Candidate:
        usage, attempts, caught, duplicate_of = TokenUsage(), 0, 0, None
        seed = request.effective_seed
        for variant in range(self.dedup.max_regenerations + 1):
            task = GenerationTask(
                brief=request.brief,
                skeleton=self.sampler.skeleton(planned.cells[ordinal], seed, ordinal, variant),
                ordinal=ordinal,
                seed=seed,
                locale=planned.locale,
                subject=planned.plan.subject,
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
