"""Grounding: sample a persona's demographics before any text is written.

The LLM only writes the narrative; age, gender, place, occupation and
personality come from here, so the mix of personas follows the distribution
table rather than the model's habits (which skew towards young, Western,
tech-adjacent people).

Sampling is deterministic: ``(seed, ordinal, constraints)`` always yields the
same ``Skeleton``, which is what makes a redelivered request reproduce the same
personas. The RNG is seeded from the string ``f"{seed}:{ordinal}"``; string
seeds are hashed with SHA-512 by ``random.Random``, so unlike the salted
built-in ``hash()`` the result is stable across processes and machines.

Every field draws a fixed number of uniforms in a fixed order whatever the
constraints are, so adding, say, a country constraint to a request leaves the
other fields of each ordinal (gender, personality, ...) unchanged.
"""

import bisect
import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from persona_pipeline.consumers.demographics import (
    DEFAULT_TABLE,
    MAX_AGE,
    MIN_AGE,
    CountryEntry,
    DemographicTable,
    NamePool,
    OccupationEntry,
)
from persona_pipeline.contracts import BigFive, Constraints, Location, Skeleton
from persona_pipeline.contracts.persona import Gender

T = TypeVar("T")

TRAIT_MEAN = 0.5
TRAIT_SD = 0.15

# Lowercase words kept lowercase when title-casing an unknown country name.
_PARTICLES = frozenset({"and", "of", "the", "de", "da", "du", "des", "del", "la", "le", "y", "et"})


@dataclass(frozen=True, slots=True)
class _Weighted(Generic[T]):
    """Items with cumulative weights, so a draw costs one uniform and a bisect."""

    items: tuple[T, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Iterable[tuple[T, float]]) -> "_Weighted[T]":
        items, weights = zip(*pairs, strict=True)
        return cls(tuple(items), tuple(itertools.accumulate(weights)))

    def pick(self, u: float) -> T:
        """Map a uniform ``u`` in [0, 1) to an item."""
        index = bisect.bisect_right(self.cumulative, u * self.cumulative[-1])
        return self.items[min(index, len(self.items) - 1)]


@dataclass(frozen=True, slots=True)
class PersonName:
    """A name in parts, so a generator can address the person informally."""

    given: str
    family: str
    family_first: bool = False

    @property
    def full(self) -> str:
        return f"{self.family} {self.given}" if self.family_first else f"{self.given} {self.family}"

    def __str__(self) -> str:
        return self.full


class DemographicSampler:
    """Draws ``Skeleton``s from a ``DemographicTable``, honouring request constraints."""

    def __init__(self, table: DemographicTable = DEFAULT_TABLE) -> None:
        self.table = table
        self._countries = _Weighted.of((c, c.weight) for c in table.countries)
        self._cities = {
            c.code: _Weighted.of((x.name, x.weight) for x in c.cities) for c in table.countries
        }
        self._genders = _Weighted.of(table.genders)
        self._age_density = _age_density(table)
        self._default_ages = (table.age_bands[0].low, table.age_bands[-1].high)
        self._jobs_by_age = {
            age: _jobs_for_age(table.occupations, age) for age in range(MIN_AGE, MAX_AGE + 1)
        }
        self._pools = tuple(table.name_pools.values())
        self._age_tables: dict[tuple[int, int], _Weighted[int]] = {}

    def sample(
        self, constraints: Constraints, seed: int, ordinal: int, variant: int = 0
    ) -> Skeleton:
        """The skeleton of the ``ordinal``-th persona of a request seeded with ``seed``.

        ``variant`` > 0 draws an alternative (used to regenerate a near-duplicate)."""
        rng = random.Random(f"{seed}:{ordinal}" if not variant else f"{seed}:{ordinal}:{variant}")
        u_country, u_city, u_gender, u_age, u_job = (rng.random() for _ in range(5))
        personality = _personality(rng)
        age, occupation = self._age_and_occupation(constraints, u_age, u_job)
        return Skeleton(
            age=age,
            gender=self._genders.pick(u_gender),
            location=self._location(constraints.country, u_country, u_city),
            occupation=occupation,
            personality=personality,
        )

    def sample_name(self, skeleton: Skeleton, rng: random.Random) -> PersonName:
        """A name common in the skeleton's country for its gender.

        Non-binary personas get a given name from either pool. Countries the
        table does not know get a pool chosen at random: without knowing the
        naming culture, variety is more honest than defaulting to one culture.
        """
        pool = self._name_pool(skeleton.location, rng)
        feminine = _uses_female_pool(skeleton.gender, rng)
        givens = pool.female if feminine else pool.male
        given = givens[int(rng.random() * len(givens))]
        index = int(rng.random() * len(pool.family))
        family = (
            pool.family_female[index] if feminine and pool.family_female else pool.family[index]
        )
        return PersonName(given=given, family=family, family_first=pool.family_first)

    def _location(self, query: str | None, u_country: float, u_city: float) -> Location:
        """A table country (constrained or drawn), or the constrained unknown country as given.

        For a country the table does not know there is no city list, so the
        city repeats the country name; generators read a city equal to the
        country as "somewhere in that country".
        """
        country = (
            self._countries.pick(u_country) if query is None else self.table.find_country(query)
        )
        if country is None:
            name = _display_country(query or "")
            return Location(city=name, country=name, country_code=None)
        return Location(
            city=self._cities[country.code].pick(u_city),
            country=country.name,
            country_code=country.code,
        )

    def _age_and_occupation(
        self, constraints: Constraints, u_age: float, u_job: float
    ) -> tuple[int, str]:
        """Age first, then a job that fits it; a forced job narrows the age range instead.

        When a forced job's age span does not overlap the requested range, the
        request wins: the requester knows their audience better than the table.
        """
        low, high = _age_range(constraints, self._default_ages)
        if constraints.occupation is None:
            age = self._age(low, high, u_age)
            return age, self._jobs_by_age[age].pick(u_job).title
        job = self.table.find_occupation(constraints.occupation)
        if job is not None and max(low, job.min_age) <= min(high, job.max_age):
            low, high = max(low, job.min_age), min(high, job.max_age)
        return self._age(low, high, u_age), constraints.occupation.strip()

    def _age(self, low: int, high: int, u: float) -> int:
        """Draw from the table's age density restricted to ``low..high``.

        The restricted tables are cached: a worker sees few distinct ranges,
        and rebuilding one costs more than the rest of a draw.
        """
        ages = self._age_tables.get((low, high))
        if ages is None:
            weights = self._age_density[low - MIN_AGE : high - MIN_AGE + 1]
            ages = _Weighted.of(zip(range(low, high + 1), weights, strict=True))
            self._age_tables[(low, high)] = ages
        return ages.pick(u)

    def _name_pool(self, location: Location, rng: random.Random) -> NamePool:
        country = self._known_country(location)
        return (
            self._pools[int(rng.random() * len(self._pools))]
            if country is None
            else self.table.name_pools[country.region]
        )

    def _known_country(self, location: Location) -> CountryEntry | None:
        if location.country_code is not None:
            found = self.table.find_country(location.country_code)
            if found is not None:
                return found
        return self.table.find_country(location.country)


