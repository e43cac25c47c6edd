"""HTTP request and response bodies that are not contract models themselves."""

import uuid
from typing import Annotated, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from persona_api.persona_queries import Ordering
from persona_contracts import (
    Constraints,
    GenerationMode,
    Persona,
    PersonaRequested,
    RequestState,
)
from persona_contracts.events import (
    MAX_BRIEF_CHARS,
    MAX_COST_USD,
    MAX_PERSONAS_PER_REQUEST,
    refuse_capped_batch,
)
from persona_contracts.plan import AudiencePlan


class CreatePersonas(BaseModel):
    """Body of ``POST /v1/persona`` and ``POST /v1/plans``."""

    model_config = ConfigDict(extra="forbid")

    brief: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BRIEF_CHARS)
    ]
    count: Annotated[int, Field(ge=1, le=MAX_PERSONAS_PER_REQUEST)] = 1
    constraints: Constraints = Constraints()
    audience: AudiencePlan | None = Field(
        default=None,
        description="A plan to use as it is (e.g. the `plan` of a `POST /v1/plans` answer); "
        "constraints still override it.",
    )
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = None
    mode: GenerationMode | None = Field(
        default=None,
        description="`batch`: through the provider's Batch API, at its lower price, done "
        "within its completion window (24 h); `sync`: personas within seconds. Unset: the "
        "worker's `OPENAI_BATCH_THRESHOLD` decides.",
    )

    max_cost_usd: Annotated[float, Field(gt=0, le=MAX_COST_USD)] | None = Field(
        default=None,
        description="Stop starting personas once this request's LLM calls (planning "
        "included) cost this much (USD, at the worker's price table); the ordinals left "
        "fail saying so. It may be exceeded by the personas already in flight. "
        "Synchronous generation only.",
    )

    @model_validator(mode="after")
    def _capped_only_when_synchronous(self) -> Self:
        refuse_capped_batch(self.mode, self.max_cost_usd)
        return self

    def to_event(self, requested_by: str | None) -> PersonaRequested:
        return PersonaRequested(
            brief=self.brief,
            count=self.count,
            constraints=self.constraints,
            audience=self.audience,
            seed=self.seed,
            mode=self.mode,
            max_cost_usd=self.max_cost_usd,
            requested_by=requested_by,
        )


class Accepted(BaseModel):
    request_id: uuid.UUID
    status: RequestState
    status_url: str


class PersonaPage(BaseModel):
    items: list[Persona]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )
    limit: int
    sort: Ordering
    filters: dict[str, str] = Field(description="The filters this page was computed with.")


class ServiceInfo(BaseModel):
    service: str
    version: str
    generator: str
    model: str
    planner: str
    links: dict[str, str]


class Readiness(BaseModel):
    status: str
    checks: dict[str, str]
