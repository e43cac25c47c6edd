"""The persona: what the worker stores and what ``persona.created`` carries.

``Skeleton`` is the demographic grounding sampled before generation; the LLM
only fills in ``PersonaDraft`` (the narrative fields), so the demographic mix
is controlled by the sampler rather than by the model's biases.
"""

import uuid
from datetime import datetime
from typing import Annotated, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

Gender = Literal["female", "male", "non-binary"]
MIN_AGE = 16
MAX_AGE = 100

ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=120)]
Sentence = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
Score = Annotated[float, Field(ge=0.0, le=1.0)]

PERSONA_NAMESPACE = uuid.UUID("5b0c1d0e-8f3a-4c52-9e61-7a2f4f0d9b11")


def persona_id(request_id: uuid.UUID, ordinal: int) -> uuid.UUID:
    """The id of the ``ordinal``-th persona of a request.

    Deterministic so that a redelivered request maps onto the same documents and
    the same events; that is what makes redelivery harmless.
    """
    return uuid.uuid5(PERSONA_NAMESPACE, f"{request_id}:{ordinal}")


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


CountryCode = Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
"""ISO 3166-1 alpha-2."""
Age = Annotated[int, Field(ge=MIN_AGE, le=MAX_AGE)]


class Location(_Model):
    city: ShortText
    country: ShortText
    country_code: CountryCode | None = Field(
        default=None, description="ISO 3166-1 alpha-2 code when the country is known."
    )
    region: ShortText | None = Field(
        default=None, description="State, province or other region, when the plan named one."
    )


class BigFive(_Model):
    """Big Five (OCEAN) personality scores on a 0..1 scale."""

    openness: Score
    conscientiousness: Score
    extraversion: Score
    agreeableness: Score
    neuroticism: Score


class PlanCell(_Model):
    """The cell of the audience plan a persona was drawn from: one option of each dimension."""

    location: ShortText
    age_band: ShortText
    gender: Gender
    occupation: ShortText
    traits: Annotated[dict[ShortText, ShortText], Field(max_length=4)] = {}


class Skeleton(_Model):
    """Demographics sampled before generation; the generator must respect them."""

    age: Age
    gender: Gender
    location: Location
    occupation: ShortText
    personality: BigFive
    cell: PlanCell | None = None


class PersonaDraft(_Model):
    """The narrative fields a generator writes. Also the LLM's response schema."""

    name: ShortText
    bio: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    interests: Annotated[list[ShortText], Field(min_length=1, max_length=12)]
    goals: Annotated[list[Sentence], Field(min_length=1, max_length=8)]
    pain_points: Annotated[list[Sentence], Field(min_length=1, max_length=8)]
    tags: Annotated[list[ShortText], Field(max_length=12)] = []


class TokenUsage(_Model):
    prompt_tokens: Annotated[int, Field(ge=0)] = 0
    completion_tokens: Annotated[int, Field(ge=0)] = 0
    cached_prompt_tokens: Annotated[int, Field(ge=0)] = Field(
        default=0,
        description="The part of `prompt_tokens` the provider served from its prompt cache "
        "(billed at a lower rate). Absent in personas stored before it was recorded.",
    )

    @model_validator(mode="after")
    def _cached_tokens_are_prompt_tokens(self) -> Self:
        if self.cached_prompt_tokens > self.prompt_tokens:
            raise ValueError("cached_prompt_tokens cannot exceed prompt_tokens (they are a part)")
        return self

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    def __add__(self, other: "TokenUsage") -> "TokenUsage":
        return TokenUsage(
            prompt_tokens=self.prompt_tokens + other.prompt_tokens,
            completion_tokens=self.completion_tokens + other.completion_tokens,
            cached_prompt_tokens=self.cached_prompt_tokens + other.cached_prompt_tokens,
        )


class Persona(_Model):
    """A generated persona as stored and as published in ``persona.created``."""

    id: uuid.UUID
    request_id: uuid.UUID
    ordinal: Annotated[int, Field(ge=0)]
    name: ShortText
    age: Age
    gender: Gender
    location: Location
    occupation: ShortText
    bio: Annotated[str, StringConstraints(min_length=1, max_length=2000)]
    interests: list[ShortText]
    personality: BigFive
    goals: list[Sentence]
    pain_points: list[Sentence]
    tags: list[ShortText]
    created_at: datetime
    generator: Annotated[str, Field(description="`openai` or `offline`.")]
    model: ShortText
    usage: TokenUsage
    cost_usd: Annotated[float, Field(ge=0, description="Priced when generated.")] = 0.0
    near_duplicate_of: uuid.UUID | None = Field(
        default=None,
        description="Set when the persona stayed a near-duplicate of this one after regeneration.",
    )
    plan_cell: PlanCell | None = Field(
        default=None, description="The cell of the request's audience plan it was drawn from."
    )

    @classmethod
    def assemble(
        cls,
        *,
        request_id: uuid.UUID,
        ordinal: int,
        skeleton: Skeleton,
        draft: PersonaDraft,
        generator: str,
        model: str,
        usage: TokenUsage,
        created_at: datetime,
        cost_usd: float = 0.0,
        near_duplicate_of: uuid.UUID | None = None,
    ) -> "Persona":
        """Join the sampled skeleton with the generated draft into one persona."""
        return cls(
            id=persona_id(request_id, ordinal),
            request_id=request_id,
            ordinal=ordinal,
            created_at=created_at,
            generator=generator,
            model=model,
            usage=usage,
            cost_usd=cost_usd,
            near_duplicate_of=near_duplicate_of,
            age=skeleton.age,
            gender=skeleton.gender,
            location=skeleton.location,
            occupation=skeleton.occupation,
            personality=skeleton.personality,
            plan_cell=skeleton.cell,
            **draft.model_dump(),
        )
