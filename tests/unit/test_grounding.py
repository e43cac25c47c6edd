"""Grounding: exact quotas from the plan, dealt to ordinals, and skeletons drawn inside them."""

import statistics
from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from persona_audience.quotas import allocate, plan_quotas
from persona_contracts import Constraints, Skeleton
from persona_contracts.plan import AudiencePlan
from tests.support.determinism import outputs_under_hash_seeds
from tests.support.planning import plan_for, sampler, skeletons_for

SEED = 20240601


# --- Quota allocation ------------------------------------------------------------------------


@given(
    shares=st.lists(st.floats(min_value=1e-6, max_value=1e6), min_size=1, max_size=60),
    count=st.integers(min_value=0, max_value=10_000),
)
def test_allocation_is_exact_for_any_count_and_weights(shares: list[float], count: int) -> None:
    counts = allocate(shares, count)
    total = sum(shares)
    assert sum(counts) == count
    for n, share in zip(counts, shares, strict=True):
        exact = count * share / total
        assert exact - 1 < n < exact + 1


@pytest.mark.parametrize(
    ("shares", "count", "expected"),
    [
        ([0.6, 0.4], 20, [12, 8]),
        ([0.49, 0.49, 0.02], 20, [10, 10, 0]),
        ([1, 1, 1], 1, [1, 0, 0]),
        ([1, 1, 1], 2, [1, 1, 0]),
        ([0.7, 0.2, 0.1], 7, [5, 1, 1]),
        ([5], 50, [50]),
    ],
)
def test_largest_remainders_get_the_leftover_personas(
    shares: list[float], count: int, expected: list[int]
) -> None:
    assert allocate(shares, count) == expected


@pytest.mark.parametrize("shares", [[], [0.0], [-1.0, 2.0], [float("nan")]])
def test_allocation_rejects_unusable_shares(shares: list[float]) -> None:
    with pytest.raises(ValueError, match="shares"):
        allocate(shares, 3)


# --- Cells: the plan's counts, exactly -------------------------------------------------------


def dimension_counts(plan: AudiencePlan, skeletons: list[Skeleton]) -> dict[str, Counter[str]]:
    cells = [s.cell for s in skeletons if s.cell is not None]
    assert len(cells) == len(skeletons)
    return {
        "locations": Counter(c.location for c in cells),
        "ages": Counter(c.age_band for c in cells),
        "genders": Counter(c.gender for c in cells),
        "occupations": Counter(c.occupation for c in cells),
        **{f"trait:{t.name}": Counter(c.traits[t.name] for c in cells) for t in plan.traits},
    }


def planned_counts(plan: AudiencePlan, count: int) -> dict[str, Counter[str]]:
    quotas = plan_quotas(plan, count)
    return {
        name: Counter({q.label: q.count for q in getattr(quotas, name) if q.count})
        for name in ("locations", "ages", "genders", "occupations")
    } | {
        f"trait:{name}": Counter({q.label: q.count for q in dim if q.count})
        for name, dim in quotas.traits.items()
    }


@pytest.mark.parametrize(
    ("brief", "count"),
    [
        ("urban cyclists in Berlin", 20),
        ("nurses in Lisbon and Porto", 37),
        ("a survey of shoppers", 50),
        ("Japanese gamers in their 30s", 7),
        ("retired teachers in Bavaria", 1),
    ],
)
def test_every_dimension_gets_exactly_its_quota(brief: str, count: int) -> None:
    plan = plan_for(brief)
    skeletons = skeletons_for(brief, count, SEED)
    assert dimension_counts(plan, skeletons) == planned_counts(plan, count)


def test_sixty_percent_female_of_twenty_is_twelve_women() -> None:
    constraints = Constraints(genders={"female": 0.6, "male": 0.4})
    skeletons = skeletons_for("commuters", 20, SEED, constraints)
    assert Counter(s.gender for s in skeletons) == {"female": 12, "male": 8}


