"""A deterministic, template-based generator: no network, no API key, no cost.

It exists so the whole pipeline runs (in development, CI and demos) without an
LLM. Its personas are plausible but formulaic, and every one is labelled
``generator="offline"`` so nobody mistakes them for model output.

Everything is derived from ``(seed, ordinal, skeleton, brief)``: the RNG is
seeded from a string of those (``random.Random`` hashes string seeds with
SHA-512, so the result is stable across processes, unlike ``hash()``). The text
is English whatever ``task.locale`` says; translating templates is out of scope.

The plan's subject (``urban cyclists``) runs through every persona: its activity
(``cycling``) leads the interests, one goal and one pain point are about it, and the
bio names the role and the persona's traits of the plan, so a search for the subject
finds them all.
"""

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import NamedTuple, TypeVar

from persona_audience.gazetteer import Gazetteer
from persona_audience.reference import Reference, SubjectEntry
from persona_contracts import BigFive, PersonaDraft, Skeleton, TokenUsage
from persona_infra.settings import OFFLINE_MODEL
from persona_infra.text import fold
from persona_worker.generators.base import Generated, GenerationTask
from persona_worker.names import NameSampler

SUBJECT_IN_TEXT_CHARS = 80
"""A longer subject is cut at a word boundary where it goes into an interest or a goal."""

TRAIT_NOTABLE = 0.15
"""How far from the 0.5 midpoint a trait must be before the text mentions it."""

T = TypeVar("T")

Trait = tuple[str, bool]
"""A Big Five trait name and whether it is high (True) or low (False)."""

# Word prefixes that guess the family of an occupation the table does not know
# (a forced occupation). Checked in order; the first family with a match wins.
_FAMILY_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("student", ("student", "pupil", "trainee", "apprentice")),
    ("retired", ("retire", "pensioner")),
    ("seeking", ("unemployed", "jobless")),
    ("tech", ("software", "developer", "programmer", "data", "devops", "cyber", "sysadmin")),
    ("health", ("nurse", "doctor", "physician", "medic", "pharma", "dentist", "therap", "mri")),
    ("health", ("radiograph", "midwife", "paramedic", "carer", "caregiv", "health")),
    ("education", ("teacher", "lecturer", "professor", "tutor", "educat")),
    ("science", ("scien", "engineer", "research", "chemist", "physicist", "biolog")),
    ("creative", ("design", "artist", "writer", "journalist", "music", "photograph", "creator")),
    ("trades", ("electric", "plumb", "carpent", "mechanic", "builder", "construct", "weld")),
    ("agriculture", ("farm", "agricult", "fisher", "rancher", "gardener")),
    ("transport", ("driver", "pilot", "courier", "logistic")),
    ("public", ("lawyer", "police", "civil", "officer", "government", "solicitor", "judge")),
    ("business", ("manager", "founder", "owner", "accountant", "consultant", "sales", "market")),
    ("service", ("barista", "waiter", "chef", "cook", "retail", "cashier", "clean", "hair")),
)

_FAMILY_INTERESTS: dict[str, tuple[str, ...]] = {
    "tech": ("open-source projects", "home automation", "mechanical keyboards", "indie games"),
    "health": ("nutrition", "mindfulness", "medical podcasts", "running"),
    "education": ("history documentaries", "book clubs", "museums", "language learning"),
    "trades": ("DIY projects", "car restoration", "woodworking", "fishing"),
    "agriculture": ("local markets", "growing heirloom vegetables", "community events"),
    "transport": ("motorsport", "audiobooks", "road trips", "true-crime podcasts"),
    "service": ("fashion", "dancing", "street food", "music playlists"),
    "business": ("investing", "business podcasts", "productivity apps", "networking events"),
    "public": ("local politics", "quiz nights", "history", "community volunteering"),
    "creative": ("sketching", "vinyl records", "film festivals", "street photography"),
    "science": ("astronomy", "science podcasts", "puzzles", "chess"),
    "student": ("esports", "thrift shopping", "music festivals", "student societies"),
    "retired": ("birdwatching", "crosswords", "local history", "family gatherings"),
    "home": ("crafts", "parenting forums", "home cooking", "community groups"),
    "seeking": ("free online courses", "walking", "budget cooking", "podcasts"),
    "other": ("podcasts", "documentaries", "weekend markets", "walking"),
}

