"""``/v1/plans``: the audience a brief is read as, before any persona is generated."""

from fastapi import APIRouter, Request

from persona_api.auth import WriteRateLimitDep, WriterDep
from persona_api.deps import PlannerDep
from persona_api.problems import PROBLEM_RESPONSES
from persona_api.schemas import CreatePersonas
from persona_audience.quotas import PlanPreview

router = APIRouter(prefix="/v1/plans", tags=["plans"], responses=PROBLEM_RESPONSES)


@router.post("", summary="Preview the audience plan of a request")
async def preview_plan(
    body: CreatePersonas,
    request: Request,
    planner: PlannerDep,
    _writer: WriterDep,
    _quota: WriteRateLimitDep,
) -> PlanPreview:
    """Plan the request exactly as a worker would (same body as `POST /v1/persona`) and
    store nothing: locations, ages, genders, occupations and traits with their shares,
    where each came from (`brief`, `constraints`, `default`), and the exact count each
    option gets for `count` personas. Pass the returned `plan` as `audience` in
    `POST /v1/persona` to generate from exactly this plan. With an LLM planner the
    answer includes that call's tokens and cost, so it needs a writer key like a request."""
    plan = await planner.plan(body.to_event(request.client.host if request.client else None))
    return PlanPreview.of(plan, body.count)
