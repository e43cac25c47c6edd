"""The offline generator: valid, varied, deterministic drafts without any network."""

import uuid
from datetime import UTC, datetime

import pytest

from persona_pipeline.consumers.demographics import DEFAULT_TABLE
from persona_pipeline.consumers.generators.base import GenerationTask, PersonaGenerator
from persona_pipeline.consumers.generators.offline import OfflineGenerator, _indefinite
from persona_pipeline.consumers.grounding import DemographicSampler
from persona_pipeline.contracts import (
    BigFive,
    Constraints,
    Persona,
    PersonaDraft,
    Skeleton,
    TokenUsage,
)

SEED = 1234
BRIEF = "urban cyclists in Berlin"
GENERATIONS = {"gen-z", "millennial", "gen-x", "boomer", "silent-generation"}


@pytest.fixture(scope="module")
def generator() -> OfflineGenerator:
    return OfflineGenerator()


@pytest.fixture(scope="module")
def sampler() -> DemographicSampler:
    return DemographicSampler()


def task_for(
    sampler: DemographicSampler,
    ordinal: int,
    constraints: Constraints | None = None,
    brief: str = BRIEF,
    seed: int = SEED,
) -> GenerationTask:
    skeleton = sampler.sample(constraints or Constraints(), seed, ordinal)
    return GenerationTask(brief=brief, skeleton=skeleton, ordinal=ordinal, seed=seed)


def skeleton_with(**changes: object) -> Skeleton:
    base = {
        "age": 34,
        "gender": "female",
        "location": {"city": "Berlin", "country": "Germany", "country_code": "DE"},
        "occupation": "Software developer",
        "personality": dict.fromkeys(BigFive.model_fields, 0.5),
    }
    return Skeleton.model_validate({**base, **changes})


# --- The protocol ----------------------------------------------------------------------------


