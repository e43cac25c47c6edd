"""The reference data no package provides, read from the TOML files in ``data/``.

Occupations with their age spans, the words the brief reader knows (ages, genders,
generations, subjects and their trait dimensions, groups of countries, demonyms) and the
default population shares. Each file is validated when it is read, so a typo fails the
process at start with the file and the field named, never a request later.
"""

import re
import tomllib
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any, Self, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from persona_contracts.persona import MAX_AGE, MIN_AGE, Gender
from persona_contracts.plan import MAX_TRAIT_OPTIONS, AgeBand
from persona_infra.text import fold

_WORD = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")


def terms_in(text: str) -> list[str]:
    """The folded words of ``text``, hyphenated words kept whole."""
    return _WORD.findall(fold(text))


Span = tuple[int, int]
M = TypeVar("M", bound=BaseModel)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _ordered_span(span: Span, what: str) -> Span:
    low, high = span
    if not MIN_AGE <= low <= high <= MAX_AGE:
        raise ValueError(f"{what} {low}-{high} is not an age range within {MIN_AGE}-{MAX_AGE}")
    return span


class OccupationEntry(_Strict):
    title: str
    weight: Annotated[float, Field(ge=0)]
    ages: Span
    family: str
    aliases: tuple[str, ...] = ()
    implies_ages: Span | None = None
    """The ages the occupation states by itself (``students`` are an age group)."""

    @model_validator(mode="after")
    def _spans(self) -> Self:
        _ordered_span(self.ages, f"{self.title}: ages")
        if self.implies_ages is not None:
            _ordered_span(self.implies_ages, f"{self.title}: implies_ages")
        return self

    @property
    def min_age(self) -> int:
        return self.ages[0]

    @property
    def max_age(self) -> int:
        return self.ages[1]


class Occupations(_Strict):
    occupation: Annotated[tuple[OccupationEntry, ...], Field(min_length=1)]


class AudienceWord(_Strict):
    forms: Annotated[tuple[str, ...], Field(min_length=1)]
    ages: Span | None = None
    implies_ages: Span | None = None
    gender: Gender | None = None
    occupation: str | None = None

    @model_validator(mode="after")
    def _span(self) -> Self:
        for span in (self.ages, self.implies_ages):
            if span is not None:
                _ordered_span(span, f"{self.forms[0]}: ages")
        return self


class Generation(_Strict):
    forms: Annotated[tuple[str, ...], Field(min_length=1)]
    born: tuple[int, int]


class TraitTemplate(_Strict):
    name: str
    options: Annotated[tuple[str, ...], Field(min_length=2, max_length=MAX_TRAIT_OPTIONS)]


class SubjectEntry(_Strict):
    forms: Annotated[tuple[str, ...], Field(min_length=1)]
    activity: str
    role: str
    traits: tuple[TraitTemplate, ...] = ()


class PlaceGroup(_Strict):
    forms: Annotated[tuple[str, ...], Field(min_length=1)]
    countries: tuple[str, ...] = ()
    subregions: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _names_some(self) -> Self:
        if not (self.countries or self.subregions):
            raise ValueError(f"place group {self.forms[0]!r} names no country or subregion")
        return self


class CountryPart(_Strict):
    forms: Annotated[tuple[str, ...], Field(min_length=1)]
    country: str
    admin1: str
    name: str


class Lexicon(_Strict):
    audience: tuple[AudienceWord, ...]
    gendered: dict[str, Gender]
    generations: tuple[Generation, ...]
    place_prepositions: tuple[str, ...]
    ambiguous_places: frozenset[str]
    filler: frozenset[str]
    subject: tuple[SubjectEntry, ...]
    generic_trait: TraitTemplate
    place_groups: tuple[PlaceGroup, ...]
    country_parts: tuple[CountryPart, ...]
    country_aliases: dict[str, str]
    demonyms: dict[str, str]

    def subject_of(self, text: str) -> SubjectEntry | None:
        """The subject entry whose longest form occurs in ``text`` as whole words."""
        words = f" {' '.join(terms_in(text))} "
        found = [
            (len(form), entry)
            for entry in self.subject
            for form in entry.forms
            if f" {' '.join(terms_in(form))} " in words
        ]
        return max(found, key=lambda pair: pair[0])[1] if found else None


class Population(_Strict):
    default_countries: Annotated[int, Field(ge=1, le=250)]
    default_min_age: Annotated[int, Field(ge=MIN_AGE, le=MAX_AGE)]
    age_bands: Annotated[tuple[AgeBand, ...], Field(min_length=1)]
    genders: dict[Gender, Annotated[float, Field(gt=0)]]

    @model_validator(mode="after")
    def _covers_every_age(self) -> Self:
        ages = [age for band in self.age_bands for age in range(band.low, band.high + 1)]
        if ages != list(range(MIN_AGE, MAX_AGE + 1)):
            raise ValueError(f"age_bands must cover {MIN_AGE}-{MAX_AGE} once, in order")
        return self

    def age_density(self) -> dict[int, float]:
        """The share of each single year of age."""
        return {
            age: band.share / (band.high - band.low + 1)
            for band in self.age_bands
            for age in range(band.low, band.high + 1)
        }


class ReferenceDataError(RuntimeError):
    """A data file is malformed; the message names the file and the field."""


def _load(name: str, model: type[M]) -> M:
    text = resources.files(__package__).joinpath("data", name).read_text(encoding="utf-8")
    return parse(text, name, model)


def parse(text: str, name: str, model: type[M]) -> M:
    """Read one data file's TOML ``text`` into ``model``; ``name`` goes into the error."""
    try:
        raw: dict[str, Any] = tomllib.loads(text)
        return model.model_validate(raw)
    except (tomllib.TOMLDecodeError, ValidationError) as exc:
        raise ReferenceDataError(f"data/{name} is invalid: {exc}") from exc


@dataclass(frozen=True, slots=True)
class Reference:
    """All the reference data, read once per process."""

    occupations: tuple[OccupationEntry, ...]
    lexicon: Lexicon
    population: Population

    @classmethod
    @cache
    def load(cls) -> "Reference":
        return cls(
            occupations=_load("occupations.toml", Occupations).occupation,
            lexicon=_load("lexicon.toml", Lexicon),
            population=_load("population.toml", Population),
        )
