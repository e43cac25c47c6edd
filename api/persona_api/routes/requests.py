"""``/v1/requests/{id}``: where a generation request stands."""

import uuid

from fastapi import APIRouter, Response, status

from persona_api.auth import WriteRateLimitDep, WriterDep
from persona_api.deps import RequestRecordsDep, StatsQueriesDep
from persona_api.problems import PROBLEM_RESPONSES, ProblemError
from persona_api.request_population import RequestPopulation, planned_vs_stored
from persona_audience.quotas import plan_quotas
from persona_contracts import RequestStatus

router = APIRouter(prefix="/v1/requests", tags=["requests"], responses=PROBLEM_RESPONSES)


@router.get("/{request_id}", summary="Status of a generation request")
async def get_request(request_id: uuid.UUID, requests: RequestRecordsDep) -> RequestStatus:
    """`pending` until a worker takes it, then `generating`, then `completed`, `partial`
    (some personas failed) or `failed`; `stored` counts up while it generates. A `batch`
    request waits as `batch_submitted` / `batch_in_progress` (see `batch`) in between;
    a cancelled one ends `cancelled`."""
    return _found(request_id, await requests.get(request_id))


FINAL_POPULATION_CACHE_CONTROL = "public, max-age=60"


@router.get("/{request_id}/population", summary="Population of one request, against its plan")
async def get_request_population(
    request_id: uuid.UUID,
    requests: RequestRecordsDep,
    stats: StatsQueriesDep,
    response: Response,
) -> RequestPopulation:
    """The request's personas counted like `GET /v1/persona/stats` (countries, ages by
    gender, occupations, models, tokens, cost, near-duplicates), and for each dimension of
    its plan the personas planned and stored per option. It reads every persona of the
    request (at most 10,000), so poll the status, not this, while it runs."""
    found = _found(request_id, await requests.get(request_id))
    counted, cells = await stats.of_request(request_id, found.failed)
    final = found.status.is_final
    if final:
        response.headers["Cache-Control"] = FINAL_POPULATION_CACHE_CONTROL
    plan = planned_vs_stored(plan_quotas(found.plan, found.requested), cells) if found.plan else []
    return RequestPopulation(request_id=request_id, final=final, stats=counted, plan=plan)


@router.post(
    "/{request_id}/cancel",
    status_code=status.HTTP_202_ACCEPTED,
    summary="Cancel a generation request",
)
async def cancel_request(
    request_id: uuid.UUID,
    requests: RequestRecordsDep,
    _writer: WriterDep,
    _quota: WriteRateLimitDep,
) -> RequestStatus:
    """Stop the request: one no worker took yet ends `cancelled` at once; a generating one
    starts no more personas; a `batch` one has its provider batch cancelled. What was
    stored stays, and the request ends `cancelled` (or `completed`, had it finished).
    Cancelling a final request changes nothing and answers its status."""
    return _found(request_id, await requests.request_cancel(request_id))


def _found(request_id: uuid.UUID, found: RequestStatus | None) -> RequestStatus:
    if found is None:
        raise ProblemError(
            404,
            "Not found",
            f"No request {request_id}. Requests published straight to Kafka appear once a "
            "worker takes them.",
        )
    return found