def test_weighted_countries_are_dealt_exactly() -> None:
    constraints = Constraints(countries={"DE": 0.7, "NL": 0.3})
    skeletons = skeletons_for("commuters", 10, SEED, constraints)
    assert Counter(s.location.country_code for s in skeletons) == {"DE": 7, "NL": 3}


def test_occupations_are_paired_with_ages_they_fit() -> None:
    skeletons = skeletons_for("a survey", 200, SEED)
    misfits = [s for s in skeletons if _misfit(s)]
    assert len(misfits) <= 2, [(s.age, s.occupation) for s in misfits]
    retirees = [s.age for s in skeletons if s.occupation == "Retiree"]
    students = [s.age for s in skeletons if s.occupation == "University student"]
    assert retirees
    assert min(retirees) >= 60
    assert students
    assert max(students) <= 26


def _misfit(skeleton: Skeleton) -> bool:
    spans = {"Retiree": (60, 100), "University student": (17, 26)}
    low, high = spans.get(skeleton.occupation, (16, 100))
    return not low <= skeleton.age <= high


# --- Determinism -----------------------------------------------------------------------------


def test_the_same_request_gives_the_same_skeletons() -> None:
    assert skeletons_for("urban cyclists in Berlin", 20, 42) == skeletons_for(
        "urban cyclists in Berlin", 20, 42
    )


def test_another_seed_deals_the_cells_in_another_order() -> None:
    first = [s.cell for s in skeletons_for("a survey", 30, 1)]
    second = [s.cell for s in skeletons_for("a survey", 30, 2)]
    assert first != second
    assert Counter(c.gender for c in first if c) == Counter(c.gender for c in second if c)


def test_sampling_does_not_depend_on_the_process_hash_seed() -> None:
    """Redelivery may land on another worker; the salted ``hash()`` would break that."""
    script = (
        "from tests.support.planning import skeletons_for;"
        "print([s.model_dump_json() for s in skeletons_for('nurses in Bavaria', 5, 99)])"
    )
    assert len(outputs_under_hash_seeds(script)) == 1


def test_a_variant_stays_in_its_cell_but_differs() -> None:
    plan = plan_for("urban cyclists in Berlin")
    cells = sampler().cells(plan, 5, SEED)
    for ordinal, cell in enumerate(cells):
        first = sampler().skeleton(cell, SEED, ordinal)
        again = sampler().skeleton(cell, SEED, ordinal, variant=1)
        assert again.cell == first.cell
        assert again.gender == first.gender
        assert again.location.city == "Berlin"
        assert again.personality != first.personality


# --- Inside a cell ---------------------------------------------------------------------------


def test_ages_stay_inside_the_band_and_the_occupation_span() -> None:
    for skeleton in skeletons_for("nurses in their 20s", 50, SEED):
        assert 21 <= skeleton.age <= 29  # the 20s, cut to a nurse's span (21-70)


def test_a_region_draws_its_own_cities_the_bigger_the_likelier() -> None:
    skeletons = skeletons_for("farmers in Bavaria", 200, SEED)
    assert {s.location.region for s in skeletons} == {"Bavaria"}
    cities = Counter(s.location.city for s in skeletons)
    assert cities.most_common(1)[0][0] == "Munich"
    assert len(cities) >= 10
    assert not {"Berlin", "Hamburg", "Cologne"} & set(cities)


def test_a_country_draws_cities_by_population() -> None:
    skeletons = skeletons_for("people in Japan", 200, SEED)
    cities = Counter(s.location.city for s in skeletons)
    assert {s.location.country_code for s in skeletons} == {"JP"}
    assert cities.most_common(1)[0][0] == "Tokyo"


def test_big_five_scores_centre_on_the_midpoint() -> None:
    skeletons = skeletons_for("a survey", 500, SEED)
    for trait in ("openness", "conscientiousness", "extraversion", "agreeableness"):
        scores = [getattr(s.personality, trait) for s in skeletons]
        assert 0.45 <= statistics.mean(scores) <= 0.55
        assert 0.1 <= statistics.stdev(scores) <= 0.2
        assert all(0.0 <= score <= 1.0 for score in scores)
