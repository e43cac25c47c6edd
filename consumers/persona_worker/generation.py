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
- a request in ``batch`` mode is planned and submitted here, then left to the batch
  poller (``consumers/batch_generation.py``); a delivery of a request waiting for its
  batch changes nothing;
- a cancel stops a generating request from starting more personas (seen at the next
  heartbeat); it ends ``cancelled`` with what was stored;
- a request with ``max_cost_usd`` starts personas only while its budget (``budget.py``,
  a shard its share) has room; the ordinals left fail with that reason;
- a synchronous request larger than a shard is planned here and split into shards
  (``sharding.py``), which any worker then generates through ``process_shard``;
- the caller commits the Kafka offset only after ``process`` returns.
"""

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from dataclasses import dataclass, field
from typing import Generic, Protocol, TypeVar

from loguru import logger

from persona_contracts import (
    GenerationMode,
    PersonaRequested,
    RequestState,
    ShardRequested,
    TokenUsage,
)
from persona_contracts.requests import BATCH_STATES
from persona_llm.errors import GenerationError
from persona_worker.budget import Budget
from persona_worker.generators.base import PersonaGenerator
from persona_worker.request_writes import NotStartedError
from persona_worker.sharding import Sharding
from persona_worker.stages import Candidate, Outcome, Stages, Taken

Renew = Callable[[], Awaitable[None]]

K = TypeVar("K", bound=Hashable)


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


class BatchSubmitter(Protocol):
    async def submit(self, request: PersonaRequested, taken: Taken) -> RequestState:
        """Send the request's missing ordinals to the provider's Batch API."""
        ...


@dataclass
class RequestGeneration:
    stages: Stages
    generator: PersonaGenerator
    concurrency: int
    batches: BatchSubmitter | None = None
    """None when the generator has no Batch API: ``batch`` requests then run synchronously."""
    batch_threshold: int | None = None
    heartbeat_s: float = 30.0
    sharding: Sharding | None = None
    """None: every request is generated whole by the worker that takes it."""
    _slots: asyncio.Semaphore = field(init=False)
    _storing: asyncio.Semaphore = field(init=False)
    _running: "KeyedLocks[Hashable]" = field(init=False)

    def __post_init__(self) -> None:
        self._slots = asyncio.Semaphore(self.concurrency)
        self._storing = asyncio.Semaphore(self.concurrency)
        self._running = KeyedLocks()

    def mode_for(self, request: PersonaRequested) -> GenerationMode:
        """The mode the request asks for (or the threshold picks), if this worker can."""
        mode = request.mode
        if mode is None:
            threshold = self.batch_threshold
            # A capped request is counted call by call, so it never goes to a batch.
            batch = threshold is not None and request.count >= threshold
            batch = batch and request.max_cost_usd is None
            mode = GenerationMode.BATCH if batch else GenerationMode.SYNC
        if mode is GenerationMode.BATCH and self.batches is None:
            logger.warning(
                "request {} asks for batch mode, but generator {} has no Batch API: "
                "generating it synchronously",
                request.request_id,
                self.generator.name,
            )
            return GenerationMode.SYNC
        return mode

    @contextlib.asynccontextmanager
    async def _running_alive(
        self, key: Hashable, request: PersonaRequested, outcome: Outcome, lease: Renew | None
    ) -> AsyncIterator[None]:
        """Run one delivery of ``key`` at a time, heartbeating while it runs."""
        async with self._running.hold(key):
            self.stages.metrics.requests_in_flight.inc()
            beating = asyncio.create_task(self._heartbeat(request, outcome, lease))
            try:
                yield
            finally:
                beating.cancel()
                self.stages.metrics.requests_in_flight.dec()

    async def process(self, request: PersonaRequested) -> RequestState:
        """Generate what is missing, announce everything; raises on infrastructure errors."""
        outcome = Outcome()
        async with self._running_alive(request.request_id, request, outcome, None):
            return await self._process(request, outcome)

    async def process_shard(self, shard: ShardRequested) -> None:
        """Generate a shard's missing ordinals unless another worker holds it, then settle
        it (and its request, when it is the last); raises on infrastructure errors."""
        sharding, request = self.sharding, shard.request
        if sharding is None:
            raise RuntimeError("a shard reached a worker built without sharding")
        outcome = Outcome()
        key = (request.request_id, shard.shard)
        async with self._running_alive(key, request, outcome, lambda: sharding.renew(shard)):
            if not await sharding.claim(shard):
                logger.info("shard {} of {} is another worker's", shard.shard, request.request_id)
                return
            plan = await self.stages.requests.plan_of(request.request_id)
            if plan is None:
                raise RuntimeError(f"request {request.request_id} has shards but no plan")
            taken = await self.stages.resume(request, plan, announce=True, ordinals=shard.ordinals)
            outcome.personas.update(taken.stored)
            outcome.cancelled = await self.stages.requests.cancel_requested(request.request_id)
            budget = _budget(request, taken, len(shard.ordinals))
            missing = taken.missing(shard.ordinals)
            await self._produce_all(request, taken, missing, outcome, budget)
            new = len(outcome.personas) - len(taken.stored)
            await sharding.settle(shard, outcome, new)

    async def _heartbeat(
        self, request: PersonaRequested, outcome: Outcome, lease: Renew | None
    ) -> None:
        """Tell the reconciler the request is alive (and renew a shard's ``lease``), and
        learn of a cancel; a failed beat is only logged (the next one, or the settlement,
        moves ``progress_at`` anyway)."""
        requests = self.stages.requests
        while True:
            await asyncio.sleep(self.heartbeat_s)
            try:
                await requests.heartbeat(request.request_id)
                if lease is not None:
                    await lease()
                outcome.cancelled = await requests.cancel_requested(request.request_id)
            except Exception as exc:  # never let a heartbeat fail the request
                logger.warning("heartbeat of request {} failed: {}", request.request_id, exc)

    async def _process(self, request: PersonaRequested, outcome: Outcome) -> RequestState:
        mode = self.mode_for(request)
        sharding = self.sharding if self.sharding and self.sharding.applies(request, mode) else None
        try:
            if sharding is not None:
                return await sharding.split(request, mode)
            taken = await self.stages.take(request, mode)
        except NotStartedError as exc:
            if exc.state in BATCH_STATES or exc.state is RequestState.CANCELLED:
                return exc.state  # the batch poller drives it, or it is over
            if sharding is not None:  # its shards see the cancel, and settle it
                return await sharding.publish_undone(request)
            return await self.stages.settle_cancelled(request)
        missing = taken.missing(range(request.count))
        if mode is GenerationMode.BATCH and missing and self.batches is not None:
            return await self.batches.submit(request, taken)
        outcome.personas.update(taken.stored)
        budget = _budget(request, taken, request.count)
        await self._produce_all(request, taken, missing, outcome, budget)
        new = len(outcome.personas) - len(taken.stored)
        return await self.stages.settle(request, taken.planned.plan, outcome, new=new)

    async def _produce_all(
        self,
        request: PersonaRequested,
        taken: Taken,
        ordinals: list[int],
        outcome: Outcome,
        budget: Budget,
    ) -> None:
        async with asyncio.TaskGroup() as group:
            for ordinal in ordinals:
                group.create_task(self._produce(request, taken, ordinal, outcome, budget))

    async def _produce(
        self,
        request: PersonaRequested,
        taken: Taken,
        ordinal: int,
        outcome: Outcome,
        budget: Budget,
    ) -> None:
        """Generate, store and announce one ordinal, or record why it failed.

        A generation slot is handed over to a storage slot (both ``concurrency``
        wide) once the answer is in, so the next call starts while this one is
        written, and a crash can lose at most twice ``concurrency`` paid answers
        however far storage lags behind. Once a cancel is seen, ordinals not yet
        started are left undone; once the budget is spent, they fail saying so."""
        metrics = self.stages.metrics
        try:
            async with self._slots:
                if outcome.cancelled:
                    return
                if not budget.admit():
                    outcome.failures[ordinal] = budget.reason
                    return
                metrics.in_flight.inc()
                try:
                    candidate = await self._generate_distinct(request, taken, ordinal)
                    await self._storing.acquire()
                finally:
                    metrics.in_flight.dec()
        except GenerationError as exc:
            logger.warning("ordinal {} of {} failed: {}", ordinal, request.request_id, exc.reason)
            outcome.failures[ordinal] = exc.reason
            outcome.retries += exc.attempts - 1
            budget.settle(self.stages.price(exc.usage))
            return
        budget.settle(candidate.persona.cost_usd)
        try:
            outcome.personas[ordinal] = await self.stages.store(request, candidate)
        finally:
            self._storing.release()
        outcome.retries += candidate.attempts - 1
        outcome.near_duplicates += candidate.near_duplicates

    async def _generate_distinct(
        self, request: PersonaRequested, taken: Taken, ordinal: int
    ) -> Candidate:
        """An answer for the ordinal that nearly duplicates no known persona, drawing
        another skeleton of the same cell a bounded number of times."""
        stages = self.stages
        usage, attempts, caught = TokenUsage(), 0, 0
        for variant in range(stages.dedup.max_regenerations + 1):
            task = stages.task(request, taken.planned, ordinal, variant)
            generated = await self.generator.generate(task)
            usage += generated.usage
            attempts += generated.attempts
            persona = stages.assemble(request, task, generated.draft, usage)
            signature, duplicate_of = stages.judge(persona, taken.index)
            if duplicate_of is None:
                break
            caught += 1
        candidate = Candidate(persona, signature, attempts, near_duplicates=caught)
        stages.accept(candidate, duplicate_of, taken.index)
        return candidate


def _budget(request: PersonaRequested, taken: Taken, part: int) -> Budget:
    """The budget of ``part`` of the request's ordinals, less what is stored of them."""
    planning = taken.planned.plan.planning.cost_usd
    budget = Budget.share(request.max_cost_usd, planning, part, request.count)
    budget.already([persona.cost_usd for persona in taken.stored.values()])
    return budget
