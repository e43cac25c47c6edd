"""Reading a brief: the facts it states about who the audience is, and what it is about.

``BriefReader.read`` finds places (countries, regions, cities, groups of countries,
demonyms), ages (``teenagers``, ``in their 30s``, ``over 60``, ``Gen Z``), genders
(``mothers``, ``men``), occupations (``nurses``, ``software engineers``) and the subject
(what is left: ``urban cyclists``). It is deterministic and needs no network: the rule
planner builds on it, and the LLM planner uses it to check a model's answer.

Precision matters more than recall here, because a misread fact is forced onto every
persona: a word that is also a place (``Nice``, ``Reading``, ``Turkey``) counts as one
only after a place preposition (``in``, ``from``) or capitalised mid-sentence, and a
word with another reading (``male``, ``bar``) keeps that reading.
"""

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

from persona_audience.gazetteer import BIG_CITY, Gazetteer, Place, PlaceKind
from persona_audience.reference import (
    AudienceWord,
    OccupationEntry,
    Reference,
    SubjectEntry,
)
from persona_contracts.persona import MAX_AGE, MIN_AGE, Gender
from persona_infra.text import fold

AgeRange = tuple[int, int]
RETIREE = "Retiree"
MAX_SUBJECT_CHARS = 100
V = TypeVar("V")

_BASED = re.compile(r"(\w)-based\b", re.IGNORECASE)  # "Berlin-based" reads as "Berlin based"
_TOKEN = re.compile(r"[^\W_]+(?:[-'’.][^\W_]+)*", re.UNICODE)
_DECADES = {
    "twenties": 20,
    "thirties": 30,
    "forties": 40,
    "fifties": 50,
    "sixties": 60,
    "seventies": 70,
    "eighties": 80,
    "nineties": 90,
}
_DECADE_WORD = "|".join(_DECADES)
_TENS = {word[:-3] + "y": tens for word, tens in _DECADES.items()}  # thirties -> thirty
_TENS_WORD = "|".join(_TENS)
_PART = {"early": (0, 3), "mid": (3, 7), "late": (7, 9)}
_YEARS_OLD = r"(?:\s*-?\s*(?:years?|yrs?)[- ]?olds?|\s*yo\b)"
# (pattern, how to turn its groups into an age range); matched on the folded brief.
_AGE_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), kind)
    for pattern, kind in (
        (rf"\bbetween (\d{{2}}) and (\d{{2,3}}){_YEARS_OLD}?", "range"),
        (rf"\b(?:aged?|ages) (\d{{2}}) ?(?:-|–|to) ?(\d{{2,3}}){_YEARS_OLD}?", "range"),
        (rf"\b(\d{{2}}) ?(?:-|–|to) ?(\d{{2,3}}){_YEARS_OLD}", "range"),
        (r"\bin (?:their|her|his) (early|mid|late)?[- ]?(\d)0'?s\b", "decade"),
        (rf"\bin (?:their|her|his) (early|mid|late)?[- ]?({_DECADE_WORD})\b", "decade-word"),
        (r"\b(\d)0[- ]?somethings?\b", "decade-plain"),
        (rf"\b({_TENS_WORD})[- ]?somethings?\b", "tens-word-plain"),
        (r"\b(?:over|above|older than) (\d{2})s?\b", "over"),
        (r"\bover-(\d{2})s\b", "from"),
        (r"\b(\d{2}) ?\+", "from"),
        (rf"\b(?:aged? )?(\d{{2}}){_YEARS_OLD}? (?:and|or) (?:over|older|above|up)\b", "from"),
        (r"\b(?:under|below|younger than) (\d{2})s?\b", "under"),
        (r"\bunder-(\d{2})s\b", "under"),
        (rf"\b(\d{{2}}){_YEARS_OLD}", "exact"),
        (r"\baged (\d{2})\b", "exact"),
    )
)


@dataclass(frozen=True, slots=True)
class OccupationFact:
    """An occupation the brief names, in its own words (``Software engineer``)."""

    title: str
    entry: OccupationEntry | None


@dataclass(frozen=True, slots=True)
class BriefFacts:
    places: tuple[Place, ...] = ()
    age_ranges: tuple[AgeRange, ...] = ()
    """Stated ages, merged; empty when the brief states none."""
    implied_ages: AgeRange | None = None
    """Ages a word suggests without stating (``mothers``: 20-65), used when none is stated."""
    genders: frozenset[Gender] = frozenset()
    occupations: tuple[OccupationFact, ...] = ()
    subject: str | None = None
    subjects: tuple[SubjectEntry, ...] = ()
    """Known audience words of the brief, for the plan's trait dimensions."""

    @property
    def is_empty(self) -> bool:
        return not (self.places or self.age_ranges or self.genders or self.occupations)


