"""The offline generator: valid, varied, deterministic drafts without any network."""

import uuid
from datetime import UTC, datetime

import pytest

from persona_contracts import (
    BigFive,
    Constraints,
    Persona,
    PersonaDraft,
    Skeleton,
    TokenUsage,
)
from persona_infra.text import terms
from persona_worker.generators.base import GenerationTask, PersonaGenerator
from persona_worker.generators.offline import OfflineGenerator, _indefinite
from tests.support.planning import plan_for, sampler

SEED = 1234
BRIEF = "urban cyclists in Berlin"
GENERATIONS = {"gen-z", "millennial", "gen-x", "boomer", "silent-generation"}


@pytest.fixture(scope="module")
def generator() -> OfflineGenerator:
    return OfflineGenerator()


def tasks_for(
    count: int,
    constraints: Constraints | None = None,
    brief: str = BRIEF,
    seed: int = SEED,
) -> list[GenerationTask]:
    """The tasks of one request of ``count`` personas, as the worker builds them."""
    plan = plan_for(brief, constraints)
    cells = sampler().cells(plan, count, seed)
    return [
        GenerationTask(
            brief=brief,
            skeleton=sampler().skeleton(cell, seed, ordinal),
            ordinal=ordinal,
            seed=seed,
            subject=plan.subject,
        )
        for ordinal, cell in enumerate(cells)
    ]


def task_for(
    ordinal: int, constraints: Constraints | None = None, brief: str = BRIEF
) -> GenerationTask:
    return tasks_for(ordinal + 1, constraints, brief)[ordinal]


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


async def test_generate_returns_a_draft_and_no_token_usage(generator: OfflineGenerator) -> None:
    implementation: PersonaGenerator = generator
    task = task_for(0)
    generated = await implementation.generate(task)
    assert isinstance(generated.draft, PersonaDraft)
    assert generated.usage == TokenUsage()
    assert generated.usage.total_tokens == 0
    assert (implementation.name, implementation.model) == ("offline", "offline-v1")
    await implementation.aclose()


async def test_the_draft_assembles_into_a_persona(generator: OfflineGenerator) -> None:
    task = task_for(3)
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


async def test_same_task_gives_the_same_draft() -> None:
    task = task_for(5, Constraints(country="India"), brief="commuters")
    first = await OfflineGenerator().generate(task)
    second = await OfflineGenerator().generate(task)
    assert first == second


def test_different_ordinals_give_different_drafts(generator: OfflineGenerator) -> None:
    drafts = {generator.draft(task).model_dump_json() for task in tasks_for(100)}
    assert len(drafts) == 100


def test_same_skeleton_different_ordinal_reads_differently(generator: OfflineGenerator) -> None:
    skeleton = skeleton_with()
    drafts = [
        generator.draft(GenerationTask(brief=BRIEF, skeleton=skeleton, ordinal=i, seed=SEED))
        for i in range(20)
    ]
    assert len({d.name for d in drafts}) > 10
    assert len({d.bio for d in drafts}) == 20


def test_names_are_varied_and_fit_the_country(generator: OfflineGenerator) -> None:
    us = [generator.draft(t).name for t in tasks_for(200, brief="people in the United States")]
    japan = [generator.draft(t).name for t in tasks_for(50, brief="people in Japan")]
    assert len(set(us)) >= 180
    assert all(name.isascii() and len(name.split()) >= 2 for name in us)
    assert all(name.isascii() for name in japan), "romanised names for English text"
    assert us[:5] != japan[:5]


def test_content_varies_across_personas(generator: OfflineGenerator) -> None:
    drafts = [generator.draft(task) for task in tasks_for(200, brief="a survey of shoppers")]
    interests = {i for d in drafts for i in d.interests}
    goals = {g for d in drafts for g in d.goals}
    pains = {p for d in drafts for p in d.pain_points}
    assert len(interests) >= 50
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
        Constraints(occupation="x" * 80, country="Tuvalu"),
    ],
)
def test_drafts_stay_within_the_schema_limits(
    generator: OfflineGenerator, constraints: Constraints
) -> None:
    for task in tasks_for(100, constraints, brief="x" * 2000):
        draft = generator.draft(task)
        assert 3 <= len(draft.interests) <= 6
        assert 2 <= len(draft.goals) <= 4
        assert 2 <= len(draft.pain_points) <= 4
        assert len(set(draft.interests)) == len(draft.interests)
        assert "offline" in draft.tags
        assert GENERATIONS & set(draft.tags)
        PersonaDraft.model_validate(draft.model_dump())


def test_bio_states_the_skeleton_and_the_subject(generator: OfflineGenerator) -> None:
    for task in tasks_for(100):
        bio = generator.draft(task).bio
        skeleton = task.skeleton
        assert str(skeleton.age) in bio
        assert skeleton.location.city in bio
        assert skeleton.occupation.lower() in bio.lower()
        assert "As a cyclist, " in bio
        assert "one of the urban cyclists this research looks at" in bio
        assert 3 <= bio.count(". ") + 1 <= 5, bio


def test_the_subject_runs_through_interests_goals_and_pain_points(
    generator: OfflineGenerator,
) -> None:
    """A search for the brief's subject finds every persona of it."""
    for task in tasks_for(50):
        draft = generator.draft(task)
        assert draft.interests[0] == "cycling"
        assert any("cycling" in goal for goal in draft.goals)
        assert any("cycling" in pain.lower() for pain in draft.pain_points)
        searchable = set(terms(" ".join([draft.bio, *draft.interests])))
        assert {"cyclist", "cyclists", "cycling"} <= searchable


def test_the_plan_traits_of_the_persona_are_in_the_bio(generator: OfflineGenerator) -> None:
    for task in tasks_for(20):
        assert task.skeleton.cell is not None
        (name, value), *_ = task.skeleton.cell.traits.items()
        assert f"{name}: {value}" in generator.draft(task).bio


def test_a_subject_the_lexicon_does_not_know_is_used_as_written(
    generator: OfflineGenerator,
) -> None:
    for task in tasks_for(10, brief="amateur beekeepers in Slovenia"):
        draft = generator.draft(task)
        assert draft.interests[0] == "amateur beekeepers"
        assert "one of the amateur beekeepers this research looks at" in draft.bio


def test_a_brief_without_a_subject_adds_none(generator: OfflineGenerator) -> None:
    for task in tasks_for(10, brief="women in Lagos"):
        assert task.subject is None
        assert "research" not in generator.draft(task).bio


def test_a_long_subject_is_shortened(generator: OfflineGenerator) -> None:
    brief = " ".join(["commuters who cycle to work all year"] * 60)[:2000]
    draft = generator.draft(task_for(0, brief=brief))
    assert len(draft.bio) < 1000
    assert all(len(interest) <= 120 for interest in draft.interests)
    PersonaDraft.model_validate(draft.model_dump())


def test_a_city_equal_to_its_country_is_not_repeated(generator: OfflineGenerator) -> None:
    skeleton = skeleton_with(
        location={"city": "Singapore", "country": "Singapore", "country_code": "SG"}
    )
    for ordinal in range(30):
        task = GenerationTask(brief=BRIEF, skeleton=skeleton, ordinal=ordinal, seed=SEED)
        bio = generator.draft(task).bio
        assert "Singapore" in bio
        assert "Singapore, Singapore" not in bio


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
