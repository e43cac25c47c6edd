"""``/v1/admin``: operator actions; every route needs an admin key."""

from fastapi import APIRouter

from persona_api.deps import AdminDep, StatsStoreDep
from persona_api.problems import PROBLEM_RESPONSES
from persona_infra.stats_store import Stats

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=PROBLEM_RESPONSES)


@router.post("/stats/rebuild", summary="Recount the statistics from the stored personas")
async def rebuild_stats(stats: StatsStoreDep, _admin: AdminDep) -> Stats:
    """Reads every persona and request (slow on large collections): use it when the
    counters are in doubt, e.g. after a crash between storing and counting."""
    return await stats.rebuild()
