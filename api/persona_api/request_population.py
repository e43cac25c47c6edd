"""One request's population set against its plan: what was asked for, what was stored.

Every persona records the plan cell it was drawn from, so the comparison counts exactly
the labels the plan's quotas use (``Berlin, Germany``, ``25-34``, ...) rather than
guessing how a stored city maps back to an option of the plan.
"""

import uuid
from collections import Counter
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from persona_api.stats_queries import Stats
from persona_audience.quotas import PlanQuotas, Quota
from persona_contracts.persona import PlanCell


class PlannedCount(BaseModel):
    label: str
    planned: int = Field(description="Personas the plan's quotas give this option.")
    stored: int = Field(description="Personas stored that were drawn for this option.")


class PlannedDimension(BaseModel):
    dimension: str = Field(
        description="`location`, `age_band`, `gender`, `occupation`, or a trait's name."
    )
    options: list[PlannedCount]


class RequestPopulation(BaseModel):
    request_id: uuid.UUID
    final: bool = Field(description="The request has ended: these figures no longer change.")
    stats: Stats = Field(description="The statistics of this request's personas only.")
    plan: list[PlannedDimension] = Field(
        description="Planned against stored, per dimension of the request's plan; empty "
        "until the request is planned."
    )


def _dimension(name: str, quotas: Sequence[Quota], stored: Counter[str]) -> PlannedDimension:
    planned = {quota.label: quota.count for quota in quotas}
    unplanned = [label for label in stored if label not in planned]
    return PlannedDimension(
        dimension=name,
        options=[
            PlannedCount(label=label, planned=planned.get(label, 0), stored=stored[label])
            for label in [*planned, *unplanned]
        ],
    )


def planned_vs_stored(quotas: PlanQuotas, cells: Iterable[PlanCell]) -> list[PlannedDimension]:
    """Per dimension, each option's quota next to the personas stored for it; an option no
    quota names (a persona stored under another plan) is listed with 0 planned."""
    planned = {
        "location": quotas.locations,
        "age_band": quotas.ages,
        "gender": quotas.genders,
        "occupation": quotas.occupations,
    }
    counts: dict[str, Counter[str]] = {name: Counter() for name in planned}
    traits: dict[str, Counter[str]] = {name: Counter() for name in quotas.traits}
    for cell in cells:
        for name, counter in counts.items():
            counter[str(getattr(cell, name))] += 1
        for trait, value in cell.traits.items():
            traits.setdefault(trait, Counter())[value] += 1
    return [_dimension(name, planned[name], counts[name]) for name in counts] + [
        _dimension(name, quotas.traits.get(name, []), counter) for name, counter in traits.items()
    ]
