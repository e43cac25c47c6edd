"""Plans and skeletons from briefs, through the real rule planner and sampler."""

from functools import cache

from persona_audience.planner import RulePlanner
from persona_audience.reference import Reference
from persona_contracts import Constraints, PersonaRequested, Skeleton
from persona_contracts.plan import AudiencePlan
from persona_worker.grounding import QuotaSampler


@cache
def sampler() -> QuotaSampler:
    return QuotaSampler(RulePlanner.default().gazetteer, Reference.load().population)


def plan_for(brief: str, constraints: Constraints | None = None) -> AudiencePlan:
    request = PersonaRequested(brief=brief, constraints=constraints or Constraints())
    return RulePlanner.default().plan_now(request)


def skeletons_for(
    brief: str, count: int, seed: int, constraints: Constraints | None = None
) -> list[Skeleton]:
    """The skeletons of a request of ``count`` personas, as the worker draws them."""
    cells = sampler().cells(plan_for(brief, constraints), count, seed)
    return [sampler().skeleton(cell, seed, ordinal) for ordinal, cell in enumerate(cells)]
