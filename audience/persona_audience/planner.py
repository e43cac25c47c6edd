"""From brief and constraints to an ``AudiencePlan``: the rule planner and the planner interface.

The rule planner is deterministic and offline: it reads the brief's facts
(``BriefReader``), lets explicit constraints override them, and fills what both leave
open with real-world shares (country populations from the gazetteer, the world's age
structure, the occupation mix that fits the planned ages). It is the default planner,
the LLM planner's fallback, and the check the API runs before accepting a request: a
brief and constraints that contradict each other ("teenagers" with ``min_age: 40``) are
an ``AudienceError``, never a silent pick.

Dimensions are built in order (locations, ages, genders, occupations), and occupations
left open follow the final ages, so constrained ages also reshape the job mix.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Protocol

from persona_audience.gazetteer import Gazetteer, Place, PlaceKind, Region
from persona_audience.reading import AgeRange, BriefFacts, BriefReader, OccupationFact
from persona_audience.reference import OccupationEntry, Reference, TraitTemplate
from persona_contracts import Constraints, PersonaRequested
from persona_contracts.persona import MAX_AGE, MIN_AGE, Gender
from persona_contracts.plan import (
    MAX_LOCATIONS,
    MAX_NOTES,
    MAX_OCCUPATIONS,
    MAX_TRAITS,
    AgeBand,
    Ages,
    AudiencePlan,
    Genders,
    GenderShare,
    Locations,
    LocationShare,
    Occupations,
    OccupationShare,
    OutputLanguage,
    Planning,
    Source,
    TraitDimension,
    TraitOption,
)

MIN_DEFAULT_JOB_SHARE = 0.004
"""Occupations expected below this share are left out of a default mix (and it renormalises)."""
MAX_SUBJECT_TRAITS = 2
RULES = Planning(planner="rules")
MAX_CACHED_MIXES = 1024


class AudienceError(ValueError):
    """The brief and the constraints cannot be planned: a contradiction or an unknown place.

    ``problems`` are complete sentences, safe to show to the requester."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = tuple(problems)


class Planner(Protocol):
    """Turns a request into the plan its personas are drawn from."""

    async def plan(self, request: PersonaRequested) -> AudiencePlan:
        """The request's plan; raises ``AudienceError`` when it cannot be planned."""
        ...

    async def aclose(self) -> None:
        """Release network clients; a no-op for planners that hold none."""
        ...


@dataclass(frozen=True, slots=True)
class Suggestion:
    """Dimensions another planner (the LLM) read from a brief. The rule planner's reading of
    what the brief states, and the constraints, win over them; the defaults lose to them."""

    subject: str | None = None
    locations: Locations | None = None
    ages: Ages | None = None
    genders: Genders | None = None
    occupations: Occupations | None = None
    traits: tuple[TraitDimension, ...] = ()
    planning: Planning = RULES


@dataclass
class _Plan:
    """A plan under construction: its problems and notes gathered on the way."""

    facts: BriefFacts
    constraints: Constraints
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