@dataclass
class _Token:
    text: str
    folded: str
    start: int
    end: int
    consumed: bool = False
    kept: bool = False
    """Part of a fact that is also the audience itself (``nurses``), so it stays in the subject."""


@dataclass
class _Reading:
    places: list[Place] = field(default_factory=list)
    ages: list[AgeRange] = field(default_factory=list)
    """From words: ``teenagers``, ``Gen Z``, ``students``."""
    numbers: list[AgeRange] = field(default_factory=list)
    """From numbers: ``over 60``, ``in their 30s``, ``25-34``."""
    implied: list[AgeRange] = field(default_factory=list)
    genders: set[Gender] = field(default_factory=set)
    occupations: list[OccupationFact] = field(default_factory=list)
    subjects: list[SubjectEntry] = field(default_factory=list)
    retired_until: int | None = None
    """Where a ``retired`` ended: an occupation right after it is a former one."""


class BriefReader:
    """Reads briefs with the gazetteer and the reference data; one per process."""

    def __init__(self, gazetteer: Gazetteer, reference: Reference) -> None:
        lexicon = reference.lexicon
        self._lexicon = lexicon
        self._gazetteer = gazetteer
        self._audience: dict[str, AudienceWord] = _by_form(
            (form, word) for word in lexicon.audience for form in word.forms
        )
        self._generations = _by_form(
            (form, generation.born)
            for generation in lexicon.generations
            for form in generation.forms
        )
        self._gendered = {fold(form): gender for form, gender in lexicon.gendered.items()}
        self._occupations = _occupation_forms(reference.occupations)
        self._titles = {entry.title: entry for entry in reference.occupations}
        self._subjects = _by_form(
            (form, entry) for entry in lexicon.subject for form in entry.forms
        )
        self._prepositions = frozenset(fold(p) for p in lexicon.place_prepositions)
        self._ambiguous = frozenset(fold(p) for p in lexicon.ambiguous_places)
        self._filler = frozenset(fold(f) for f in lexicon.filler)
        self._longest = max(
            gazetteer.longest_name,
            *(len(form.split()) for table in (self._audience, self._occupations) for form in table),
        )

    def read(self, brief: str, year: int) -> BriefFacts:
        """The facts ``brief`` states; ``year`` (the request's) turns generations into ages."""
        text = _BASED.sub(r"\1 based", " ".join(brief.split()))
        tokens = [
            _Token(m.group(), fold(m.group()), m.start(), m.end()) for m in _TOKEN.finditer(text)
        ]
        reading = _Reading()
        self._read_numeric_ages(fold(text), tokens, reading)
        self._read_phrases(tokens, reading, year)
        return BriefFacts(
            places=tuple(dict.fromkeys(reading.places)),
            age_ranges=_stated_ages(reading.numbers, reading.ages),
            implied_ages=_intersection(reading.implied),
            genders=frozenset(reading.genders),
            occupations=tuple(dict.fromkeys(reading.occupations)),
            subject=self._subject(text, tokens, reading),
            subjects=tuple(dict.fromkeys(reading.subjects)),
        )

    def occupation(self, name: str) -> OccupationFact:
        """An occupation as a request names it: its catalogue entry when one matches."""
        entry = self._occupations.get(fold(name))
        return OccupationFact(title=_sentence_case(_singular(name.strip(), entry)), entry=entry)

    def _read_numeric_ages(self, folded: str, tokens: list[_Token], reading: _Reading) -> None:
        taken: list[tuple[int, int]] = []
        for pattern, kind in _AGE_PATTERNS:
            for match in pattern.finditer(folded):
                if any(a < match.end() and match.start() < b for a, b in taken):
                    continue
                ages = _age_range(kind, match.groups())
                if ages is None:
                    continue
                taken.append((match.start(), match.end()))
                reading.numbers.append(ages)
        for token in tokens:
            if any(a <= token.start and token.end <= b for a, b in taken):
                token.consumed = True

    def _read_phrases(self, tokens: list[_Token], reading: _Reading, year: int) -> None:
        i = 0
        while i < len(tokens):
            if tokens[i].consumed:
                i += 1
                continue
            width = self._match_at(tokens, i, reading, year)
            i += max(width, 1)

    def _match_at(self, tokens: list[_Token], i: int, reading: _Reading, year: int) -> int:
        """Read the longest known phrase starting at token ``i``; returns its width (0: none)."""
        for width in range(min(self._longest, len(tokens) - i), 0, -1):
            span = tokens[i : i + width]
            if any(t.consumed for t in span):
                continue
            phrase = " ".join(t.folded for t in span)
            if self._read_words(phrase, span, reading, year, at=i):
                return width
            places = self._gazetteer.lookup(phrase)
            if places and self._is_place(phrase, tokens, i, width, places[0]):
                reading.places.append(places[0])
                self._consume_place(tokens, i, width)
                return width
        return 0

    def _read_words(
        self, phrase: str, span: list[_Token], reading: _Reading, year: int, at: int
    ) -> bool:
        """Audience words, generations, occupations and subjects; True if any matched."""
        matched = False
        if (word := self._audience.get(phrase)) is not None:
            matched = True
            if word.occupation == RETIREE:
                reading.retired_until = at + len(span)
            if word.gender:
                reading.genders.add(word.gender)
            if word.ages:
                reading.ages.append(word.ages)
            if word.implies_ages:
                reading.implied.append(word.implies_ages)
            if word.occupation:
                reading.occupations.append(
                    OccupationFact(word.occupation, self._titles[word.occupation])
                )
        if (born := self._generations.get(phrase)) is not None:
            matched = True
            reading.ages.append(_clamped((year - born[1], year - born[0])))
            _consume(span)
        if (gender := self._gendered.get(phrase)) is not None:
            reading.genders.add(gender)
        if (entry := self._occupations.get(phrase)) is not None and not matched:
            matched = True
            title = _singular(" ".join(t.text for t in span), entry)
            if reading.retired_until == at and reading.occupations:
                retired = reading.occupations.pop()
                reading.occupations.append(
                    OccupationFact(f"Retired {title.lower()}", retired.entry)
                )
            else:
                reading.occupations.append(OccupationFact(_sentence_case(title), entry))
                if entry.implies_ages:
                    reading.ages.append(entry.implies_ages)
        if matched:
            for token in span:
                token.kept = True
        if (subject := self._subjects.get(phrase)) is not None:
            matched = True
            reading.subjects.append(subject)
        return matched

    def _is_place(
        self, phrase: str, tokens: Sequence[_Token], i: int, width: int, place: Place
    ) -> bool:
        """Whether the words at ``i`` name ``place`` rather than mean something else."""
        after_preposition = self._preposition_before(tokens, i) > 0 or (
            i + width < len(tokens) and tokens[i + width].folded == "based"
        )
        first = tokens[i].text
        capitalised = i > 0 and first[:1].isupper()
        if len(phrase) <= 2:
            return first.isupper() and (capitalised or after_preposition or i == 0)
        if phrase in self._ambiguous:
            return after_preposition or capitalised
        if place.kind in (PlaceKind.COUNTRY, PlaceKind.GROUP):
            return True
        if place.kind is PlaceKind.CITY and place.population >= BIG_CITY:
            return True
        return after_preposition or capitalised

    def _preposition_before(self, tokens: Sequence[_Token], i: int) -> int:
        """How many words before ``i`` form a place preposition (``in``, ``based in``)."""
        for width in (3, 2, 1):
            if i - width >= 0:
                words = " ".join(t.folded for t in tokens[i - width : i])
                if words in self._prepositions:
                    return width
        return 0

    def _consume_place(self, tokens: list[_Token], i: int, width: int) -> None:
        before = self._preposition_before(tokens, i)
        _consume(tokens[i - before : i + width])
        if i + width < len(tokens) and tokens[i + width].folded == "based":
            tokens[i + width].consumed = True

    def _subject(self, text: str, tokens: Sequence[_Token], reading: _Reading) -> str | None:
        """What the brief is about: its longest stretch of words that are not places or
        ages, trimmed of filler (``urban cyclists``).

        When that stretch holds nothing but audience words (``male nurses``, ``retirees``)
        it is who the audience is, not what it is about: a known activity of theirs stands
        in (``nursing``), or there is no subject."""
        runs: list[list[_Token]] = [[]]
        for token in tokens:
            if token.consumed:
                if runs[-1]:
                    runs.append([])
            else:
                runs[-1].append(token)
        runs = [run for run in (_trimmed(run, self._filler) for run in runs) if run]
        if not runs:
            return _activity(reading)
        about = [run for run in runs if any(not (t.kept or t.folded in self._filler) for t in run)]
        longest = max(about or runs, key=len)
        phrase = text[longest[0].start : longest[-1].end]
        if all(t.kept or t.folded in self._filler for t in longest):
            entry = self._lexicon.subject_of(phrase)
            return entry.activity if entry else None
        return _cut(phrase, MAX_SUBJECT_CHARS)


