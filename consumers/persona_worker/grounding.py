"""Grounding: the personas of a request drawn from its audience plan, before any text is written.

Two steps. ``cells`` turns the plan into exact quotas per dimension (largest remainder,
``audience.quotas``) and deals them out to the request's ordinals, so 20 personas
planned 60 % female are 12 women, not "about 12"; occupations are then paired with age
bands they fit (a student is not dealt an 80-year-old's band when a swap can avoid it).
``skeleton`` draws what a cell leaves open: the exact age inside the band (by the
world's age structure, inside the occupation's span), the city inside a region or
country (by population), and the Big Five personality.

Everything is deterministic from ``(plan, count, seed)`` and ``(seed, ordinal, variant)``:
``random.Random`` seeded with a string hashes it with SHA-512, so unlike the salted
``hash()`` the result is the same in every process. That is what makes a redelivered
request reproduce the same skeletons on any worker.
"""

import bisect
import itertools
import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from persona_audience.gazetteer import City, Gazetteer
from persona_audience.quotas import allocate
from persona_audience.reference import Population
from persona_contracts import BigFive, Location, Skeleton
from persona_contracts.persona import Gender, PlanCell
from persona_contracts.plan import (
    AgeBand,
    AudiencePlan,
    LocationShare,
    OccupationShare,
    ShareOption,
)

T = TypeVar("T")
Option = TypeVar("Option", bound=ShareOption)

TRAIT_MEAN = 0.5
TRAIT_SD = 0.15


@dataclass(frozen=True, slots=True)
class Cell:
    """One option of every dimension of the plan: what one persona is dealt."""

    location: LocationShare
    band: AgeBand
    gender: Gender
    occupation: OccupationShare
    traits: tuple[tuple[str, str], ...]

    def as_contract(self) -> PlanCell:
        return PlanCell(
            location=self.location.label,
            age_band=self.band.label,
            gender=self.gender,
            occupation=self.occupation.title,
            traits=dict(self.traits),
        )


@dataclass(frozen=True, slots=True)
class _Weighted(Generic[T]):
    """Items with cumulative weights: a draw costs one uniform and a bisect."""

    items: tuple[T, ...]
    cumulative: tuple[float, ...]

    @classmethod
    def of(cls, pairs: Sequence[tuple[T, float]]) -> "_Weighted[T]":
        items, weights = zip(*pairs, strict=True)
        return cls(tuple(items), tuple(itertools.accumulate(weights)))

    def pick(self, u: float) -> T:
        """Map a uniform ``u`` in [0, 1) to an item."""
        index = bisect.bisect_right(self.cumulative, u * self.cumulative[-1])
        return self.items[min(index, len(self.items) - 1)]