_TRAIT_NAMES = ("openness", "conscientiousness", "extraversion", "agreeableness", "neuroticism")

_GENERAL_INTERESTS = (
    "cooking",
    "hiking",
    "photography",
    "reading fiction",
    "podcasts",
    "football",
    "cycling",
    "gardening",
    "yoga",
    "board games",
    "video games",
    "running",
    "live music",
    "baking",
    "film",
    "swimming",
    "personal finance",
    "home improvement",
    "volunteering",
    "specialty coffee",
    "streaming series",
    "camping",
    "time with pets",
    "sustainable living",
)
_YOUNG_INTERESTS = ("social media", "streetwear", "gaming streams", "short-form video")
_OLDER_INTERESTS = ("walking groups", "crosswords", "gardening", "radio")

_TRAIT_INTERESTS: dict[Trait, tuple[str, ...]] = {
    ("openness", True): ("travel", "art galleries", "world cinema", "learning languages"),
    ("openness", False): ("family traditions", "local sports", "television"),
    ("conscientiousness", True): ("fitness tracking", "meal prep", "budgeting apps"),
    ("conscientiousness", False): ("spontaneous weekend trips", "people-watching"),
    ("extraversion", True): ("hosting dinners", "team sports", "festivals"),
    ("extraversion", False): ("journaling", "solo hikes", "jigsaw puzzles"),
    ("agreeableness", True): ("volunteering", "animal rescue", "choir singing"),
    ("agreeableness", False): ("debating", "competitive gaming"),
    ("neuroticism", True): ("meditation apps", "comfort TV"),
    ("neuroticism", False): ("rock climbing", "extreme sports"),
}

_TRAIT_ADJECTIVES: dict[Trait, str] = {
    ("openness", True): "curious",
    ("openness", False): "practical",
    ("conscientiousness", True): "organised",
    ("conscientiousness", False): "spontaneous",
    ("extraversion", True): "outgoing",
    ("extraversion", False): "reserved",
    ("agreeableness", True): "warm",
    ("agreeableness", False): "blunt",
    ("neuroticism", True): "quick to worry",
    ("neuroticism", False): "even-tempered",
}

_FAMILY_GOALS: dict[str, tuple[str, ...]] = {
    "tech": ("Ship a side project that real people use", "Move into a more senior technical role"),
    "health": (
        "Find a shift pattern that leaves room for a life outside work",
        "Earn a specialist certification",
    ),
    "education": (
        "Keep students engaged without burning out",
        "Find good, affordable teaching resources",
    ),
    "trades": ("Earn a recognised qualification in their trade", "Get a pay rise that keeps up"),
    "agriculture": ("Get fairer prices for the harvest", "Invest in more efficient equipment"),
    "transport": ("Earn more per hour on the road", "Spend fewer nights away from home"),
    "service": ("Get more predictable hours", "Move up to a supervisor role"),
    "business": ("Grow revenue without working longer hours", "Automate the boring admin"),
    "public": ("Make a visible difference in the community", "Cut through red tape faster"),
    "creative": ("Land steadier, better-paid clients", "Finish a personal project"),
    "science": ("Publish work that gets noticed", "Secure funding for the next project"),
    "student": ("Graduate with a job lined up", "Build a portfolio alongside studying"),
    "retired": (
        "Stay healthy and independent for as long as possible",
        "Make savings last through retirement",
    ),
    "home": ("Carve out a little time for themselves", "Keep the household budget on track"),
    "seeking": (
        "Find stable work that fits their skills",
        "Pick up a qualification employers want",
    ),
    "other": ("Get a pay rise that keeps up with prices", "Learn skills that open up new roles"),
}

_GENERAL_GOALS = (
    "Build up an emergency fund",
    "Spend more time with family and friends",
    "Get fitter and sleep better",
    "See somewhere new every year",
    "Learn a new skill just for the fun of it",
    "Pay off debt faster",
    "Cut down on screen time",
    "Find a home in {city} they can afford",
    "Build a stronger local network in {city}",
)

