"""Batch mode: a request's personas generated through the provider's Batch API.

The Kafka delivery plans the request (``Stages.take``, as for the synchronous path),
writes one Chat Completions call per missing ordinal, submits them as one batch and
records the batch on the request document (``batch``), then returns, so the offset is
committed at once although the batch may take hours. From then on the request belongs
to the ``BatchPoller``: every ``OPENAI_BATCH_POLL_S`` the worker that claims it (a
short lease on the document, so of several workers one polls) looks at the batch and
records its progress; once it is final, the answers are read exactly as a synchronous
answer is (``StructuredChat.read_answer``), judged against the same near-duplicate
index and stored through the same exactly-once insert, at the batch price.

What a round did not deliver (an expired or failed call, an invalid answer, a
near-duplicate) goes into a follow-up batch, with the rejection fed back or another
skeleton drawn, up to ``OPENAI_BATCH_MAX_ROUNDS`` rounds; then those ordinals fail
with their last reason. Everything needed to go on lives in the request document and
the provider: a worker killed at any point is replaced by the next poll, which finds
the batch by id (or, if the kill came between creating a batch and recording it, by
the request id and round in its metadata), so nothing is submitted twice. A cancel
cancels the batch; what it had answered is stored and the request ends ``cancelled``.
"""

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from loguru import logger
from openai import AsyncOpenAI
from pydantic import BaseModel, ConfigDict

from persona_contracts import PersonaRequested, RequestState, TokenUsage
from persona_contracts.events import utcnow
from persona_contracts.plan import AudiencePlan
from persona_llm.batch_api import BatchApi, BatchApiError, BatchSnapshot, LineResult
from persona_llm.errors import FailureKind, GenerationError
from persona_worker.generators.base import Generated, GenerationTask
from persona_worker.ports import BatchRequestWrites
from persona_worker.stages import Candidate, Outcome, Stages, Taken

CLAIM_LIMIT = 20
"""Batch requests one worker polls per round."""
BATCH_GENERATOR = "batch"
"""The ``generator`` label of batch calls in ``persona_llm_calls_total``."""
METADATA_REQUEST = "persona_request_id"
METADATA_ROUND = "persona_round"


@runtime_checkable
class BatchLines(Protocol):
    """A generator whose calls can go into a batch: the body of a task's call, and the
    reading of an answer to it (the synchronous path's validation)."""

    @property
    def client(self) -> AsyncOpenAI: ...

    def batch_line(self, task: GenerationTask) -> dict[str, Any]: ...

    def read(self, body: Any) -> Generated: ...


class PendingOrdinal(BaseModel):
    """An ordinal a batch carries, with what earlier rounds learned about it."""

    model_config = ConfigDict(extra="ignore")

    variant: int = 0
    error: str | None = None
    """Why the previous answer was rejected; fed back to the model."""
    last_reason: str | None = None
    """Why the previous round did not deliver it (the failure reason if none will)."""
    usage: TokenUsage = TokenUsage()
    """Tokens paid for its rejected answers so far."""
    attempts: int = 0
    duplicates: int = 0


class BatchRecord(BaseModel):
    """The request document's ``batch``: the provider batch and the ordinals it carries."""

    model_config = ConfigDict(extra="ignore")

    id: str
    round: int
    status: str
    total: int = 0
    completed: int = 0
    failed: int = 0
    submitted_at: datetime
    pending: dict[str, PendingOrdinal]
    retries: int = 0
    """Calls spent on retries by earlier rounds, settled with the request."""
    near_duplicates: int = 0


def _state_of(snapshot: BatchSnapshot) -> RequestState:
    running = snapshot.is_running or snapshot.is_final
    return RequestState.BATCH_IN_PROGRESS if running else RequestState.BATCH_SUBMITTED


def _progress(snapshot: BatchSnapshot) -> dict[str, Any]:
    return {
        "status": snapshot.status,
        "total": snapshot.total,
        "completed": snapshot.completed,
        "failed": snapshot.failed,
    }


def _custom_id(ordinal: int, variant: int) -> str:
    return f"{ordinal}-{variant}"


@dataclass
class _Round:
    """What reading one final batch produced."""

    outcome: Outcome
    carried: dict[str, PendingOrdinal] = field(default_factory=dict)