async def test_generate_returns_a_draft_and_no_token_usage(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    implementation: PersonaGenerator = generator
    task = task_for(sampler, 0)
    generated = await implementation.generate(task)
    assert isinstance(generated.draft, PersonaDraft)
    assert generated.usage == TokenUsage()
    assert generated.usage.total_tokens == 0
    assert (implementation.name, implementation.model) == ("offline", "offline-v1")
    await implementation.aclose()


async def test_the_draft_assembles_into_a_persona(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    task = task_for(sampler, 3)
    generated = await generator.generate(task)
    persona = Persona.assemble(
        request_id=uuid.uuid4(),
        ordinal=task.ordinal,
        skeleton=task.skeleton,
        draft=generated.draft,
        generator=generator.name,
        model=generator.model,
        usage=generated.usage,
        created_at=datetime.now(UTC),
    )
    assert persona.generator == "offline"
    assert persona.name == generated.draft.name


# --- Determinism and variety -----------------------------------------------------------------


async def test_same_task_gives_the_same_draft(sampler: DemographicSampler) -> None:
    task = task_for(sampler, 5, Constraints(country="India"))
    first = await OfflineGenerator().generate(task)
    second = await OfflineGenerator().generate(task)
    assert first == second


def test_different_ordinals_give_different_drafts(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    drafts = {generator.draft(task_for(sampler, i)).model_dump_json() for i in range(100)}
    assert len(drafts) == 100


def test_same_skeleton_different_ordinal_reads_differently(generator: OfflineGenerator) -> None:
    skeleton = skeleton_with()
    drafts = [
        generator.draft(GenerationTask(brief=BRIEF, skeleton=skeleton, ordinal=i, seed=SEED))
        for i in range(20)
    ]
    assert len({d.name for d in drafts}) > 10
    assert len({d.bio for d in drafts}) == 20


def test_names_are_varied_and_fit_the_country(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    # The anglo pool has 22 given names per gender and 25 family names, ~550
    # combinations per gender; 200 draws then expect about 18 repeats (~91%
    # distinct), so 80% leaves room without accepting a broken sampler.
    pool = DEFAULT_TABLE.name_pools["anglo"]
    drafts = [generator.draft(task_for(sampler, i, Constraints(country="US"))) for i in range(200)]
    names = [d.name for d in drafts]
    assert len(set(names)) >= 160
    assert all(name.split()[-1] in pool.family for name in names)


def test_content_varies_across_personas(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    drafts = [generator.draft(task_for(sampler, i)) for i in range(200)]
    interests = {i for d in drafts for i in d.interests}
    goals = {g for d in drafts for g in d.goals}
    pains = {p for d in drafts for p in d.pain_points}
    assert len(interests) >= 60
    assert len(goals) >= 30
    assert len(pains) >= 25
    assert len({d.bio.split(".")[0] for d in drafts}) == 200


# --- What the draft says ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "constraints",
    [
        Constraints(),
        Constraints(country="Japan"),
        Constraints(country="pl", min_age=70),
        Constraints(country="new zealand", min_age=16, max_age=17),
        Constraints(occupation="Head of Marketing", max_age=100, min_age=90),
        Constraints(occupation="x" * 80, country="Z" * 60),
    ],
)
def test_drafts_stay_within_the_schema_limits(
    generator: OfflineGenerator, sampler: DemographicSampler, constraints: Constraints
) -> None:
    for ordinal in range(100):
        draft = generator.draft(task_for(sampler, ordinal, constraints))
        assert 3 <= len(draft.interests) <= 6
        assert 2 <= len(draft.goals) <= 3
        assert 2 <= len(draft.pain_points) <= 3
        assert len(set(draft.interests)) == len(draft.interests)
        assert "offline" in draft.tags
        assert GENERATIONS & set(draft.tags)
        PersonaDraft.model_validate(draft.model_dump())


def test_bio_states_the_skeleton_and_the_brief(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    for ordinal in range(100):
        task = task_for(sampler, ordinal)
        bio = generator.draft(task).bio
        skeleton = task.skeleton
        assert str(skeleton.age) in bio
        assert skeleton.location.city in bio
        assert skeleton.occupation.lower() in bio.lower()
        assert f"Part of the audience for: {BRIEF}." in bio
        assert 3 <= bio.count(". ") + 1 <= 4, bio


def test_bio_names_the_persona(generator: OfflineGenerator, sampler: DemographicSampler) -> None:
    draft = generator.draft(task_for(sampler, 1))
    assert draft.name in draft.bio


def test_a_long_brief_is_shortened_in_the_bio(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    brief = " ".join(["commuters who cycle to work all year"] * 60)[:2000]
    draft = generator.draft(task_for(sampler, 0, brief=brief))
    assert len(draft.bio) < 1000
    assert draft.bio.endswith("…")
    assert "Part of the audience for: commuters who cycle to work" in draft.bio


def test_brief_whitespace_and_trailing_punctuation_are_tidied(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    draft = generator.draft(task_for(sampler, 0, brief="  parents of\n toddlers  in Lyon!  "))
    assert draft.bio.endswith("Part of the audience for: parents of toddlers in Lyon.")


def test_an_unknown_city_is_not_repeated(
    generator: OfflineGenerator, sampler: DemographicSampler
) -> None:
    for ordinal in range(30):
        bio = generator.draft(task_for(sampler, ordinal, Constraints(country="new zealand"))).bio
        assert "New Zealand" in bio
        assert "New Zealand, New Zealand" not in bio


def test_personality_colours_the_interests(generator: OfflineGenerator) -> None:
    curious = skeleton_with(
        personality={**dict.fromkeys(BigFive.model_fields, 0.5), "openness": 0.95}
    )
    drafts = [
        generator.draft(GenerationTask(brief=BRIEF, skeleton=curious, ordinal=i, seed=SEED))
        for i in range(30)
    ]
    open_minded = {"travel", "art galleries", "world cinema", "learning languages"}
    assert all(open_minded & set(d.interests) for d in drafts)


@pytest.mark.parametrize(
    ("age", "label"),
    [
        (18, "gen-z"),
        (28, "gen-z"),
        (35, "millennial"),
        (50, "gen-x"),
        (70, "boomer"),
        (90, "silent-generation"),
    ],
)
def test_tags_carry_the_generation(generator: OfflineGenerator, age: int, label: str) -> None:
    task = GenerationTask(brief=BRIEF, skeleton=skeleton_with(age=age), ordinal=0, seed=SEED)
    assert generator.draft(task).tags == [label, "tech", "de", "offline"]


@pytest.mark.parametrize(
    ("phrase", "article"),
    [
        ("18-year-old", "an"),
        ("80-year-old", "an"),
        ("34-year-old", "a"),
        ("MRI technician", "an"),
        ("CEO", "a"),
        ("accountant", "an"),
        ("university student", "a"),
        ("hairdresser", "a"),
        ("honest broker", "an"),
    ],
)
def test_indefinite_article(phrase: str, article: str) -> None:
    assert _indefinite(phrase) == article
