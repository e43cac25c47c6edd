"""``/v1/requests/{id}``: where a generation request stands."""

import uuid

from fastapi import APIRouter

from persona_pipeline.api.deps import RequestStoreDep
from persona_pipeline.api.problems import PROBLEM_RESPONSES, ProblemError
from persona_pipeline.contracts import RequestStatus

router = APIRouter(prefix="/v1/requests", tags=["requests"], responses=PROBLEM_RESPONSES)


@router.get("/{request_id}", summary="Status of a generation request")
async def get_request(request_id: uuid.UUID, requests: RequestStoreDep) -> RequestStatus:
    """`pending` until a worker takes it, then `generating`, then `completed`, `partial`
    (some personas failed) or `failed`; `stored` counts up while it generates."""
    found = await requests.get(request_id)
    if found is None:
        raise ProblemError(
            404,
            "Not found",
            f"No request {request_id}. Requests published straight to Kafka appear once a "
            "worker takes them.",
        )
    return found