@dataclass
class BatchGeneration:
    stages: Stages
    requests: BatchRequestWrites
    lines: BatchLines
    api: BatchApi
    poll_s: float
    max_rounds: int

    async def submit(self, request: PersonaRequested, taken: Taken) -> RequestState:
        """Send the request's missing ordinals as its first batch."""
        pending = {str(o): PendingOrdinal() for o in taken.missing(range(request.count))}
        record = BatchRecord(id="", round=0, status="", submitted_at=utcnow(), pending={})
        return await self._submit_round(request, taken, record, pending)

    async def _submit_round(
        self,
        request: PersonaRequested,
        taken: Taken,
        previous: BatchRecord,
        pending: dict[str, PendingOrdinal],
        outcome: Outcome | None = None,
    ) -> RequestState:
        """Submit (or find, after a crash) the next round's batch and record it; a batch
        the provider refuses for good fails the ordinals it carried."""
        number = previous.round + 1
        metadata = {METADATA_REQUEST: str(request.request_id), METADATA_ROUND: str(number)}
        since = request.requested_at - timedelta(hours=1)
        try:
            snapshot = await self.api.find(metadata, since) or await self.api.submit(
                self._bodies(request, taken, pending), metadata
            )
        except BatchApiError as exc:
            if exc.retryable:
                raise  # the caller tries again later; nothing was recorded
            outcome = outcome or Outcome(personas=dict(taken.stored))
            outcome.failures.update({int(key): exc.reason for key in pending})
            return await self._settle(request, taken, previous, outcome)
        record = BatchRecord(
            id=snapshot.id,
            round=number,
            submitted_at=utcnow(),
            pending=pending,
            retries=previous.retries + (outcome.retries if outcome else 0),
            near_duplicates=previous.near_duplicates + (outcome.near_duplicates if outcome else 0),
            **_progress(snapshot),
        )
        state = _state_of(snapshot)
        await self.requests.mark_batch(
            request.request_id, state, record.model_dump(mode="json"), self.poll_s
        )
        logger.info(
            "request {} round {}: batch {} with {} call(s)",
            request.request_id,
            number,
            snapshot.id,
            len(pending),
        )
        return state

    def _bodies(
        self, request: PersonaRequested, taken: Taken, pending: Mapping[str, PendingOrdinal]
    ) -> dict[str, dict[str, Any]]:
        bodies = {}
        for key, state in pending.items():
            task = self.stages.task(request, taken.planned, int(key), state.variant, state.error)
            bodies[_custom_id(task.ordinal, state.variant)] = self.lines.batch_line(task)
        return bodies

    async def advance(self, doc: Mapping[str, Any]) -> None:
        """One poll of a request's batch: record its progress, or, once it is final, store
        what it answered and submit a follow-up round or settle the request."""
        request = PersonaRequested.model_validate(doc["event"])
        record = BatchRecord.model_validate(doc["batch"])
        plan = AudiencePlan.model_validate(doc["plan"])
        cancel = bool(doc.get("cancel_requested"))
        with logger.contextualize(request_id=str(request.request_id)):
            snapshot: BatchSnapshot | None = None
            try:
                snapshot = await self._look(record, cancel)
            except BatchApiError as exc:
                if exc.retryable:
                    raise
                reason = exc.reason
            if snapshot is not None and not snapshot.is_final:
                await self.requests.batch_polled(
                    request.request_id, _state_of(snapshot), _progress(snapshot), self.poll_s
                )
                return
            taken = await self.stages.resume(request, plan, announce=False)
            if snapshot is None:
                read = self._lost(taken, record, reason)
            else:
                read = await self._read(request, taken, record, snapshot)
            await self._conclude(request, taken, record, read, cancel)

    async def _look(self, record: BatchRecord, cancel: bool) -> BatchSnapshot:
        snapshot = await self.api.retrieve(record.id)
        if cancel and not snapshot.is_final and snapshot.status != "cancelling":
            logger.info("cancelling batch {}", record.id)
            snapshot = await self.api.cancel(record.id)
        return snapshot

    def _lost(self, taken: Taken, record: BatchRecord, reason: str) -> _Round:
        """The batch cannot be read (the provider refuses for good): its ordinals fail."""
        outcome = Outcome(personas=dict(taken.stored))
        for key in record.pending:
            if int(key) not in taken.stored:
                outcome.failures[int(key)] = reason
        return _Round(outcome)

    async def _read(
        self,
        request: PersonaRequested,
        taken: Taken,
        record: BatchRecord,
        snapshot: BatchSnapshot,
    ) -> _Round:
        """Store the answers of a final batch; carry what it did not deliver."""
        results = {result.custom_id: result for result in await self.api.results(snapshot)}
        read = _Round(Outcome(personas=dict(taken.stored)))
        async with asyncio.TaskGroup() as storing:  # inserts batch up, as on the sync path
            for key, state in record.pending.items():
                ordinal = int(key)
                if ordinal in taken.stored:  # stored by an earlier pass over this batch
                    continue
                result = results.get(_custom_id(ordinal, state.variant))
                if snapshot.status == "failed":
                    read.outcome.failures[ordinal] = f"the batch failed: {snapshot.error or '?'}"
                elif result is None:
                    reason = f"the batch ended {snapshot.status} before this call ran"
                    read.carried[key] = state.model_copy(update={"last_reason": reason})
                else:
                    storing.create_task(self._judge(request, taken, ordinal, state, result, read))
        return read

    async def _judge(
        self,
        request: PersonaRequested,
        taken: Taken,
        ordinal: int,
        state: PendingOrdinal,
        result: LineResult,
        read: _Round,
    ) -> None:
        """Store one answer, or carry its ordinal into the next round (or fail it)."""
        key, stages = str(ordinal), self.stages
        try:
            if result.error is not None:
                raise result.error
            generated = self.lines.read(result.body)
        except GenerationError as exc:
            stages.metrics.count_call(BATCH_GENERATOR, exc.kind.value, stages.model, exc.usage)
            self._carry(read, key, state, exc)
            return
        stages.metrics.count_call(BATCH_GENERATOR, "ok", stages.model, generated.usage)
        usage = state.usage + generated.usage
        attempts = state.attempts + 1
        task = stages.task(request, taken.planned, ordinal, state.variant, state.error)
        persona = stages.assemble(request, task, generated.draft, usage, batch=True)
        signature, duplicate_of = stages.judge(persona, taken.index)
        caught = state.duplicates + (duplicate_of is not None)
        if duplicate_of is not None and state.duplicates < stages.dedup.max_regenerations:
            read.carried[key] = PendingOrdinal(
                variant=state.variant + 1,
                last_reason=f"a near-duplicate of persona {duplicate_of}",
                usage=usage,
                attempts=attempts,
                duplicates=caught,
            )
            return
        candidate = Candidate(persona, signature, attempts, near_duplicates=caught)
        stages.accept(candidate, duplicate_of, taken.index)
        read.outcome.personas[ordinal] = await stages.store(request, candidate)
        read.outcome.retries += attempts - 1
        read.outcome.near_duplicates += caught

    @staticmethod
    def _carry(read: _Round, key: str, state: PendingOrdinal, exc: GenerationError) -> None:
        if exc.kind is FailureKind.FATAL:
            read.outcome.failures[int(key)] = exc.reason
            read.outcome.retries += state.attempts
            return
        invalid = exc.kind is FailureKind.INVALID_OUTPUT
        read.carried[key] = state.model_copy(
            update={
                "error": exc.reason if invalid else state.error,
                "last_reason": exc.reason,
                "usage": state.usage + exc.usage,
                "attempts": state.attempts + invalid,
            }
        )

    async def _conclude(
        self,
        request: PersonaRequested,
        taken: Taken,
        record: BatchRecord,
        read: _Round,
        cancel: bool,
    ) -> None:
        outcome = read.outcome
        if cancel:
            outcome.cancelled = True
        elif read.carried and record.round < self.max_rounds:
            await self._submit_round(request, taken, record, read.carried, outcome)
            return
        else:
            for key, state in read.carried.items():
                outcome.failures[int(key)] = state.last_reason or "not delivered by the batch"
                outcome.retries += state.attempts
        await self._settle(request, taken, record, outcome)

    async def _settle(
        self,
        request: PersonaRequested,
        taken: Taken,
        record: BatchRecord,
        outcome: Outcome,
    ) -> RequestState:
        """Settle with every round's retries and near-duplicates."""
        outcome.retries += record.retries
        outcome.near_duplicates += record.near_duplicates
        new = len(outcome.personas) - len(taken.stored)
        return await self.stages.settle(request, taken.planned.plan, outcome, new=new)


