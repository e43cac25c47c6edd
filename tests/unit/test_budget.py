"""A request's ``max_cost_usd``: a delivery starts personas only while the money spent,
plus what those in flight will cost at the average so far, leaves room for one more."""

import pytest

from persona_worker.budget import Budget


def test_no_cap_admits_everything() -> None:
    budget = Budget.share(None, planning_usd=5.0, part=25, whole=100)
    assert all(budget.admit() for _ in range(1000))


def test_a_part_gets_its_share_of_the_cap_less_the_planning() -> None:
    assert Budget.share(10.0, planning_usd=2.0, part=25, whole=100).limit_usd == 2.0
    assert Budget.share(1.0, planning_usd=3.0, part=25, whole=100).limit_usd == 0.0


def test_it_stops_when_the_next_persona_would_go_over() -> None:
    budget = Budget(limit_usd=1.0)
    started = 0
    while budget.admit():
        started += 1
        budget.settle(0.3)
    assert started == 3  # 0.9 spent: a fourth at 0.3 each would reach 1.2
    assert "max_cost_usd" in budget.reason
    assert "$0.9000 of $1.0000" in budget.reason


def test_personas_in_flight_count_at_the_average_so_far() -> None:
    budget = Budget(limit_usd=1.0)
    assert budget.admit()
    budget.settle(0.25)
    assert [budget.admit() for _ in range(3)] == [True] * 3  # 0.25 + 3 x 0.25 = 1.0
    assert not budget.admit()  # a fourth in flight would make it 1.25
    for _ in range(3):
        budget.settle(0.25)
    assert not budget.admit()  # 1.0 spent


def test_personas_stored_by_an_earlier_delivery_are_already_spent() -> None:
    budget = Budget(limit_usd=1.0)
    budget.already([0.4, 0.4])
    assert not budget.admit()  # 0.8 spent, 0.4 on average: one more goes over


@pytest.mark.parametrize("limit", [0.0, 0.1])
def test_a_spent_budget_admits_nothing_even_before_any_average(limit: float) -> None:
    budget = Budget(limit_usd=limit, spent_usd=0.1)
    assert not budget.admit()