def _cut(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters."""
    if len(text) <= limit:
        return text
    cut = text[: limit + 1]
    return cut.rsplit(" ", 1)[0] if " " in cut else text[:limit]


def _activity(reading: _Reading) -> str | None:
    return reading.subjects[0].activity if reading.subjects else None


def _by_form(pairs: Iterable[tuple[str, V]]) -> dict[str, V]:
    return {fold(form): value for form, value in pairs}


def _occupation_forms(entries: Sequence[OccupationEntry]) -> dict[str, OccupationEntry]:
    """Every name of every occupation, singular and plural, folded."""
    forms: dict[str, OccupationEntry] = {}
    for entry in entries:
        for name in (entry.title, *entry.aliases):
            for form in (name, plural(name)):
                forms.setdefault(fold(form), entry)
    return forms


_IRREGULAR_PLURALS = {"person": "people", "child": "children", "staff": "staff", "police": "police"}


def plural(noun: str) -> str:
    """English plural of the last word of ``noun``: ``nurse`` -> ``nurses``,
    ``businessman`` -> ``businessmen``, ``secretary`` -> ``secretaries``."""
    head, _, last = noun.rpartition(" ")
    lowered = last.lower()
    if lowered in _IRREGULAR_PLURALS:
        word = _IRREGULAR_PLURALS[lowered]
    elif lowered.endswith("man") and lowered not in {"german", "human", "shaman"}:
        word = last[:-3] + "men"
    elif lowered.endswith("wife"):
        word = last[:-4] + "wives"
    elif lowered.endswith("y") and lowered[-2:-1] not in tuple("aeiou"):
        word = last[:-1] + "ies"
    elif lowered.endswith(("s", "x", "ch", "sh")):
        word = last + "es"
    else:
        word = last + "s"
    return f"{head} {word}" if head else word


def _singular(phrase: str, entry: OccupationEntry | None) -> str:
    """The singular of an occupation as the brief wrote it, checked against the catalogue."""
    if entry is None:
        return phrase
    for name in (entry.title, *entry.aliases):
        if fold(phrase) == fold(plural(name)) != fold(name):
            *head, _ = phrase.split()  # keep the brief's casing: "IT workers" -> "IT worker"
            return " ".join([*head, name.split()[-1]])
    return phrase


def _sentence_case(title: str) -> str:
    """``software engineers`` -> ``Software engineers``; acronyms and names stay as written."""
    return title[:1].upper() + title[1:] if title[:1].islower() else title


def _consume(tokens: Iterable[_Token]) -> None:
    for token in tokens:
        token.consumed = True


def _trimmed(run: list[_Token], filler: frozenset[str]) -> list[_Token]:
    start, end = 0, len(run)
    while start < end and run[start].folded in filler:
        start += 1
    while end > start and run[end - 1].folded in filler:
        end -= 1
    return run[start:end]


def _clamped(ages: AgeRange) -> AgeRange:
    low, high = max(MIN_AGE, min(ages)), min(MAX_AGE, max(ages))
    return (low, max(low, high))


def _age_range(kind: str, groups: Sequence[str | None]) -> AgeRange | None:
    """Turn a matched age pattern into a range, or None when it is not an age after all."""
    values = [g for g in groups if g is not None]
    if kind == "range":
        low, high = int(values[0]), int(values[1])
        return _clamped((low, high)) if 10 <= low < high <= 120 else None
    if kind in ("decade", "decade-word"):
        part, decade = groups
        base = int(str(decade)) * 10 if kind == "decade" else _DECADES[str(decade)]
        offset = _PART.get(part or "", (0, 9))
        return _clamped((base + offset[0], base + offset[1]))
    if kind == "decade-plain":
        base = int(values[0]) * 10
        return _clamped((base, base + 9))
    if kind == "tens-word-plain":
        base = _TENS[values[0]]
        return _clamped((base, base + 9))
    number = int(values[0])
    if not 10 <= number <= 110:
        return None
    bounds = {
        "over": (number + 1, MAX_AGE),
        "from": (number, MAX_AGE),
        "under": (MIN_AGE, number - 1),
        "exact": (number, number),
    }
    return _clamped(bounds[kind])


def _stated_ages(numbers: Sequence[AgeRange], words: Sequence[AgeRange]) -> tuple[AgeRange, ...]:
    """Ages the brief states. Numbers narrow words they overlap ("adults over 60" is
    61-100, "Gen Z under 25" 16-24); words alone, or numbers alone, are joined ("teenagers
    and young adults" is 16-29)."""
    if not numbers or not words:
        return _merged([*numbers, *words])
    narrowed = [
        (max(n[0], w[0]), min(n[1], w[1]))
        for n in _merged(numbers)
        for w in _merged(words)
        if max(n[0], w[0]) <= min(n[1], w[1])
    ]
    return _merged(narrowed or numbers)


def _merged(ranges: Iterable[AgeRange]) -> tuple[AgeRange, ...]:
    """Overlapping or touching ranges joined, in order."""
    merged: list[AgeRange] = []
    for low, high in sorted(ranges):
        if merged and low <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return tuple(merged)


def _intersection(ranges: Sequence[AgeRange]) -> AgeRange | None:
    if not ranges:
        return None
    low, high = max(r[0] for r in ranges), min(r[1] for r in ranges)
    return (low, high) if low <= high else ranges[0]
