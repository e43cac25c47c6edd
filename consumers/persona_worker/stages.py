"""The stages every generation mode shares: take, plan, ground, dedupe, store, settle.

The synchronous path (``consumers/service.py``) and the Batch API path
(``consumers/batch_generation.py``) differ only in how the model is asked; both take
a request and plan it once here, build each ordinal's task from the same plan cell,
judge answers against the same near-duplicate index, store and announce personas
through the same exactly-once insert, and settle the request (its sums, failure
events and statistics) the same way.
"""

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

from loguru import logger

from persona_audience.planner import Planner
from persona_contracts import (
    GenerationMode,
    Persona,
    PersonaCreated,
    PersonaDraft,
    PersonaFailed,
    PersonaRequested,
    RequestState,
    TokenUsage,
)
from persona_contracts.plan import AudiencePlan, Planning, Source
from persona_infra.documents import brief_key, to_document
from persona_llm.pricing import PriceTable
from persona_worker.batcher import InsertBatcher
from persona_worker.dedup import MinHasher, NearDuplicateIndex, fingerprint_text
from persona_worker.emitter import EventSink
from persona_worker.generators.base import GenerationTask
from persona_worker.grounding import Cell, QuotaSampler
from persona_worker.metrics import PipelineMetrics
from persona_worker.ports import PersonaWrites, RequestWrites, StatsWrites

RECENT_FOR_DEDUP = 300


def now_ms() -> datetime:
    """Now, truncated to what BSON dates keep, so the stored and published times agree."""
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


@dataclass(frozen=True, slots=True)
class DedupPolicy:
    threshold: float
    max_regenerations: int


@dataclass(frozen=True, slots=True)
class Planned:
    """A request's plan and the cell of each ordinal."""

    plan: AudiencePlan
    cells: list[Cell]

    @property
    def locale(self) -> str | None:
        language = self.plan.language
        return None if language.source is Source.DEFAULT else language.code


@dataclass(frozen=True, slots=True)
class Taken:
    """A request a worker took: its plan, what is stored already, the dedup index."""

    planned: Planned
    stored: dict[int, Persona]
    index: NearDuplicateIndex

    def missing(self, ordinals: range) -> list[int]:
        return [ordinal for ordinal in ordinals if ordinal not in self.stored]


@dataclass
class Candidate:
    """One ordinal's answer, judged: the persona and what it took to get it."""

    persona: Persona
    signature: tuple[int, ...]
    attempts: int
    near_duplicates: int


@dataclass
class Outcome:
    """What one pass over a request produced, filled in ordinal by ordinal."""

    personas: dict[int, Persona] = field(default_factory=dict)
    failures: dict[int, str] = field(default_factory=dict)
    retries: int = 0
    near_duplicates: int = 0
    cancelled: bool = False