class RulePlanner:
    """Plans from the brief's stated facts, the constraints and real-world defaults."""

    def __init__(self, gazetteer: Gazetteer, reference: Reference) -> None:
        self._gazetteer = gazetteer
        self._reference = reference
        self._reader = BriefReader(gazetteer, reference)
        population = reference.population
        self._density = population.age_density()
        self._default_ages = (population.default_min_age, MAX_AGE)
        self._genders = population.genders
        self._default_locations = self._most_populous(population.default_countries)
        jobs = [job for job in reference.occupations if job.weight > 0]
        self._jobs_by_age = {
            age: (fitting, sum(job.weight for job in fitting))
            for age in range(MIN_AGE, MAX_AGE + 1)
            for fitting in [[j for j in jobs if j.min_age <= age <= j.max_age] or jobs]
        }
        self._job_mixes: dict[tuple[tuple[int, int, float], ...], list[OccupationShare]] = {}

    @classmethod
    @cache
    def default(cls) -> "RulePlanner":
        """The process-wide rule planner over the packaged data (built once, ~1 s)."""
        return cls(Gazetteer.load(), Reference.load())

    @property
    def gazetteer(self) -> Gazetteer:
        return self._gazetteer

    @property
    def reader(self) -> BriefReader:
        return self._reader

    def read(self, request: PersonaRequested) -> BriefFacts:
        return self._reader.read(request.brief, request.requested_at.year)

    async def plan(self, request: PersonaRequested) -> AudiencePlan:
        return self.plan_now(request)

    async def aclose(self) -> None:
        return None

    def plan_now(
        self, request: PersonaRequested, suggested: Suggestion | None = None
    ) -> AudiencePlan:
        """The plan, synchronously (it does no I/O); ``AudienceError`` on contradictions.

        ``suggested`` dimensions (another planner's reading of the brief) fill what the
        brief's stated facts and the constraints leave open, before the defaults do. A
        request's own ``audience`` is used as it is, with only the constraints applied."""
        facts = self.read(request)
        state = _Plan(facts, request.constraints)
        hint = suggested or Suggestion()
        locations = self._locations(state, hint.locations)
        ages = self._ages(state, hint.ages)
        occupations = self._occupations(
            state, ages, hint.occupations and _fitted_occupations(hint.occupations, ages)
        )
        plan = AudiencePlan(
            subject=facts.subject if hint.subject is None else hint.subject,
            locations=locations,
            ages=ages,
            genders=self._gender_mix(state, hint.genders),
            occupations=occupations,
            traits=list(hint.traits) or self._traits(facts),
            language=_language(request.constraints),
            planning=hint.planning,
        )
        planned = _finished(plan, state)  # a contradiction raises, whatever the audience
        if request.audience is None:
            return planned
        return self.constrain(request.audience, request.constraints)

    def constrain(self, plan: AudiencePlan, constraints: Constraints) -> AudiencePlan:
        """``plan`` (the request's own) with ``constraints`` applied on top; its places
        must be ones the gazetteer knows, since personas are drawn from their cities."""
        state = _Plan(BriefFacts(), constraints)
        plan = plan.model_copy(update={"locations": self._known(plan.locations, state)})
        ages = self._ages(state, plan.ages)
        occupations = (
            self._occupations(state, ages, plan.occupations)
            if constraints.occupation or constraints.occupations
            else _fitted_occupations(plan.occupations, ages)
        )
        constrained = plan.model_copy(
            update={
                "locations": self._locations(state, plan.locations),
                "ages": ages,
                "genders": self._gender_mix(state, plan.genders),
                "occupations": occupations,
                "language": _language(constraints) if constraints.locale else plan.language,
            }
        )
        return _finished(constrained, state)

    def check(self, request: PersonaRequested) -> None:
        """Raise ``AudienceError`` if the request cannot be planned (what the API checks)."""
        self.plan_now(request)

    # --- locations ---------------------------------------------------------------------

    def _locations(self, state: _Plan, given: Locations | None) -> Locations:
        constraints, facts = state.constraints, state.facts
        stated = [option for place in facts.places for option in self._options_of(place, state)]
        if constraints.cities:
            return self._constrained_cities(state, constraints.cities, facts.places)
        countries = constraints.countries or (
            {constraints.country: 1.0} if constraints.country else None
        )
        if countries:
            return self._constrained_countries(state, countries, stated)
        if stated:
            return Locations(source=Source.BRIEF, options=stated[:MAX_LOCATIONS])
        return given or self._default_locations

    def _known(self, locations: Locations, state: _Plan) -> Locations:
        """The given places, spelt as the gazetteer spells them; an unknown one is a problem."""
        known: list[LocationShare] = []
        for option in locations.options:
            country = self._gazetteer.countries.get(option.country_code)
            if country is None:
                state.problems.append(
                    f"the audience names an unknown country {option.country_code!r}"
                )
                continue
            city = self._gazetteer.city(f"{option.city}, {country.name}") if option.city else None
            region = self._region(option.region, country.code) if option.region else None
            if (option.city and city is None) or (option.region and region is None):
                state.problems.append(f"the audience names an unknown place {option.label!r}")
                continue
            known.append(
                option.model_copy(
                    update={
                        "country": country.name,
                        "city": city.name if city else None,
                        "region": region.name if region else None,
                    }
                )
            )
        return locations.model_copy(update={"options": known}) if known else locations

    def _region(self, name: str, country_code: str) -> Region | None:
        regions = (p.region for p in self._gazetteer.lookup(name) if p.country_code == country_code)
        return next((region for region in regions if region is not None), None)

    def _options_of(self, place: Place, state: _Plan) -> list[LocationShare]:
        countries = self._gazetteer.countries
        if place.kind is PlaceKind.CITY and place.city is not None:
            country = countries[place.country_code]
            return [
                LocationShare(
                    country_code=country.code,
                    country=country.name,
                    city=place.city.name,
                    share=max(place.city.population, 1),
                )
            ]
        if place.kind is PlaceKind.REGION and place.region is not None:
            country = countries[place.country_code]
            people = sum(c.population for c in self._gazetteer.cities_in(place.region))
            return [
                LocationShare(
                    country_code=country.code,
                    country=country.name,
                    region=place.region.name,
                    share=max(people, 1),
                )
            ]
        members = place.countries
        if len(members) > MAX_LOCATIONS:
            state.notes.append(
                f"{place.name}: kept its {MAX_LOCATIONS} most populous countries of {len(members)}"
            )
        return [
            self._country_option(code, countries[code].population)
            for code in members[:MAX_LOCATIONS]
        ]

    def _country_option(self, code: str, weight: float) -> LocationShare:
        country = self._gazetteer.countries[code]
        return LocationShare(country_code=code, country=country.name, share=max(weight, 1e-9))

    def _constrained_countries(
        self, state: _Plan, weights: dict[str, float], stated: list[LocationShare]
    ) -> Locations:
        resolved: dict[str, float] = {}
        for query, weight in weights.items():
            country = self._gazetteer.country(query)
            if country is None:
                state.problems.append(
                    f"constraints name an unknown country {query!r}: use an ISO 3166 code "
                    "such as DE or a name such as Germany"
                )
            else:
                resolved[country.code] = resolved.get(country.code, 0) + weight
        if not resolved:
            return self._default_locations
        if stated:
            kept = [option for option in stated if option.country_code in resolved]
            if kept:
                return Locations(source=Source.BRIEF, options=kept)
            state.problems.append(
                f"the brief names {_places(stated)} but the constraints allow only "
                f"{', '.join(sorted(resolved))}"
            )
        options = [self._country_option(code, weight) for code, weight in resolved.items()]
        return Locations(source=Source.CONSTRAINTS, options=options)

    def _constrained_cities(
        self, state: _Plan, weights: dict[str, float], places: Sequence[Place]
    ) -> Locations:
        options: list[LocationShare] = []
        for query, weight in weights.items():
            city = self._gazetteer.city(query)
            if city is None:
                state.problems.append(
                    f"constraints name an unknown city {query!r}: cities of 15,000 people or "
                    "more are known; write `City, Country` to pick among namesakes"
                )
                continue
            if places and not any(
                self._holds(place, city.name, city.country_code) for place in places
            ):
                state.problems.append(
                    f"the brief names {', '.join(p.name for p in places)} but the constraints "
                    f"ask for {city.name}"
                )
            country = self._gazetteer.countries[city.country_code]
            options.append(
                LocationShare(
                    country_code=country.code, country=country.name, city=city.name, share=weight
                )
            )
        if not options:
            return self._default_locations
        return Locations(source=Source.CONSTRAINTS, options=options)

    def _holds(self, place: Place, city: str, country_code: str) -> bool:
        """Whether the brief's ``place`` contains the constrained city."""
        if place.kind is PlaceKind.CITY:
            return place.city is not None and place.city.name == city
        if place.kind is PlaceKind.REGION and place.region is not None:
            return any(c.name == city for c in self._gazetteer.cities_in(place.region))
        return country_code in place.countries

    def _most_populous(self, count: int) -> Locations:
        countries = sorted(self._gazetteer.countries.values(), key=lambda c: -c.population)
        options = [self._country_option(c.code, c.population) for c in countries[:count]]
        return Locations(source=Source.DEFAULT, options=options)

    # --- ages ------------------------------------------------------------------------------

    def _ages(self, state: _Plan, given: Ages | None) -> Ages:
        constraints, facts = state.constraints, state.facts
        stated = list(facts.age_ranges)
        if not stated and facts.implied_ages:
            stated = [facts.implied_ages]
        limits = _constraint_range(constraints)
        if constraints.age_bands:
            bands = [b for b in constraints.age_bands if _overlaps_any((b.low, b.high), stated)]
            if stated and facts.age_ranges and not bands:
                state.problems.append(_age_conflict(facts.age_ranges, "age_bands"))
            return Ages(source=Source.CONSTRAINTS, bands=bands or list(constraints.age_bands))
        if limits is not None:
            within = [r for r in (_intersect(s, limits) for s in stated) if r is not None]
            if stated and facts.age_ranges and not within:
                state.problems.append(_age_conflict(facts.age_ranges, _limits_text(constraints)))
            return Ages(source=Source.CONSTRAINTS, bands=self._bands(within or [limits]))
        if stated:
            return Ages(source=Source.BRIEF, bands=self._bands(stated))
        if given is not None:
            return given
        spans = [
            (o.entry.min_age, o.entry.max_age) for o in facts.occupations if o.entry is not None
        ]
        if spans and len(spans) == len(facts.occupations):
            low, high = min(s[0] for s in spans), max(s[1] for s in spans)
            state.notes.append(f"ages follow the occupations' usual span, {low}-{high}")
            return Ages(source=Source.DEFAULT, bands=self._bands([(low, high)]))
        return Ages(source=Source.DEFAULT, bands=self._bands([self._default_ages]))

    def _bands(self, ranges: Iterable[AgeRange]) -> list[AgeBand]:
        """The default age bands cut to ``ranges``, weighted by the world's age structure."""
        bands: list[AgeBand] = []
        for band in self._reference.population.age_bands:
            for low, high in ranges:
                cut = _intersect((band.low, band.high), (low, high))
                if cut is not None:
                    weight = sum(self._density[age] for age in range(cut[0], cut[1] + 1))
                    bands.append(AgeBand(low=cut[0], high=cut[1], share=weight))
        return bands

    # --- genders ---------------------------------------------------------------------------

    def _gender_mix(self, state: _Plan, given: Genders | None) -> Genders:
        constraints, stated = state.constraints, state.facts.genders
        if constraints.genders:
            allowed = {g: w for g, w in constraints.genders.items() if not stated or g in stated}
            if not allowed:
                state.problems.append(
                    f"the brief is about {_genders(stated)} but the constraints ask for "
                    f"{_genders(constraints.genders)}"
                )
            options = [
                GenderShare(gender=g, share=w) for g, w in (allowed or constraints.genders).items()
            ]
            return Genders(source=Source.CONSTRAINTS, options=options)
        if stated:
            options = [GenderShare(gender=g, share=self._genders[g]) for g in sorted(stated)]
            return Genders(source=Source.BRIEF, options=options)
        if given is not None:
            return given
        options = [GenderShare(gender=g, share=w) for g, w in self._genders.items()]
        return Genders(source=Source.DEFAULT, options=options)

    # --- occupations -----------------------------------------------------------------------

    def _occupations(self, state: _Plan, ages: Ages, given: Occupations | None) -> Occupations:
        constraints, stated = state.constraints, state.facts.occupations
        wanted = constraints.occupations or (
            {constraints.occupation: 1.0} if constraints.occupation else None
        )
        if wanted:
            facts = {name: self._reader.occupation(name) for name in wanted}
            if stated and not any(_same_job(f, s) for f in facts.values() for s in stated):
                state.problems.append(
                    f"the brief names {', '.join(s.title for s in stated)} but the "
                    f"constraints ask for {', '.join(f.title for f in facts.values())}"
                )
            options = [_job_option(facts[name], wanted[name]) for name in wanted]
            return Occupations(source=Source.CONSTRAINTS, options=options)
        if stated:
            options = [_job_option(f, max(f.entry.weight, 0.1) if f.entry else 1.0) for f in stated]
            return Occupations(source=Source.BRIEF, options=options)
        if given is not None:
            return given
        key = tuple((band.low, band.high, band.share) for band in ages.bands)
        mix = self._job_mixes.get(key)
        if mix is None:  # a worker sees few distinct age plans; a mix costs milliseconds
            if len(self._job_mixes) >= MAX_CACHED_MIXES:
                self._job_mixes.clear()
            mix = self._job_mixes[key] = self._job_mix(ages)
        return Occupations(source=Source.DEFAULT, options=mix)

    def _job_mix(self, ages: Ages) -> list[OccupationShare]:
        """The occupations people of the planned ages hold, by share: each year of age
        weighs its population share, split among the jobs whose span covers it."""
        shares: dict[str, float] = {}
        for band in ages.bands:
            years = range(band.low, band.high + 1)
            density = sum(self._density[age] for age in years)
            for age in years:
                fitting, total = self._jobs_by_age[age]
                for job in fitting:
                    weight = band.share * self._density[age] / density * job.weight / total
                    shares[job.title] = shares.get(job.title, 0.0) + weight
        by_title = {job.title: job for job in self._reference.occupations}
        ranked = sorted(shares.items(), key=lambda item: -item[1])
        kept = [(t, s) for t, s in ranked if s >= MIN_DEFAULT_JOB_SHARE] or ranked[:1]
        return [
            OccupationShare(
                title=title,
                share=share,
                min_age=by_title[title].min_age,
                max_age=by_title[title].max_age,
            )
            for title, share in kept[:MAX_OCCUPATIONS]
        ]

    # --- traits ----------------------------------------------------------------------------

    def _traits(self, facts: BriefFacts) -> list[TraitDimension]:
        templates: list[tuple[TraitTemplate, Source]] = [
            (template, Source.BRIEF)
            for entry in facts.subjects[:MAX_SUBJECT_TRAITS]
            for template in entry.traits
        ]
        if not templates and facts.subject:
            templates = [(self._reference.lexicon.generic_trait, Source.DEFAULT)]
        unique = {template.name: (template, source) for template, source in templates}
        return [
            TraitDimension(
                name=template.name,
                options=[TraitOption(value=value, share=1.0) for value in template.options],
                source=source,
            )
            for template, source in list(unique.values())[:MAX_TRAITS]
        ]


