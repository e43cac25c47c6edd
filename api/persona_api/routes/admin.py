"""``/v1/admin``: operator actions; every route needs an admin key."""

from fastapi import APIRouter

from persona_api.auth import AdminDep
from persona_api.deps import StatsQueriesDep
from persona_api.problems import PROBLEM_RESPONSES
from persona_api.stats_queries import Stats

router = APIRouter(prefix="/v1/admin", tags=["admin"], responses=PROBLEM_RESPONSES)


@router.post("/stats/rebuild", summary="Recount the statistics from the stored personas")
async def rebuild_stats(stats: StatsQueriesDep, _admin: AdminDep) -> Stats:
    """Reads every persona and request (slow on large collections): use it when the
    counters are in doubt, e.g. after a crash between storing and counting."""
    return await stats.rebuild()
