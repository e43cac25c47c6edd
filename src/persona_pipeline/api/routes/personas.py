"""``/v1/persona``: list, search, stats, get, and the request that generates new ones."""

import dataclasses
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response, status

from persona_pipeline.api.cursor import InvalidCursorError, fingerprint
from persona_pipeline.api.deps import (
    CursorsDep,
    PersonaStoreDep,
    PublisherDep,
    RequestStoreDep,
    StatsStoreDep,
)
from persona_pipeline.api.problems import PROBLEM_RESPONSES, ProblemError
from persona_pipeline.api.schemas import Accepted, CreatePersonas, PersonaPage
from persona_pipeline.contracts import Persona, PersonaRequested, RequestState
from persona_pipeline.core.persona_store import PersonaFilter
from persona_pipeline.core.stats_store import Stats
from persona_pipeline.core.text import MAX_QUERY_TERMS, terms

router = APIRouter(prefix="/v1/persona", tags=["personas"], responses=PROBLEM_RESPONSES)

Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]


def persona_filter(
    country: Annotated[
        str | None, Query(min_length=2, max_length=60, description="Name or ISO code.")
    ] = None,
    occupation: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    min_age: Annotated[int | None, Query(ge=0, le=150)] = None,
    max_age: Annotated[int | None, Query(ge=0, le=150)] = None,
    request_id: uuid.UUID | None = None,
) -> PersonaFilter:
    """Filters shared by list and search; matching is case- and accent-insensitive."""
    return PersonaFilter(
        country=country,
        occupation=occupation,
        min_age=min_age,
        max_age=max_age,
        request_id=request_id,
    )


FilterDep = Annotated[PersonaFilter, Depends(persona_filter)]


async def _page(
    store: PersonaStoreDep,
    cursors: CursorsDep,
    where: PersonaFilter,
    limit: int,
    cursor: str | None,
) -> PersonaPage:
    query_id = fingerprint(where)
    try:
        after = cursors.decode(cursor, query_id) if cursor else None
    except InvalidCursorError as exc:
        raise ProblemError(400, "Invalid cursor", f"{exc}.") from exc
    page = await store.page(where, limit, after)
    next_cursor = cursors.encode(page.next_after, query_id) if page.next_after else None
    return PersonaPage(items=page.items, next_cursor=next_cursor, limit=limit)


@router.get("", summary="List personas")
async def list_personas(
    store: PersonaStoreDep,
    cursors: CursorsDep,
    where: FilterDep,
    limit: Limit = 20,
    cursor: Cursor = None,
) -> PersonaPage:
    """Newest first, keyset-paginated: follow `next_cursor` until it is null."""
    return await _page(store, cursors, where, limit, cursor)


@router.get("/search", summary="Search personas")
async def search_personas(
    store: PersonaStoreDep,
    cursors: CursorsDep,
    where: FilterDep,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words to match.")],
    limit: Limit = 20,
    cursor: Cursor = None,
) -> PersonaPage:
    """Personas whose name, occupation, city, country, interests or bio contain every word
    of `q` (case- and accent-insensitive), newest first, with the list's filters."""
    words = terms(q)
    if not words:
        raise ProblemError(
            422,
            "Invalid request",
            "`q` has no searchable word: words need two or more letters, stopwords are ignored.",
        )
    if len(words) > MAX_QUERY_TERMS:
        raise ProblemError(
            422, "Invalid request", f"`q` may contain at most {MAX_QUERY_TERMS} distinct words."
        )
    return await _page(
        store, cursors, dataclasses.replace(where, terms=tuple(words)), limit, cursor
    )


@router.get("/stats", summary="Persona statistics")
async def persona_stats(stats: StatsStoreDep) -> Stats:
    """Totals by country, age bucket, occupation and model, and tokens used.

    Served from counters maintained as personas are stored, so its cost does not
    grow with the collection."""
    return await stats.snapshot()


@router.get("/{persona_id}", summary="Get one persona")
async def get_persona(persona_id: uuid.UUID, store: PersonaStoreDep) -> Persona:
    persona = await store.get(persona_id)
    if persona is None:
        raise ProblemError(404, "Not found", f"No persona with id {persona_id}.")
    return persona


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Request new personas")
async def request_personas(
    body: CreatePersonas,
    request: Request,
    response: Response,
    publisher: PublisherDep,
    requests: RequestStoreDep,
) -> Accepted:
    """Queue a generation request and return at once; poll `status_url` for progress."""
    event = PersonaRequested(
        brief=body.brief,
        count=body.count,
        constraints=body.constraints,
        seed=body.seed,
        requested_by=request.client.host if request.client else None,
    )
    await requests.record_pending(event)
    await publisher.publish(event, correlation_id=request.state.correlation_id)
    status_url = f"/v1/requests/{event.request_id}"
    response.headers["Location"] = status_url
    return Accepted(request_id=event.request_id, status=RequestState.PENDING, status_url=status_url)