def _finished(plan: AudiencePlan, state: _Plan) -> AudiencePlan:
    if state.problems:
        raise AudienceError(state.problems)
    if not state.notes:
        return plan
    notes = [*plan.planning.notes, *state.notes][:MAX_NOTES]
    return plan.model_copy(update={"planning": plan.planning.model_copy(update={"notes": notes})})


def _fitted_occupations(occupations: Occupations, ages: Ages) -> Occupations:
    """The given mix with jobs that no planned age can hold left out (unless none is left)."""
    fitting = [o for o in occupations.options if o.min_age <= ages.high and o.max_age >= ages.low]
    return (
        occupations
        if not fitting or len(fitting) == len(occupations.options)
        else Occupations(source=occupations.source, options=fitting)
    )


def _job_option(fact: OccupationFact, weight: float) -> OccupationShare:
    entry: OccupationEntry | None = fact.entry
    if entry is None:
        return OccupationShare(title=fact.title, share=weight)
    return OccupationShare(
        title=fact.title, share=weight, min_age=entry.min_age, max_age=entry.max_age
    )


def _same_job(a: OccupationFact, b: OccupationFact) -> bool:
    return (a.entry is not None and a.entry == b.entry) or a.title.casefold() == b.title.casefold()


def _language(constraints: Constraints) -> OutputLanguage:
    if constraints.locale:
        return OutputLanguage(code=constraints.locale, source=Source.CONSTRAINTS)
    return OutputLanguage()