_FAMILY_PAINS: dict[str, tuple[str, ...]] = {
    "tech": ("Meetings that break up time for focused work", "Tools that change every quarter"),
    "health": ("Long, irregular shifts and chronic understaffing", "Paperwork that eats into care"),
    "education": (
        "Large classes and piles of paperwork",
        "Buying classroom supplies out of pocket",
    ),
    "trades": ("Physically demanding work that takes a toll", "Jobs that depend on the weather"),
    "agriculture": ("Unpredictable weather and crop prices", "Rising costs of seed and fuel"),
    "transport": ("Fuel costs and traffic eating into earnings", "Long hours sitting still"),
    "service": ("Unpredictable hours and low pay", "Rude customers on busy days"),
    "business": ("Slow approvals and too much admin", "Chasing late payments"),
    "public": ("Bureaucracy that slows everything down", "Public criticism of their work"),
    "creative": ("Irregular income", "Clients who undervalue creative work"),
    "science": ("Chasing funding instead of doing research", "Short, insecure contracts"),
    "student": ("Tuition and rent leave little money for anything else", "Exam pressure"),
    "retired": ("Technology that assumes everyone grew up online", "Health care costs"),
    "home": ("Unpaid work that nobody notices", "Little time to themselves"),
    "seeking": (
        "Job applications that never get a reply",
        "Roles that ask for years of experience",
    ),
    "other": ("A workload that grows faster than pay", "Too little recognition at work"),
}

_TRAIT_PAINS: dict[Trait, str] = {
    ("neuroticism", True): "Gets anxious when plans change at the last minute",
    ("conscientiousness", False): "Struggles to keep on top of paperwork and deadlines",
    ("extraversion", True): "Feels isolated after long stretches working alone",
    ("extraversion", False): "Finds crowded, noisy places draining",
    ("openness", True): "Gets bored quickly by routine",
    ("agreeableness", True): "Finds it hard to say no to requests",
}

_SUBJECT_GOALS = (
    "Make {activity} a bigger part of everyday life in {city}",
    "Get more out of {activity} without spending more",
    "Find {activity} options that actually fit their routine",
    "Meet people in {city} who share their take on {activity}",
)

_SUBJECT_PAINS = (
    "Finding time for {activity} around everything else",
    "{activity} in {city} is harder than it should be",
    "Most of what is offered for {activity} is not made for people like them",
    "Good, honest information about {activity} is hard to find",
)

_GENERAL_PAINS = (
    "The rising cost of living squeezes the monthly budget",
    "Too little free time for everything they want to do",
    "Too many apps, accounts and subscriptions to keep track of",
    "Hard to tell which online reviews to trust",
    "Getting around {city} takes too long",
    "Customer support that never actually solves the problem",
    "Worries about how much personal data companies collect",
    "Hidden fees and confusing pricing",
)


class _Pronouns(NamedTuple):
    subject: str
    object: str
    possessive: str
    be: str
    verb_suffix: str
    have: str


_PRONOUNS = {
    "female": _Pronouns("she", "her", "her", "is", "s", "has"),
    "male": _Pronouns("he", "him", "his", "is", "s", "has"),
    "non-binary": _Pronouns("they", "them", "their", "are", "", "have"),
}
# Families whose members do not "work as" their occupation ("works as a retiree").
_NOT_WORKING = frozenset({"student", "retired", "home", "seeking"})
# Letters whose English name starts with a vowel sound: "an MRI technician".
_VOWEL_SOUND_LETTERS = frozenset("AEFHILMNORSX")
# Vowel-initial words said with a consonant sound: "a university student".
_CONSONANT_SOUND_PREFIXES = ("uni", "use", "usu", "uti", "ubi", "uber", "eu", "ewe", "one", "once")