@dataclass
class Stages:
    personas: PersonaWrites
    requests: RequestWrites
    stats: StatsWrites
    planner: Planner
    sampler: QuotaSampler
    events: EventSink
    metrics: PipelineMetrics
    prices: PriceTable
    dedup: DedupPolicy
    generator_name: str
    model: str
    hasher: MinHasher = field(default_factory=MinHasher)
    inserts: InsertBatcher = field(init=False)

    def __post_init__(self) -> None:
        self.inserts = InsertBatcher(self.personas, on_batch=self.metrics.insert_batch_size.observe)
        if not self.prices.knows(self.model):
            logger.warning("no price for model {}; costs will read 0 (set PRICE_TABLE)", self.model)

    async def take(self, request: PersonaRequested, mode: GenerationMode) -> Taken:
        """Mark the request taken, plan it once, announce what is stored (an earlier
        delivery may have crashed between storing and publishing), index it for dedup.

        Raises ``NotStartedError`` (``request_writes.py``) for a request that is not
        to be started, and ``AudienceError`` for one that cannot be planned."""
        plan = await self.plan_once(request, mode)
        return await self.resume(request, plan, announce=True)

    async def plan_once(self, request: PersonaRequested, mode: GenerationMode) -> AudiencePlan:
        """Mark the request taken; its stored plan, or a new one stored with it."""
        plan = await self.requests.mark_generating(request, self.generator_name, mode)
        if plan is None:
            fresh = await self.planner.plan(request)  # AudienceError: the handler dead-letters
            plan = await self.requests.keep_plan(request.request_id, fresh)
        return plan

    async def resume(
        self,
        request: PersonaRequested,
        plan: AudiencePlan,
        *,
        announce: bool,
        ordinals: range | None = None,
    ) -> Taken:
        """The request's plan cells, stored personas and dedup index, from its stored plan;
        of its ``ordinals`` only (a shard's), when given."""
        planned = Planned(plan, self.sampler.cells(plan, request.count, request.effective_seed))
        stored = await self.personas.for_request(request.request_id, ordinals)
        if announce:
            for persona in stored.values():
                await self.events.created(PersonaCreated.for_persona(persona))
        return Taken(planned, stored, await self._dedup_index(request, stored))

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
                index.add(str(persona.id), self.signature(persona))
        return index

    def task(
        self,
        request: PersonaRequested,
        planned: Planned,
        ordinal: int,
        variant: int = 0,
        previous_error: str | None = None,
    ) -> GenerationTask:
        """The task for one ordinal; ``variant`` draws another skeleton of the same cell."""
        seed = request.effective_seed
        return GenerationTask(
            brief=request.brief,
            skeleton=self.sampler.skeleton(planned.cells[ordinal], seed, ordinal, variant),
            ordinal=ordinal,
            seed=seed,
            locale=planned.locale,
            subject=planned.plan.subject,
            request_id=request.request_id,
            previous_error=previous_error,
            variant=variant,
        )

    def price(self, usage: TokenUsage, *, batch: bool = False) -> float:
        """USD for ``usage`` on this worker's model, at the sync or the batch price."""
        return self.prices.cost(self.model, usage, batch=batch)

    def assemble(
        self,
        request: PersonaRequested,
        task: GenerationTask,
        draft: PersonaDraft,
        usage: TokenUsage,
        *,
        batch: bool = False,
    ) -> Persona:
        """The persona of an accepted answer, its cost at the sync or the batch price."""
        return Persona.assemble(
            request_id=request.request_id,
            ordinal=task.ordinal,
            skeleton=task.skeleton,
            draft=draft,
            generator=self.generator_name,
            model=self.model,
            usage=usage,
            cost_usd=self.price(usage, batch=batch),
            created_at=now_ms(),
        )

    def signature(self, persona: Persona) -> tuple[int, ...]:
        text = fingerprint_text(
            persona.name, persona.occupation, persona.location.city, persona.bio
        )
        return self.hasher.signature(text)

    def judge(
        self, persona: Persona, index: NearDuplicateIndex
    ) -> tuple[tuple[int, ...], str | None]:
        """The persona's signature and the id of the persona it nearly duplicates, if any."""
        signature = self.signature(persona)
        match = index.find(signature)
        if match is not None:
            self.metrics.near_duplicates.inc()
        return signature, match

    @staticmethod
    def accept(candidate: Candidate, duplicate_of: str | None, index: NearDuplicateIndex) -> None:
        """Keep the candidate (marked when it is a near-duplicate kept after the last
        regeneration) and let later answers be judged against it."""
        if duplicate_of is not None:
            candidate.persona = candidate.persona.model_copy(
                update={"near_duplicate_of": uuid.UUID(duplicate_of)}
            )
        index.add(str(candidate.persona.id), candidate.signature)

    async def store(self, request: PersonaRequested, candidate: Candidate) -> Persona:
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

    async def settle(
        self, request: PersonaRequested, plan: AudiencePlan, outcome: Outcome, *, new: int
    ) -> RequestState:
        """Announce the failed ordinals, settle the request's sums, count it in the stats."""
        await self.announce_failures(request, outcome.failures)
        settled = await self.requests.finish(
            request,
            outcome.personas,
            outcome.failures,
            outcome.retries,
            plan.planning,
            cancelled=outcome.cancelled,
        )
        await self.stats.apply(settled.newly_counted, settled.failed_delta, outcome.near_duplicates)
        logger.info(
            "request {} {}: {} new, {} reused, {} failed",
            request.request_id,
            settled.state.value,
            new,
            len(outcome.personas) - new,
            len(outcome.failures),
        )
        return settled.state

    async def announce_failures(self, request: PersonaRequested, failures: dict[int, str]) -> None:
        for ordinal, reason in sorted(failures.items()):
            event = PersonaFailed.for_ordinal(request.request_id, ordinal, reason, now_ms())
            await self.events.failed(event)
        self.metrics.ordinals_failed.inc(len(failures))

    async def settle_cancelled(self, request: PersonaRequested) -> RequestState:
        """End a request whose cancel arrived before this delivery, with what is stored."""
        plan = await self.requests.plan_of(request.request_id)
        stored = await self.personas.for_request(request.request_id)
        planning = plan.planning if plan else Planning(planner="rules")
        settled = await self.requests.finish(request, stored, {}, 0, planning, cancelled=True)
        await self.stats.apply(settled.newly_counted, settled.failed_delta, 0)
        return settled.state
