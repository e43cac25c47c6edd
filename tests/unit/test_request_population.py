"""Planned against stored: the arithmetic behind a request's plan charts."""

from persona_api.request_population import planned_vs_stored
from persona_audience.quotas import PlanQuotas, Quota
from persona_contracts.persona import PlanCell


def quotas(**dimensions: list[tuple[str, int]]) -> PlanQuotas:
    def of(name: str) -> list[Quota]:
        return [Quota(label=label, share=0.5, count=n) for label, n in dimensions.get(name, [])]

    return PlanQuotas(
        count=4,
        locations=of("locations"),
        ages=of("ages"),
        genders=of("genders"),
        occupations=of("occupations"),
        traits={"commute": of("commute")},
    )


def cell(location: str, gender: str = "female", **traits: str) -> PlanCell:
    return PlanCell(
        location=location, age_band="25-34", gender=gender, occupation="Nurse", traits=traits
    )


def test_each_option_gets_its_quota_and_the_personas_drawn_for_it() -> None:
    planned = quotas(
        locations=[("Leeds, United Kingdom", 3), ("York, United Kingdom", 1)],
        ages=[("25-34", 4)],
        genders=[("female", 2), ("male", 2)],
        occupations=[("Nurse", 4)],
        commute=[("bike", 2), ("bus", 2)],
    )
    cells = [
        cell("Leeds, United Kingdom", commute="bike"),
        cell("Leeds, United Kingdom", "male", commute="bike"),
        cell("Leeds, United Kingdom", "male", commute="bus"),
    ]
    found = {
        d.dimension: [(o.label, o.planned, o.stored) for o in d.options]
        for d in planned_vs_stored(planned, cells)
    }
    assert found == {
        "location": [("Leeds, United Kingdom", 3, 3), ("York, United Kingdom", 1, 0)],
        "age_band": [("25-34", 4, 3)],
        "gender": [("female", 2, 1), ("male", 2, 2)],
        "occupation": [("Nurse", 4, 3)],
        "commute": [("bike", 2, 2), ("bus", 2, 1)],
    }


def test_what_no_quota_names_is_listed_as_planned_zero() -> None:
    planned = quotas(locations=[("Leeds, United Kingdom", 4)], commute=[("bike", 4)])
    cells = [cell("Paris, France", commute="walk", shift="night")]
    found = {
        d.dimension: [(o.label, o.planned, o.stored) for o in d.options]
        for d in planned_vs_stored(planned, cells)
    }
    assert found["location"] == [("Leeds, United Kingdom", 4, 0), ("Paris, France", 0, 1)]
    assert found["commute"] == [("bike", 4, 0), ("walk", 0, 1)]
    assert found["shift"] == [("night", 0, 1)]
