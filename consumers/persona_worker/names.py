"""Names common in a persona's country for its gender, from Faker's per-locale name lists.

A country's Faker locale is chosen from its languages (most spoken first, GeoNames'
order): ``de_CH`` for Switzerland, ``pt_BR`` for Brazil, ``en_NG`` before ``yo_NG``
for Nigeria when the text is English. Personas are written in English unless a locale
is asked for, so a locale whose names are in Latin script wins, then one with Faker's
romanised names (Chinese, Japanese), then any; a country with no locale of its own
borrows one for its main language (``ar_SA`` for Oman), else ``en_US``.

Names are drawn by seeding the locale's Faker from the caller's RNG, so they are as
deterministic as the rest of the persona (for a given Faker release).
"""

import importlib.util
import random
import unicodedata
from dataclasses import dataclass
from functools import cache

from faker import Faker
from faker.config import AVAILABLE_LOCALES

from persona_audience.gazetteer import Gazetteer
from persona_contracts import Skeleton

FALLBACK_LOCALE = "en_US"
# Cultures that put the family name first.
_FAMILY_FIRST = frozenset({"zh", "ja", "ko", "vi", "hu"})
_ROMANISED = frozenset({"zh_CN", "zh_TW", "ja_JP"})
# Locales with names of their own (the others fall back to English names).
_NAMED_LOCALES = tuple(
    locale
    for locale in AVAILABLE_LOCALES
    if importlib.util.find_spec(f"faker.providers.person.{locale}") is not None
)
_LOCALES_BY_LANGUAGE: dict[str, list[str]] = {}
for _locale in _NAMED_LOCALES:
    _LOCALES_BY_LANGUAGE.setdefault(_locale.split("_")[0], []).append(_locale)


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


class NameSampler:
    def __init__(self, gazetteer: Gazetteer) -> None:
        self._gazetteer = gazetteer
        self._locales: dict[str, str] = {}

    def name(self, skeleton: Skeleton, rng: random.Random) -> PersonName:
        """A plausible name for the skeleton's gender in its country; non-binary personas
        get a given name from either list."""
        locale = self.locale_of(skeleton.location.country_code)
        fake = _faker(locale)
        fake.seed_instance(int(rng.random() * 2**32))
        feminine = skeleton.gender == "female" or (
            skeleton.gender == "non-binary" and rng.random() < 0.5
        )
        if locale in _ROMANISED:
            given = _romanised_given(fake, feminine)
            family = str(fake.last_romanized_name())
        else:
            given = str(fake.first_name_female() if feminine else fake.first_name_male())
            family = str(fake.last_name_female() if feminine else fake.last_name_male())
        return PersonName(given, family, family_first=locale.split("_")[0] in _FAMILY_FIRST)

    def locale_of(self, country_code: str | None) -> str:
        """The Faker locale for a country (cached)."""
        if country_code is None:
            return FALLBACK_LOCALE
        found = self._locales.get(country_code)
        if found is None:
            found = self._choose(country_code)
            self._locales[country_code] = found
        return found

    def _choose(self, country_code: str) -> str:
        country = self._gazetteer.countries.get(country_code)
        languages = [tag.split("-")[0] for tag in country.languages] if country else []
        own = [f"{language}_{country_code}" for language in [*languages, "en"]]
        own += [loc for loc in _NAMED_LOCALES if loc.endswith(f"_{country_code}")]
        candidates = [loc for loc in dict.fromkeys(own) if loc in _NAMED_LOCALES]
        for prefer in (_is_latin, lambda loc: loc in _ROMANISED, lambda loc: True):
            chosen = next((loc for loc in candidates if prefer(loc)), None)
            if chosen is not None:
                return chosen
        borrowed = [loc for language in languages for loc in _LOCALES_BY_LANGUAGE.get(language, [])]
        return next(iter(borrowed), FALLBACK_LOCALE)


def _romanised_given(fake: Faker, feminine: bool) -> str:
    female, male = "first_romanized_name_female", "first_romanized_name_male"
    if hasattr(fake, female):
        return str(getattr(fake, female if feminine else male)())
    return str(fake.first_romanized_name())


@cache
def _faker(locale: str) -> Faker:
    return Faker(locale)


@cache
def _is_latin(locale: str) -> bool:
    """Whether a locale's names are written in Latin letters (checked on a sample)."""
    fake = _faker(locale)
    fake.seed_instance(0)
    sample = "".join(str(fake.first_name()) + str(fake.last_name()) for _ in range(5))
    return all("LATIN" in unicodedata.name(ch, "") for ch in sample if ch.isalpha())