def batch_generation(
    generator: object,
    stages: Stages,
    requests: BatchRequestWrites,
    *,
    poll_s: float,
    max_rounds: int,
) -> BatchGeneration | None:
    """Batch mode for ``generator``, or None when it cannot batch (the offline one)."""
    if not isinstance(generator, BatchLines):
        return None
    api = BatchApi(generator.client)
    return BatchGeneration(stages, requests, generator, api, poll_s, max_rounds)


@dataclass
class BatchPoller:
    """Polls the batches of every batch-mode request, each by one worker at a time."""

    batches: BatchGeneration
    interval_s: float
    owner: str
    """This worker's name on the batches it claims (one per process)."""
    _task: asyncio.Task[None] | None = field(default=None, init=False)

    @property
    def lease_s(self) -> float:
        """How long a claim lasts: a worker that dies mid-poll delays its batch this long."""
        return max(3 * self.interval_s, 30.0)

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="batch-poller")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.run_once()
            except Exception as exc:  # the database is away: try next round
                logger.warning("batch poll round failed: {}", exc)
            await asyncio.sleep(self.interval_s)

    async def run_once(self) -> int:
        """Poll every batch due now; returns how many were polled."""
        requests = self.batches.requests
        claimed = await requests.claim_due_batches(self.owner, self.lease_s, CLAIM_LIMIT)
        for doc in claimed:
            try:
                await self.batches.advance(doc)
            except Exception as exc:  # a provider or database hiccup: the claim runs out
                logger.warning("polling the batch of request {} failed: {}", doc["_id"], exc)
        return len(claimed)