class QuotaSampler:
    """Deals a plan's quotas to ordinals and draws each ordinal's skeleton."""

    def __init__(self, gazetteer: Gazetteer, population: Population) -> None:
        self._gazetteer = gazetteer
        self._density = population.age_density()
        self._cities: dict[tuple[str, str | None], _Weighted[City]] = {}
        self._ages: dict[tuple[int, int], _Weighted[int]] = {}

    def cells(self, plan: AudiencePlan, count: int, seed: int) -> list[Cell]:
        """The cell of each of ``count`` ordinals: exact quotas, dealt in a seeded order."""
        rng = random.Random(f"cells:{seed}")
        locations = _dealt(plan.locations.options, count, rng)
        bands = _dealt(plan.ages.bands, count, rng)
        genders = _dealt(plan.genders.options, count, rng)
        jobs = _dealt(plan.occupations.options, count, rng)
        traits = [_dealt(trait.options, count, rng) for trait in plan.traits]
        _pair_jobs_with_ages(jobs, bands)
        return [
            Cell(
                location=locations[i],
                band=bands[i],
                gender=genders[i].gender,
                occupation=jobs[i],
                traits=tuple(
                    (trait.name, dealt[i].value)
                    for trait, dealt in zip(plan.traits, traits, strict=True)
                ),
            )
            for i in range(count)
        ]

    def skeleton(self, cell: Cell, seed: int, ordinal: int, variant: int = 0) -> Skeleton:
        """The ``ordinal``-th persona inside its cell; ``variant`` > 0 draws another one
        from the same cell (to regenerate a near-duplicate without breaking the quotas)."""
        rng = random.Random(f"{seed}:{ordinal}" if not variant else f"{seed}:{ordinal}:{variant}")
        u_age, u_city = rng.random(), rng.random()
        return Skeleton(
            age=self._age(cell, u_age),
            gender=cell.gender,
            location=self._location(cell.location, u_city),
            occupation=cell.occupation.title,
            personality=_personality(rng),
            cell=cell.as_contract(),
        )

    def _age(self, cell: Cell, u: float) -> int:
        """An age in the band, inside the occupation's span when the two overlap; each year
        as likely as its share of the world's population."""
        band, job = cell.band, cell.occupation
        low, high = max(band.low, job.min_age), min(band.high, job.max_age)
        if low > high:  # the brief stated both and they disagree: the stated age wins
            low, high = band.low, band.high
        table = self._ages.get((low, high))
        if table is None:
            table = _Weighted.of([(age, self._density[age]) for age in range(low, high + 1)])
            self._ages[(low, high)] = table
        return table.pick(u)

    def _location(self, place: LocationShare, u: float) -> Location:
        """The place itself for a city; otherwise a city of the region or country, the more
        populous the likelier. A territory without a listed city is its own city."""
        city = place.city
        if city is None:
            table = self._city_table(place)
            city = table.pick(u).name if table is not None else place.country
        return Location(
            city=city, country=place.country, country_code=place.country_code, region=place.region
        )

    def _city_table(self, place: LocationShare) -> _Weighted[City] | None:
        key = (place.country_code, place.region)
        if key not in self._cities:
            cities = self._cities_for(place)
            if not cities:
                return None
            self._cities[key] = _Weighted.of([(c, max(c.population, 1)) for c in cities])
        return self._cities[key]

    def _cities_for(self, place: LocationShare) -> Sequence[City]:
        if place.region is None:
            return self._gazetteer.cities_of(place.country_code)
        for found in self._gazetteer.lookup(place.region):
            if found.region is not None and found.country_code == place.country_code:
                return self._gazetteer.cities_in(found.region)
        return self._gazetteer.cities_of(place.country_code)


def _dealt(options: Sequence[Option], count: int, rng: random.Random) -> list[Option]:
    """Each option repeated by its exact quota, in a seeded random order."""
    shares = [option.share for option in options]
    dealt = [
        option for option, n in zip(options, allocate(shares, count), strict=True) for _ in range(n)
    ]
    for i in range(len(dealt) - 1, 0, -1):  # Fisher-Yates on rng.random(): stable everywhere
        j = int(rng.random() * (i + 1))
        dealt[i], dealt[j] = dealt[j], dealt[i]
    return dealt


def _fits(job: OccupationShare, band: AgeBand) -> bool:
    return job.min_age <= band.high and job.max_age >= band.low


def _pair_jobs_with_ages(jobs: list[OccupationShare], bands: Sequence[AgeBand]) -> None:
    """Swap occupations between ordinals until each fits its age band where a swap can
    make it so; both quotas stay exact because only the pairing changes."""
    for i, band in enumerate(bands):
        if _fits(jobs[i], band):
            continue
        for j, other in enumerate(bands):
            if j != i and _fits(jobs[j], band) and _fits(jobs[i], other):
                jobs[i], jobs[j] = jobs[j], jobs[i]
                break


def _personality(rng: random.Random) -> BigFive:
    """Each trait from a normal around the midpoint, clipped to the 0..1 scale.

    Most people are near the middle on every trait; extremes are rare, which keeps
    personas from all being caricatures."""
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
