"""The lifecycle of a generation request, as reported by ``GET /v1/requests/{id}``."""

import uuid
from datetime import datetime
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from persona_pipeline.contracts.plan import AudiencePlan


class RequestState(StrEnum):
    PENDING = "pending"
    GENERATING = "generating"
    COMPLETED = "completed"
    PARTIAL = "partial"
    FAILED = "failed"

    @property
    def is_final(self) -> bool:
        return self in {RequestState.COMPLETED, RequestState.PARTIAL, RequestState.FAILED}


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