@dataclass(frozen=True, slots=True)
class _Subject:
    """The plan's subject as the templates use it."""

    phrase: str
    """As the plan says it: ``urban cyclists``."""
    activity: str
    """What a persona's interests can hold: ``cycling`` (the phrase when nothing is known)."""
    role: str | None
    """One member: ``cyclist``; unknown for subjects the lexicon does not know."""

    @classmethod
    def of(cls, phrase: str, entry: SubjectEntry | None) -> "_Subject":
        short = _cut(phrase, SUBJECT_IN_TEXT_CHARS)
        if entry is None:
            return cls(short, short, None)
        return cls(short, entry.activity, entry.role)

    @property
    def plural(self) -> bool:
        """Whether the phrase names people (``urban cyclists``) rather than an activity."""
        last = self.phrase.split()[-1].casefold()
        return last.endswith("s") and not last.endswith(("ss", "ing", "ics"))


@dataclass(frozen=True, slots=True)
class _Facts:
    """What the templates need to know about one persona."""

    skeleton: Skeleton
    name: str
    family: str
    traits: tuple[Trait, ...]
    subject: _Subject | None = None

    @property
    def pronouns(self) -> _Pronouns:
        return _PRONOUNS[self.skeleton.gender]

    @property
    def plan_traits(self) -> dict[str, str]:
        cell = self.skeleton.cell
        return dict(cell.traits) if cell is not None else {}


class OfflineGenerator:
    """Writes a persona's narrative from templates and pools; see the module docstring."""

    name = "offline"
    model = OFFLINE_MODEL

    def __init__(
        self, gazetteer: Gazetteer | None = None, reference: Reference | None = None
    ) -> None:
        self._names = NameSampler(gazetteer or Gazetteer.load())
        self._reference = reference or Reference.load()
        self._families = {
            fold(name): job.family
            for job in self._reference.occupations
            for name in (job.title, *job.aliases)
        }

    async def generate(self, task: GenerationTask) -> Generated:
        return Generated(draft=self.draft(task), usage=TokenUsage())

    async def aclose(self) -> None:
        return None

    def draft(self, task: GenerationTask) -> PersonaDraft:
        """The narrative for one task; synchronous so benchmarks and tests can call it directly."""
        skeleton = task.skeleton
        rng = random.Random(
            f"{self.model}:{task.seed}:{task.ordinal}:{task.variant}:{_key(skeleton)}:{task.brief}"
        )
        subject = (
            _Subject.of(task.subject, self._reference.lexicon.subject_of(task.subject))
            if task.subject
            else None
        )
        facts = _Facts(
            skeleton=skeleton,
            name=self._names.name(skeleton, rng).full,
            family=self._family(skeleton.occupation),
            traits=_notable_traits(skeleton.personality),
            subject=subject,
        )
        interests = _interests(rng, facts)
        city = _place(skeleton, with_country=False)
        return PersonaDraft(
            name=facts.name,
            bio=_bio(rng, facts, interests),
            interests=interests,
            goals=_goals(rng, facts, city),
            pain_points=_pain_points(rng, facts, city),
            tags=_tags(facts),
        )

    def _family(self, occupation: str) -> str:
        """The occupation's family from the catalogue, else a keyword guess, else ``other``."""
        family = self._families.get(fold(occupation))
        if family is not None and family in _FAMILY_GOALS:
            return family
        words = occupation.casefold().replace("/", " ").replace("-", " ").split()
        matches = (f for f, prefixes in _FAMILY_KEYWORDS if _any_prefix(words, prefixes))
        return next(matches, "other")


def _key(skeleton: Skeleton) -> str:
    """A cheap, stable fingerprint of the skeleton for the RNG seed."""
    loc, p = skeleton.location, skeleton.personality
    traits = (p.openness, p.conscientiousness, p.extraversion, p.agreeableness, p.neuroticism)
    return (
        f"{skeleton.age}|{skeleton.gender}|{loc.city}|{loc.country}|{skeleton.occupation}|{traits}"
    )


def _any_prefix(words: Sequence[str], prefixes: Sequence[str]) -> bool:
    return any(word.startswith(prefix) for word in words for prefix in prefixes)


def _notable_traits(personality: BigFive) -> tuple[Trait, ...]:
    """Traits far enough from the midpoint to colour the text, most extreme first."""
    distances = [(abs(getattr(personality, t) - 0.5), t) for t in _TRAIT_NAMES]
    notable = sorted((d, t) for d, t in distances if d > TRAIT_NOTABLE)
    return tuple((t, getattr(personality, t) > 0.5) for _, t in reversed(notable))