def _constraint_range(constraints: Constraints) -> AgeRange | None:
    if constraints.min_age is None and constraints.max_age is None:
        return None
    low = constraints.min_age if constraints.min_age is not None else 16
    high = constraints.max_age if constraints.max_age is not None else MAX_AGE
    return (low, high)


def _intersect(a: AgeRange, b: AgeRange) -> AgeRange | None:
    low, high = max(a[0], b[0]), min(a[1], b[1])
    return (low, high) if low <= high else None


def _overlaps_any(band: AgeRange, ranges: Sequence[AgeRange]) -> bool:
    return not ranges or any(_intersect(band, r) is not None for r in ranges)


def _age_conflict(stated: Sequence[AgeRange], constrained: str) -> str:
    ages = " and ".join(f"{low}-{high}" for low, high in stated)
    return f"the brief states ages {ages} but the constraints set {constrained}"


def _limits_text(constraints: Constraints) -> str:
    parts = [
        f"{name} {value}"
        for name, value in (("min_age", constraints.min_age), ("max_age", constraints.max_age))
        if value is not None
    ]
    return " and ".join(parts)


def _places(options: Sequence[LocationShare]) -> str:
    return ", ".join(dict.fromkeys(option.label for option in options))


def _genders(genders: Iterable[Gender]) -> str:
    return " and ".join(sorted(genders))
