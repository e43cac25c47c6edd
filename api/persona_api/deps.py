"""FastAPI dependencies: everything a route needs, resolved from the app's state.

The lifespan (``app.py``) builds these objects once per process; routes declare
what they use with ``Annotated`` types and never reach for globals.
Every dependency is ``async def``, even the trivial ones: FastAPI runs plain
``def`` dependencies in a thread pool, a thread hop per dependency per request.
Who may call a route is ``auth.py``; which query parameters it takes, ``query_params.py``.
"""

from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from faststream.kafka import KafkaBroker
from prometheus_client import CollectorRegistry
from pymongo import AsyncMongoClient

from persona_api.cursor import CursorCodec
from persona_api.key_ring import KeyRing
from persona_api.limits import TokenBuckets
from persona_api.metrics import HttpMetrics
from persona_api.persona_queries import PersonaQueries
from persona_api.request_records import RequestRecords
from persona_api.stats_queries import StatsQueries
from persona_audience.planner import Planner, RulePlanner
from persona_infra.health import DependencyProbe
from persona_infra.mongo import Document
from persona_infra.settings import Settings
from persona_producers.publisher import RequestPublisher

if TYPE_CHECKING:
    from persona_api.submissions import Submissions


@dataclass(frozen=True, slots=True)
class AppContext:
    """The per-process objects the lifespan builds and every request shares."""

    settings: Settings
    mongo: AsyncMongoClient[Document]
    broker: KafkaBroker
    personas: PersonaQueries
    requests: RequestRecords
    stats: StatsQueries
    publisher: RequestPublisher
    cursors: CursorCodec
    http_metrics: HttpMetrics
    keys: KeyRing
    write_limiter: TokenBuckets
    export_limiter: TokenBuckets
    dependencies: DependencyProbe
    registry: CollectorRegistry
    submissions: "Submissions"
    """Records, publishes and de-duplicates generation requests."""
    rules: RulePlanner
    """Checks every request before it is accepted (contradictions are a 422)."""
    planner: Planner
    """Answers ``POST /v1/plans``: the planner the workers use."""


def _context(request: Request) -> AppContext:
    context: AppContext = request.app.state.context
    return context


async def get_context(request: Request) -> AppContext:
    return _context(request)


AppContextDep = Annotated[AppContext, Depends(get_context)]


# Each reads the request directly rather than depending on ``get_context``: FastAPI
# resolves every level of a dependency tree on every request, and these are on the
# hottest paths.
async def get_personas(request: Request) -> PersonaQueries:
    return _context(request).personas


async def get_requests(request: Request) -> RequestRecords:
    return _context(request).requests


async def get_stats(request: Request) -> StatsQueries:
    return _context(request).stats


async def get_publisher(request: Request) -> RequestPublisher:
    return _context(request).publisher


async def get_cursors(request: Request) -> CursorCodec:
    return _context(request).cursors


async def get_rules(request: Request) -> RulePlanner:
    return _context(request).rules


async def get_planner(request: Request) -> Planner:
    return _context(request).planner


PersonaQueriesDep = Annotated[PersonaQueries, Depends(get_personas)]
RequestRecordsDep = Annotated[RequestRecords, Depends(get_requests)]
StatsQueriesDep = Annotated[StatsQueries, Depends(get_stats)]
PublisherDep = Annotated[RequestPublisher, Depends(get_publisher)]
CursorsDep = Annotated[CursorCodec, Depends(get_cursors)]
RulesDep = Annotated[RulePlanner, Depends(get_rules)]
PlannerDep = Annotated[Planner, Depends(get_planner)]
