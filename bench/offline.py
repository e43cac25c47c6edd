"""The worker's offline generation path in process, for benchmarks that need personas
exactly as the worker builds them without the broker and the database."""

import functools
from datetime import UTC, datetime

from persona_audience.planner import RulePlanner
from persona_audience.reference import Reference
from persona_contracts import Persona, PersonaRequested, TokenUsage
from persona_contracts.plan import AudiencePlan
from persona_worker.generators.base import GenerationTask
from persona_worker.generators.offline import OfflineGenerator
from persona_worker.grounding import Cell, QuotaSampler


class OfflinePath:
    """Plan (rules), deal the cells, draw each skeleton, write it offline, assemble."""

    def __init__(self) -> None:
        self.planner = RulePlanner.default()
        self.sampler = QuotaSampler(self.planner.gazetteer, Reference.load().population)
        self.generator = OfflineGenerator()

    def personas(
        self, request: PersonaRequested, plan: AudiencePlan | None = None
    ) -> list[Persona]:
        """Every persona of ``request``, from ``plan`` (default: the rule planner's)."""
        plan = plan or self.planner.plan_now(request)
        cells = self.sampler.cells(plan, request.count, request.effective_seed)
        now = datetime.now(UTC)
        return [
            self.persona(request, plan, cells, ordinal, now) for ordinal in range(request.count)
        ]

    def persona(
        self,
        request: PersonaRequested,
        plan: AudiencePlan,
        cells: list[Cell],
        ordinal: int,
        created_at: datetime,
    ) -> Persona:
        skeleton = self.sampler.skeleton(cells[ordinal], request.effective_seed, ordinal)
        task = GenerationTask(
            request.brief, skeleton, ordinal, request.effective_seed, subject=plan.subject
        )
        return Persona.assemble(
            request_id=request.request_id,
            ordinal=ordinal,
            skeleton=skeleton,
            draft=self.generator.draft(task),
            generator=self.generator.name,
            model=self.generator.model,
            usage=TokenUsage(),
            created_at=created_at,
        )


@functools.cache
def offline_path() -> OfflinePath:
    return OfflinePath()


@functools.lru_cache(maxsize=256)
def _planned(request_json: str) -> tuple[AudiencePlan, list[Cell]]:
    """The plan and cells of a request, computed once per request as the worker does."""
    request = PersonaRequested.model_validate_json(request_json)
    path = offline_path()
    plan = path.planner.plan_now(request)
    return plan, path.sampler.cells(plan, request.count, request.effective_seed)


def offline_persona(request: PersonaRequested, ordinal: int, created_at: datetime) -> Persona:
    """One persona exactly as the worker's offline path would build it (no I/O)."""
    plan, cells = _planned(request.model_dump_json())
    return offline_path().persona(request, plan, cells, ordinal, created_at)