def _age_range(constraints: Constraints, default: tuple[int, int]) -> tuple[int, int]:
    """The allowed ages; a lone bound outside the default span opens the other end fully.

    ``min_age=90`` alone means 90..100, not an empty range; ``max_age=17``
    alone means 16..17.
    """
    low = default[0] if constraints.min_age is None else constraints.min_age
    high = default[1] if constraints.max_age is None else constraints.max_age
    if low > high:
        if constraints.max_age is None:
            high = MAX_AGE
        else:
            low = MIN_AGE
    return low, high


def _age_density(table: DemographicTable) -> tuple[float, ...]:
    """Per-year weights for every allowed age.

    Ages outside the table's bands (reachable only through constraints) take
    the density of the nearest band, so a 16..17 or 90..100 request still
    samples evenly instead of failing.
    """
    bands = table.age_bands

    def density(age: int) -> float:
        band = next(
            (b for b in bands if b.low <= age <= b.high),
            bands[0] if age < bands[0].low else bands[-1],
        )
        return band.weight / (band.high - band.low + 1)

    return tuple(density(age) for age in range(MIN_AGE, MAX_AGE + 1))


def _jobs_for_age(occupations: Sequence[OccupationEntry], age: int) -> _Weighted[OccupationEntry]:
    """The jobs whose age span includes ``age``; all jobs if none does, rather than failing."""
    fitting = [job for job in occupations if job.min_age <= age <= job.max_age] or list(occupations)
    return _Weighted.of((job, job.weight) for job in fitting)


def _personality(rng: random.Random) -> BigFive:
    """Each trait from a normal around the midpoint, clipped to the 0..1 scale.

    Most people are near the middle on every trait; extremes are rare, which
    keeps personas from all being caricatures.
    """
    openness, conscientiousness, extraversion, agreeableness, neuroticism = (
        round(min(1.0, max(0.0, rng.gauss(TRAIT_MEAN, TRAIT_SD))), 2) for _ in range(5)
    )
    return BigFive(
        openness=openness,
        conscientiousness=conscientiousness,
        extraversion=extraversion,
        agreeableness=agreeableness,
        neuroticism=neuroticism,
    )


def _uses_female_pool(gender: Gender, rng: random.Random) -> bool:
    if gender == "non-binary":
        return rng.random() < 0.5
    return gender == "female"


def _display_country(query: str) -> str:
    """Title-case an all-lowercase country name; keep any casing the requester chose."""
    words = query.split()
    if query != query.lower():
        return " ".join(words)
    return " ".join(
        word if i and word in _PARTICLES else word[:1].upper() + word[1:]
        for i, word in enumerate(words)
    )