def _interests(rng: random.Random, facts: _Facts) -> list[str]:
    """A mix: one from the job's world, some from personality and age, the rest general."""
    count = _between(rng, 3, 6)
    picks = [_choice(rng, _FAMILY_INTERESTS[facts.family])]
    picks += [_choice(rng, _TRAIT_INTERESTS[trait]) for trait in facts.traits[:2]]
    age = facts.skeleton.age
    if age < 30 or age >= 60:
        picks.append(_choice(rng, _YOUNG_INTERESTS if age < 30 else _OLDER_INTERESTS))
    chosen = _unique([*picks, *_sample(rng, _GENERAL_INTERESTS, count)])[:count]
    shuffled = _sample(rng, chosen, len(chosen))
    if facts.subject is None:
        return shuffled
    return _unique([facts.subject.activity, *shuffled])[:count]


def _bio(rng: random.Random, facts: _Facts, interests: Sequence[str]) -> str:
    """Two to four sentences: who and where, then personality and/or pastimes, then how the
    subject of the research fits in."""
    middle = _choice(rng, ("both", "both", "traits", "interests"))
    sentences = [_intro(rng, facts)]
    if middle != "interests":
        sentences.append(_trait_sentence(rng, facts))
    if middle != "traits" and len(interests) > 1:
        sentences.append(_interest_sentence(facts, interests))
    if facts.subject is not None:
        sentences.append(_subject_sentence(facts.subject, facts))
    return " ".join(sentences)


def _intro(rng: random.Random, facts: _Facts) -> str:
    """Who, how old, what they do and where: the facts every bio must state."""
    skeleton, name = facts.skeleton, facts.name
    job = _noun_phrase(skeleton.occupation)
    place = _place(skeleton, with_country=True)
    variant = int(rng.random() * 3)
    if variant == 0:
        age = f"{skeleton.age}-year-old"
        return f"{name} is {_indefinite(age)} {age} {job} living in {place}."
    if variant == 1:
        verb = "is" if facts.family in _NOT_WORKING else "works as"
        return f"{name}, {skeleton.age}, {verb} {_indefinite(job)} {job} in {place}."
    return f"Based in {place}, {name} is {_indefinite(job)} {job} aged {skeleton.age}."


def _trait_sentence(rng: random.Random, facts: _Facts) -> str:
    pronouns = facts.pronouns
    adjectives = [_TRAIT_ADJECTIVES[t] for t in facts.traits[:2]]
    if not adjectives:
        return f"People who know {pronouns.object} find {pronouns.object} easy to get along with."
    described = " and ".join(adjectives)
    if rng.random() < 0.5:
        return f"Friends describe {pronouns.object} as {described}."
    return f"{pronouns.subject.capitalize()} {pronouns.be} {described} by nature."


def _interest_sentence(facts: _Facts, interests: Sequence[str]) -> str:
    p = facts.pronouns
    pastimes = f"{interests[0]} and {interests[1]}"
    return f"In {p.possessive} spare time {p.subject} enjoy{p.verb_suffix} {pastimes}."


def _subject_sentence(subject: _Subject, facts: _Facts) -> str:
    """How the persona belongs to the research: the role, the phrase, the plan's traits."""
    p = facts.pronouns
    if subject.plural:
        belongs = f"{p.subject} {p.be} one of the {subject.phrase} this research looks at"
    else:
        belongs = f"{p.subject} {p.have} a real stake in {subject.phrase}"
    if subject.role:
        sentence = f"As {_indefinite(subject.role)} {subject.role}, {belongs}"
    else:
        sentence = belongs[:1].upper() + belongs[1:]
    traits = "; ".join(f"{name}: {value}" for name, value in facts.plan_traits.items())
    return f"{sentence} ({traits})." if traits else f"{sentence}."


def _goals(rng: random.Random, facts: _Facts, city: str) -> list[str]:
    general = _sample(rng, _GENERAL_GOALS, _between(rng, 1, 2))
    goals = [_choice(rng, _FAMILY_GOALS[facts.family]), *(g.format(city=city) for g in general)]
    if facts.subject is not None:
        template = _choice(rng, _SUBJECT_GOALS)
        goals.insert(0, _capitalised(template.format(activity=facts.subject.activity, city=city)))
    return goals


