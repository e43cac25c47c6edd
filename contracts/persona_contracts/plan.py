"""The audience plan: who the personas of a request will be, decided before any is written.

A planner reads the brief and the constraints into an ``AudiencePlan``; the sampler then
allocates exact quotas from its shares and draws each persona's skeleton inside its cell.
Every dimension says where it came from, so a reader can tell what the brief stated from
what the service filled in. Shares are normalised on validation: pass any positive weights.
"""

import itertools
from enum import StrEnum
from typing import Annotated, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from persona_contracts.persona import (
    MAX_AGE,
    MIN_AGE,
    Age,
    CountryCode,
    Gender,
    ShortText,
    TokenUsage,
)

PLAN_VERSION: Literal[1] = 1
MAX_LOCATIONS = 50
MAX_AGE_BANDS = 12
MAX_OCCUPATIONS = 100
MAX_TRAITS = 4
MAX_TRAIT_OPTIONS = 8
MAX_NOTES = 12

Weight = Annotated[float, Field(gt=0, le=1e12, allow_inf_nan=False)]
"""A relative weight; a dimension's weights are normalised into shares that sum to 1.
A share is a weight too, so a normalised plan reads back from JSON as it was written."""
Note = Annotated[str, StringConstraints(max_length=300)]
Language = Annotated[str, StringConstraints(pattern=r"^[a-z]{2,3}(-[A-Z]{2})?$")]


class Source(StrEnum):
    """Where a dimension of the plan came from."""

    BRIEF = "brief"
    """Stated (or clearly implied) by the brief."""
    CONSTRAINTS = "constraints"
    """Set by the request's explicit constraints, which override the brief's reading."""
    DEFAULT = "default"
    """Left open: real-world shares."""


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ShareOption(_Model):
    share: Weight


class LocationShare(ShareOption):
    """A place: a whole country, a region of it, or one city."""

    country_code: CountryCode
    country: ShortText
    region: ShortText | None = None
    city: ShortText | None = None

    @property
    def label(self) -> str:
        """``Berlin, Germany``, ``Bavaria, Germany`` or ``Germany``."""
        return ", ".join(part for part in (self.city or self.region, self.country) if part)


class AgeBand(ShareOption):
    low: Age
    high: Age

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.low > self.high:
            raise ValueError(f"age band {self.low}-{self.high}: low must not exceed high")
        return self

    @property
    def label(self) -> str:
        return f"{self.low}-{self.high}" if self.low != self.high else str(self.low)


class GenderShare(ShareOption):
    gender: Gender


class OccupationShare(ShareOption):
    """An occupation, with the ages it is plausible at (kept when the brief leaves age open)."""

    title: ShortText
    min_age: Age = MIN_AGE
    max_age: Age = MAX_AGE


class TraitOption(ShareOption):
    value: ShortText


S = TypeVar("S", bound=ShareOption)


SUMS_TO_ONE = 1e-9


def _normalised(options: list[S]) -> list[S]:
    """Weights as shares of their sum, so ``{"DE": 7, "NL": 3}`` reads as 70 % and 30 %;
    an option listed twice is an error, not a silent sum.

    Shares that already sum to 1 (within float error) are kept as they are: dividing
    again moves their last digits, so a plan read back from JSON (a preview passed as
    ``audience``, an event a worker validates) would differ from the one recorded, and
    its request would be refused as other content under the same id."""
    keys = [option.model_dump(exclude={"share"}) for option in options]
    for i, key in enumerate(keys):
        if key in keys[:i]:
            raise ValueError(f"an option is listed twice: {key}")
    total = sum(option.share for option in options)
    if abs(total - 1) <= SUMS_TO_ONE:
        return options
    shares = [option.model_copy(update={"share": option.share / total}) for option in options]
    if any(option.share == 0 for option in shares):
        raise ValueError("weights too far apart: the smallest would be a share of 0")
    return shares


NORMALISED = AfterValidator(_normalised)


class TraitDimension(_Model):
    """An extra way the audience varies, e.g. ``how they ride``: commute / weekend / cargo."""

    name: ShortText
    options: Annotated[
        list[TraitOption], Field(min_length=2, max_length=MAX_TRAIT_OPTIONS), NORMALISED
    ]
    source: Source


class Locations(_Model):
    source: Source
    options: Annotated[
        list[LocationShare], Field(min_length=1, max_length=MAX_LOCATIONS), NORMALISED
    ]


class Ages(_Model):
    source: Source
    bands: Annotated[list[AgeBand], Field(min_length=1, max_length=MAX_AGE_BANDS), NORMALISED]

    @field_validator("bands")
    @classmethod
    def _disjoint(cls, bands: list[AgeBand]) -> list[AgeBand]:
        ordered = sorted(bands, key=lambda band: band.low)
        for before, after in itertools.pairwise(ordered):
            if after.low <= before.high:
                raise ValueError(f"age bands {before.label} and {after.label} overlap")
        return ordered

    @property
    def low(self) -> int:
        return self.bands[0].low

    @property
    def high(self) -> int:
        return self.bands[-1].high


class Genders(_Model):
    source: Source
    options: Annotated[list[GenderShare], Field(min_length=1, max_length=3), NORMALISED]


class Occupations(_Model):
    source: Source
    options: Annotated[
        list[OccupationShare], Field(min_length=1, max_length=MAX_OCCUPATIONS), NORMALISED
    ]


class OutputLanguage(_Model):
    code: Language = "en"
    source: Source = Source.DEFAULT


class Planning(_Model):
    """Who made the plan and what it cost."""

    planner: Literal["rules", "llm", "request"]
    """``request``: the request carried its own plan (``audience``)."""
    model: ShortText | None = None
    usage: TokenUsage = TokenUsage()
    cost_usd: Annotated[float, Field(ge=0)] = 0.0
    notes: Annotated[list[Note], Field(max_length=MAX_NOTES)] = []
    """What the planner dropped or assumed, e.g. a place it does not know."""


class AudiencePlan(_Model):
    """Who the personas of one request are: shares per dimension, each with its source."""

    version: Literal[1] = PLAN_VERSION
    subject: ShortText | None = Field(
        default=None,
        description="What the audience is about, e.g. `urban cycling`; every persona engages "
        "with it in its interests, goals and pain points.",
    )
    locations: Locations
    ages: Ages
    genders: Genders
    occupations: Occupations
    traits: Annotated[list[TraitDimension], Field(max_length=MAX_TRAITS)] = []
    language: OutputLanguage = OutputLanguage()
    planning: Planning = Planning(planner="request")
