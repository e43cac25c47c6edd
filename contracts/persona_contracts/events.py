"""Events on the pipeline's topics.

Every event carries ``schema_version``; consumers reject versions they do not
know instead of guessing, and such events land in the dead-letter topic.
"""

import hashlib
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from persona_contracts.persona import MAX_AGE, MIN_AGE, Age, Gender, Persona
from persona_contracts.plan import (
    MAX_AGE_BANDS,
    MAX_OCCUPATIONS,
    AgeBand,
    Ages,
    AudiencePlan,
    Source,
    Weight,
)
from persona_contracts.requests import GenerationMode

SCHEMA_VERSION: Literal[1] = 1
CONTENT_FIELDS = {"brief", "count", "constraints", "audience", "seed"}
MAX_BRIEF_CHARS = 2000
MAX_PERSONAS_PER_REQUEST = 10_000
MAX_COST_USD = 100_000.0

EVENT_NAMESPACE = uuid.UUID("0f6a3c2e-41d7-4b8e-a5a9-3d1c7e9b2f40")


def utcnow() -> datetime:
    return datetime.now(UTC)


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = SCHEMA_VERSION


PlaceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80)]
OccupationName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=2, max_length=80)
]
MAX_WEIGHTED = 50


class Constraints(BaseModel):
    """Explicit demographics; they override what the brief implies.

    Weighted fields (``countries``, ``cities``, ``genders``, ``occupations``) take relative
    weights, e.g. ``{"DE": 0.7, "NL": 0.3}``; ``country`` and ``occupation`` are the
    one-value shorthands of the first and last.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    country: PlaceName | None = Field(
        default=None, description="Country name or ISO 3166-1 alpha-2 code."
    )
    countries: Annotated[dict[PlaceName, Weight], Field(max_length=MAX_WEIGHTED)] | None = Field(
        default=None, description="Countries (names or ISO codes) with relative weights."
    )
    cities: Annotated[dict[PlaceName, Weight], Field(max_length=MAX_WEIGHTED)] | None = Field(
        default=None,
        description="Cities with relative weights; `City, Country` picks among namesakes.",
    )
    genders: Annotated[dict[Gender, Weight], Field(max_length=3)] | None = None
    min_age: Age | None = None
    max_age: Age | None = None
    age_bands: Annotated[list[AgeBand], Field(min_length=1, max_length=MAX_AGE_BANDS)] | None = (
        Field(default=None, description="Age bands with relative weights, e.g. 18-24: 0.4.")
    )
    occupation: OccupationName | None = None
    occupations: (
        Annotated[dict[OccupationName, Weight], Field(max_length=MAX_OCCUPATIONS)] | None
    ) = None
    locale: Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")] | None = Field(
        default=None, description="BCP 47 language tag for the generated text, e.g. `de-DE`."
    )

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        for one, many in (("country", "countries"), ("occupation", "occupations")):
            if getattr(self, one) is not None and getattr(self, many) is not None:
                raise ValueError(f"give `{one}` or `{many}`, not both")
        if self.cities is not None and (self.country or self.countries):
            raise ValueError("give `cities` or countries, not both: a city names its country")
        for name in ("countries", "cities", "genders", "occupations"):
            if getattr(self, name) == {}:
                raise ValueError(f"`{name}` needs at least one entry when given")
        if self.min_age is not None and self.max_age is not None and self.min_age > self.max_age:
            raise ValueError("min_age must not exceed max_age")
        low, high = self.min_age or MIN_AGE, self.max_age or MAX_AGE
        for band in self.age_bands or ():
            if band.low < low or band.high > high:
                raise ValueError(
                    f"age band {band.label} lies outside min_age..max_age ({low}-{high})"
                )
        if self.age_bands is not None:
            Ages(source=Source.CONSTRAINTS, bands=self.age_bands)  # overlapping bands fail here
        return self

    @property
    def is_empty(self) -> bool:
        """True when nothing but (perhaps) the output language is constrained."""
        return not any(value is not None for name, value in self if name != "locale")


def refuse_capped_batch(mode: GenerationMode | None, max_cost_usd: float | None) -> None:
    """A Batch API request is submitted whole, so nothing could stop it at a cap."""
    if mode is GenerationMode.BATCH and max_cost_usd is not None:
        raise ValueError(
            "max_cost_usd caps synchronous generation only: a batch is submitted whole; "
            "leave mode unset or set it to sync"
        )


class PersonaRequested(_Event):
    """Published on ``persona.requests``: please generate ``count`` personas."""

    request_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    brief: Annotated[
        str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_BRIEF_CHARS)
    ] = Field(description="What the personas are for, e.g. `urban cyclists in Berlin`.")
    count: Annotated[int, Field(ge=1, le=MAX_PERSONAS_PER_REQUEST)] = 1
    constraints: Constraints = Constraints()
    audience: AudiencePlan | None = Field(
        default=None,
        description="A whole audience plan (e.g. one `POST /v1/plans` returned) to use instead "
        "of planning; constraints still override it.",
    )
    seed: Annotated[int, Field(ge=0, lt=2**63)] | None = Field(
        default=None, description="Makes grounding (and the offline generator) reproducible."
    )
    mode: GenerationMode | None = Field(
        default=None,
        description="`batch` generates through the provider's Batch API (lower price, "
        "results within its completion window); `sync` one call per persona. Unset: "
        "`batch` at or above the worker's `OPENAI_BATCH_THRESHOLD`, else `sync`. How, not "
        "what: a redelivery with another mode is the same request.",
    )
    max_cost_usd: Annotated[float, Field(gt=0, le=MAX_COST_USD)] | None = Field(
        default=None,
        description="Stop starting personas once the LLM calls of this request (planning "
        "included) have cost this much; the ordinals left fail saying so. Synchronous "
        "generation only (a `batch` request is submitted whole). How much, not what: not "
        "part of the content hash.",
    )
    requested_by: Annotated[str, StringConstraints(max_length=120)] | None = None
    requested_at: datetime = Field(default_factory=utcnow)

    @model_validator(mode="after")
    def _capped_only_when_synchronous(self) -> Self:
        refuse_capped_batch(self.mode, self.max_cost_usd)
        return self

    @property
    def effective_seed(self) -> int:
        """The seed actually used: the given one, or one derived from the request id."""
        return self.seed if self.seed is not None else self.request_id.int % 2**63

    def content_hash(self) -> str:
        """A digest of what the request asks for (brief, count, constraints, audience, seed).

        Two events with one ``request_id`` and the same digest are a redelivery; with
        different digests, a request id reused for other work, which must be refused."""
        asked = self.model_dump(mode="json", include=CONTENT_FIELDS)
        canonical = json.dumps(asked, sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


class ShardRequested(_Event):
    """Published on ``persona.shards`` by a worker: generate ordinals ``first`` to
    ``end - 1`` of ``request``.

    A request of more personas than a shard holds is planned once, then split into
    shards keyed apart, so that every worker of the group takes a part of it. Shards
    are the workers' own traffic; a downstream service needs only ``persona.created``."""

    request: PersonaRequested
    shard: Annotated[int, Field(ge=0)]
    first: Annotated[int, Field(ge=0)]
    end: Annotated[int, Field(ge=1)]

    @model_validator(mode="after")
    def _within_the_request(self) -> Self:
        if not self.first < self.end <= self.request.count:
            raise ValueError(
                f"ordinals {self.first}..{self.end - 1} are not a part of a request of "
                f"{self.request.count}"
            )
        return self

    @property
    def ordinals(self) -> range:
        return range(self.first, self.end)

    @property
    def key(self) -> str:
        """The Kafka key: a request's shards spread over the partitions."""
        return f"{self.request.request_id}:{self.shard}"


class PersonaCreated(_Event):
    """Published on ``persona.created`` once a persona is durably stored."""

    event_id: uuid.UUID
    persona: Persona

    @classmethod
    def for_persona(cls, persona: Persona) -> "PersonaCreated":
        """Build the event with an id derived from the persona, stable across redeliveries."""
        return cls(event_id=uuid.uuid5(EVENT_NAMESPACE, f"created:{persona.id}"), persona=persona)


class PersonaFailed(_Event):
    """Published on ``persona.failed`` when one ordinal of a request could not be generated."""

    event_id: uuid.UUID
    request_id: uuid.UUID
    ordinal: Annotated[int, Field(ge=0)]
    reason: Annotated[str, StringConstraints(max_length=1000)]
    failed_at: datetime

    @classmethod
    def for_ordinal(
        cls, request_id: uuid.UUID, ordinal: int, reason: str, failed_at: datetime
    ) -> "PersonaFailed":
        return cls(
            event_id=uuid.uuid5(EVENT_NAMESPACE, f"failed:{request_id}:{ordinal}"),
            request_id=request_id,
            ordinal=ordinal,
            reason=reason[:1000],
            failed_at=failed_at,
        )