def _pain_points(rng: random.Random, facts: _Facts, city: str) -> list[str]:
    count = _between(rng, 2, 3)
    trait_pains = [_TRAIT_PAINS[t] for t in facts.traits if t in _TRAIT_PAINS][:1]
    general = [p.format(city=city) for p in _sample(rng, _GENERAL_PAINS, count)]
    family_pain = _choice(rng, _FAMILY_PAINS[facts.family])
    pains = _unique([family_pain, *trait_pains, *general])[:count]
    if facts.subject is not None:
        template = _choice(rng, _SUBJECT_PAINS)
        pains.insert(0, _capitalised(template.format(activity=facts.subject.activity, city=city)))
    return pains


def _tags(facts: _Facts) -> list[str]:
    skeleton = facts.skeleton
    code = skeleton.location.country_code
    tags = [_generation(skeleton.age), facts.family, *([code.lower()] if code else [])]
    if facts.subject is not None:
        tags.append(_cut(facts.subject.activity.lower(), 60))
    return _unique([*tags, "offline"])


def _capitalised(sentence: str) -> str:
    return sentence[:1].upper() + sentence[1:]


def _cut(text: str, limit: int) -> str:
    """``text`` cut at a word boundary to at most ``limit`` characters."""
    text = " ".join(text.split()).rstrip(".!?;:, ")
    if len(text) <= limit:
        return text
    cut = text[:limit]
    return cut.rsplit(" ", 1)[0] if " " in cut else cut


def _generation(age: int) -> str:
    """Generation label by age, pinned to the mid-2020s so output never drifts with the clock."""
    for limit, label in ((28, "gen-z"), (44, "millennial"), (60, "gen-x"), (79, "boomer")):
        if age <= limit:
            return label
    return "silent-generation"


def _place(skeleton: Skeleton, *, with_country: bool) -> str:
    """``City, Country``; just the country when the city is unknown (equals the country)."""
    location = skeleton.location
    if location.city.casefold() == location.country.casefold():
        return location.country
    return f"{location.city}, {location.country}" if with_country else location.city


def _noun_phrase(occupation: str) -> str:
    """Lower-case a sentence-case title ("Software developer") for mid-sentence use.

    Titles that look deliberately cased ("IT support", "Uber Driver") are kept.
    """
    first, *rest = occupation.split()
    sentence_case = first[:1].isupper() and first[1:].islower()
    all_titled = bool(rest) and all(word[:1].isupper() for word in rest)
    return (
        occupation[:1].lower() + occupation[1:] if sentence_case and not all_titled else occupation
    )


def _indefinite(phrase: str) -> str:
    """``a`` or ``an`` by sound, good enough for ages, acronyms and job titles."""
    word = phrase.split()[0].split("-")[0]
    if word.isdigit():
        return "an" if word.startswith("8") or word in {"11", "18"} else "a"
    if len(word) > 1 and word.isupper():
        return "an" if word[0] in _VOWEL_SOUND_LETTERS else "a"
    lower = word.lower()
    if lower.startswith(("hour", "honest", "honou", "honor", "heir")):
        return "an"
    vowel = lower[:1] in {"a", "e", "i", "o", "u"}
    return "an" if vowel and not lower.startswith(_CONSONANT_SOUND_PREFIXES) else "a"


def _unique(items: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(items))


# Draw helpers built on ``rng.random()`` alone: several times faster than
# ``choice``/``sample``/``randint`` (which pay for ABC checks and bit-twiddling)
# and just as deterministic; the bias of ``int(random() * n)`` is negligible here.
def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _choice(rng: random.Random, items: Sequence[T]) -> T:
    return items[int(rng.random() * len(items))]


def _sample(rng: random.Random, items: Sequence[T], k: int) -> list[T]:
    """``k`` distinct items in random order (a partial Fisher-Yates shuffle)."""
    pool = list(items)
    for i in range(k):
        j = i + int(rng.random() * (len(pool) - i))
        pool[i], pool[j] = pool[j], pool[i]
    return pool[:k]
