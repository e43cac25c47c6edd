"""Exact counts from shares: the arithmetic a plan's dimensions are turned into.

Largest-remainder (Hamilton) allocation: every option gets the whole part of
``count * share``, and the personas left over go to the largest fractional parts, ties to
the earlier option. The counts always sum to ``count`` and each is the floor or the
ceiling of its exact quota, so 20 personas planned 60 % female are exactly 12 women. The
tie rule is fixed (not seeded) so a preview (``POST /v1/plans``) shows the counts the
request will get whatever its seed.
"""

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict

from persona_contracts.plan import AudiencePlan


def allocate(shares: Sequence[float], count: int) -> list[int]:
    """Integer counts summing to ``count``, each within one of ``count * share``."""
    if count < 0:
        raise ValueError(f"count must not be negative, got {count}")
    if not shares or any(not math.isfinite(s) or s < 0 for s in shares) or sum(shares) <= 0:
        raise ValueError("shares must be finite, non-negative and not all zero")
    total = sum(shares)
    exact = [count * share / total for share in shares]
    counts = [math.floor(quota) for quota in exact]
    left = count - sum(counts)
    by_remainder = sorted(range(len(shares)), key=lambda i: (counts[i] - exact[i], i))
    for i in by_remainder[:left]:
        counts[i] += 1
    return counts


class Quota(BaseModel):
    model_config = ConfigDict(frozen=True)

    label: str
    share: float
    count: int


class PlanQuotas(BaseModel):
    """How many of ``count`` personas each option of each dimension gets."""

    model_config = ConfigDict(frozen=True)

    count: int
    locations: list[Quota]
    ages: list[Quota]
    genders: list[Quota]
    occupations: list[Quota]
    traits: dict[str, list[Quota]]


def _quotas(labels: Sequence[str], shares: Sequence[float], count: int) -> list[Quota]:
    counts = allocate(shares, count)
    return [
        Quota(label=label, share=share, count=n)
        for label, share, n in zip(labels, shares, counts, strict=True)
    ]


def plan_quotas(plan: AudiencePlan, count: int) -> PlanQuotas:
    locations, ages = plan.locations.options, plan.ages.bands
    genders, jobs = plan.genders.options, plan.occupations.options
    return PlanQuotas(
        count=count,
        locations=_quotas([o.label for o in locations], [o.share for o in locations], count),
        ages=_quotas([b.label for b in ages], [b.share for b in ages], count),
        genders=_quotas([o.gender for o in genders], [o.share for o in genders], count),
        occupations=_quotas([o.title for o in jobs], [o.share for o in jobs], count),
        traits={
            trait.name: _quotas(
                [o.value for o in trait.options], [o.share for o in trait.options], count
            )
            for trait in plan.traits
        },
    )


class PlanPreview(BaseModel):
    """A plan with the counts it gives ``count`` personas (``POST /v1/plans``, ``persona plan``)."""

    count: int
    plan: AudiencePlan
    quotas: PlanQuotas

    @classmethod
    def of(cls, plan: AudiencePlan, count: int) -> "PlanPreview":
        return cls(count=count, plan=plan, quotas=plan_quotas(plan, count))
