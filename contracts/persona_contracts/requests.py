"""The lifecycle of a generation request, as reported by ``GET /v1/requests/{id}``.

A synchronous request goes ``pending`` → ``generating`` → final. A request generated
through a provider's Batch API goes ``pending`` → ``generating`` (planning, writing the
batch) → ``batch_submitted`` → ``batch_in_progress`` → final, possibly through several
rounds (a follow-up batch for the ordinals a round did not deliver). ``cancelled`` is
final: what was stored before the cancel stays.
"""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from persona_contracts.plan import AudiencePlan


class GenerationMode(StrEnum):
    """How a request's personas are generated."""

    SYNC = "sync"
    """One call per persona as capacity allows: personas appear within seconds."""
    BATCH = "batch"
    """Through the provider's Batch API: at its lower price and separate limits, within
    its completion window (24 h for OpenAI)."""


class RequestState(StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    BATCH_SUBMITTED = "batch_submitted"
    BATCH_IN_PROGRESS = "batch_in_progress"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def is_final(self) -> bool:
        return self in FINAL_STATES


FINAL_STATES = frozenset(
    {RequestState.COMPLETED, RequestState.PARTIAL, RequestState.FAILED, RequestState.CANCELLED}
)
BATCH_STATES = frozenset({RequestState.BATCH_SUBMITTED, RequestState.BATCH_IN_PROGRESS})


class BatchProgress(BaseModel):
    """The provider batch a request is waiting for."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    id: str = Field(description="The provider's batch id (OpenAI: `batch_...`).")
    round: int = Field(
        description="1 for the first batch; a follow-up batch carries the ordinals an "
        "earlier one did not deliver (expired, invalid answers, near-duplicates)."
    )
    status: str = Field(description="The provider's own status of the batch.")
    total: int = Field(default=0, description="Calls in this batch.")
    completed: int = 0
    failed: int = 0
    submitted_at: datetime


class ShardProgress(BaseModel):
    """How far the shards of a large request are: each is a part that any worker takes."""

    model_config = ConfigDict(frozen=True)

    total: int = Field(description="Shards the request was split into.")
    done: int = Field(description="Shards finished (stored, failed or cancelled).")


class RequestStatus(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    request_id: uuid.UUID
    status: RequestState
    brief: str
    requested: int = Field(description="Personas asked for.")
    stored: int = Field(default=0, description="Personas stored so far.")
    failed: int = Field(default=0, description="Ordinals that could not be generated.")
    failures: dict[str, str] = Field(default_factory=dict, description="Ordinal -> reason.")
    error: str | None = Field(
        default=None, description="Why the request as a whole could not run (it is `failed`)."
    )
    retried: int = Field(default=0, description="Extra generator calls spent on retries.")
    generator: str | None = None
    mode: GenerationMode | None = Field(
        default=None, description="How the worker generates it, once a worker took it."
    )
    batch: BatchProgress | None = Field(
        default=None,
        description="The provider batch of a `batch` request (its last one, once final).",
    )
    shards: ShardProgress | None = Field(
        default=None,
        description="A request of more personas than a shard holds is split into shards.",
    )
    eta_s: float | None = Field(
        default=None,
        description="Seconds until every persona is stored at the pace so far, while it runs.",
    )
    cancel_requested: bool = Field(
        default=False, description="A cancel was asked for; the request ends `cancelled`."
    )
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_prompt_tokens: int = Field(
        default=0, description="The part of `prompt_tokens` served from the provider's cache."
    )
    cost_usd: float = 0.0
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None = None
    finished_at: datetime | None = None
    plan: AudiencePlan | None = Field(
        default=None, description="The audience plan the personas are drawn from, once planned."
    )
