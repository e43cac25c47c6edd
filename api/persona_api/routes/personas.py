"""``/v1/persona``: list, search, export, stats, get, and the request that generates new ones."""

import dataclasses
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Query, Request, Response, status
from fastapi.responses import StreamingResponse
from loguru import logger

from persona_api.auth import ExportRateLimitDep, WriteRateLimitDep, WriterDep
from persona_api.cursor import InvalidCursorError, fingerprint
from persona_api.deps import CursorsDep, PersonaQueriesDep, RulesDep, StatsQueriesDep
from persona_api.export_formats import Encoder, ExportFormat, encoder
from persona_api.persona_queries import Ordering, PersonaFilter
from persona_api.problems import PROBLEM_RESPONSES, ProblemError
from persona_api.schemas import Accepted, CreatePersonas, PersonaPage
from persona_api.stats_queries import Stats
from persona_api.submissions import SubmissionsDep
from persona_contracts import Persona, RequestState
from persona_contracts.events import utcnow
from persona_contracts.persona import Gender
from persona_infra.text import MAX_QUERY_TERMS, terms

router = APIRouter(prefix="/v1/persona", tags=["personas"], responses=PROBLEM_RESPONSES)

LIST_CACHE_CONTROL = "public, max-age=5"  # new personas appear within seconds
PERSONA_CACHE_CONTROL = "public, max-age=3600"  # immutable once stored


class ListSort(StrEnum):
    CREATED_AT = Ordering.NEWEST.value
    AGE = Ordering.AGE.value


class SearchSort(StrEnum):
    RELEVANCE = Ordering.RELEVANCE.value
    CREATED_AT = Ordering.NEWEST.value
    AGE = Ordering.AGE.value


@dataclasses.dataclass(frozen=True, slots=True)
class PageQuery:
    limit: int
    cursor: str | None
    ordering: Ordering


Limit = Annotated[int, Query(ge=1, le=100, description="Page size.")]
Cursor = Annotated[
    str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
]


async def list_page(
    limit: Limit = 20,
    cursor: Cursor = None,
    sort: Annotated[
        ListSort, Query(description="`created_at`: newest first; `age`: youngest first.")
    ] = ListSort.CREATED_AT,
) -> PageQuery:
    return PageQuery(limit=limit, cursor=cursor, ordering=Ordering(sort.value))


async def search_page(
    limit: Limit = 20,
    cursor: Cursor = None,
    sort: Annotated[
        SearchSort,
        Query(
            description="`relevance`: most matching fields first, then newest; "
            "`created_at`: newest first; `age`: youngest first."
        ),
    ] = SearchSort.RELEVANCE,
) -> PageQuery:
    return PageQuery(limit=limit, cursor=cursor, ordering=Ordering(sort.value))


def applied_filters(where: PersonaFilter) -> dict[str, str]:
    """The filters a page was computed with, echoed so clients can show or verify them."""
    values = dataclasses.asdict(where)
    values["q"] = " ".join(values.pop("terms")) or None
    return {
        k: v.isoformat() if isinstance(v, datetime) else str(v)
        for k, v in values.items()
        if v is not None
    }


def etag_matches(header: str, etag: str) -> bool:
    candidates = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in candidates or etag in candidates


async def persona_filter(
    country: Annotated[
        str | None, Query(min_length=2, max_length=60, description="Name or ISO code.")
    ] = None,
    city: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    occupation: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
    gender: Gender | None = None,
    min_age: Annotated[int | None, Query(ge=0, le=150)] = None,
    max_age: Annotated[int | None, Query(ge=0, le=150)] = None,
    tag: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
    interest: Annotated[str | None, Query(min_length=1, max_length=120)] = None,
    request_id: uuid.UUID | None = None,
    created_after: Annotated[
        datetime | None, Query(description="ISO 8601; inclusive. Without a zone: UTC.")
    ] = None,
    created_before: Annotated[datetime | None, Query(description="ISO 8601; inclusive.")] = None,
    generator: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9-]{0,31}$")] = None,
) -> PersonaFilter:
    """Filters shared by list and search; text matching is case- and accent-insensitive."""
    return PersonaFilter(
        country=country,
        city=city,
        occupation=occupation,
        gender=gender,
        min_age=min_age,
        max_age=max_age,
        tag=tag,
        interest=interest,
        request_id=request_id,
        created_after=created_after,
        created_before=created_before,
        generator=generator,
    )


FilterDep = Annotated[PersonaFilter, Depends(persona_filter)]


async def _page(
    store: PersonaQueriesDep,
    cursors: CursorsDep,
    where: PersonaFilter,
    query: PageQuery,
    response: Response,
) -> PersonaPage:
    ordering = query.ordering
    query_id = fingerprint(where, ordering)
    try:
        after = cursors.decode(query.cursor, query_id) if query.cursor else None
    except InvalidCursorError as exc:
        raise ProblemError(400, "Invalid cursor", f"{exc}.") from exc
    page = await store.page(where, query.limit, after, ordering)
    next_cursor = cursors.encode(page.next_after, query_id) if page.next_after else None
    response.headers["Cache-Control"] = LIST_CACHE_CONTROL
    return PersonaPage(
        items=page.items,
        next_cursor=next_cursor,
        limit=query.limit,
        sort=ordering,
        filters=applied_filters(where),
    )


@router.get("", summary="List personas")
async def list_personas(
    store: PersonaQueriesDep,
    cursors: CursorsDep,
    where: FilterDep,
    query: Annotated[PageQuery, Depends(list_page)],
    response: Response,
) -> PersonaPage:
    """Newest first (or `sort=age`: youngest first), keyset-paginated: follow
    `next_cursor` until it is null."""
    return await _page(store, cursors, where, query, response)


@router.get("/search", summary="Search personas")
async def search_personas(
    store: PersonaQueriesDep,
    cursors: CursorsDep,
    where: FilterDep,
    query: Annotated[PageQuery, Depends(search_page)],
    response: Response,
    q: Annotated[str, Query(min_length=1, max_length=200, description="Words to match.")],
) -> PersonaPage:
    """Personas whose name, occupation, city, country, interests or bio contain every word
    of `q` (case- and accent-insensitive), with the list's filters and paging. Ranked by
    default: the more of name, occupation, city, country and interests match, the
    earlier; ties newest first."""
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
    where = dataclasses.replace(where, terms=tuple(words))
    return await _page(store, cursors, where, query, response)


@router.get("/stats", summary="Persona statistics")
async def persona_stats(stats: StatsQueriesDep) -> Stats:
    """Totals by country, age bucket, occupation and model, and tokens used.

    Served from counters maintained as personas are stored, so its cost does not
    grow with the collection."""
    return await stats.snapshot()


EXPORT_BATCH = 500
"""Personas per page read (and per Parquet row group) while exporting."""
MAX_EXPORT_ROWS = 1_000_000


@router.get(
    "/export",
    summary="Export personas",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The file, streamed.",
            "content": {fmt.media_type.split(";")[0]: {} for fmt in ExportFormat},
        }
    },
)
async def export_personas(
    store: PersonaQueriesDep,
    where: FilterDep,
    _quota: ExportRateLimitDep,
    fmt: Annotated[
        ExportFormat,
        Query(alias="format", description="`jsonl`, `csv` (dotted columns) or `parquet`."),
    ] = ExportFormat.JSONL,
    limit: Annotated[
        int | None, Query(ge=1, le=MAX_EXPORT_ROWS, description="At most this many personas.")
    ] = None,
) -> StreamingResponse:
    """Every persona the list's filters match (`request_id` too), newest first, streamed:
    memory stays flat however many there are. Rate limited per key (or client IP) by
    `EXPORT_RATE_PER_MINUTE` / `EXPORT_BURST`. A failure after the first bytes ends the
    response without its last chunk, so a client sees an incomplete download, never a
    file that looks whole."""
    try:
        encoding = encoder(fmt)
    except ImportError:
        raise ProblemError(
            501,
            "Parquet export unavailable",
            "This API was installed without pyarrow: install `persona-pipeline-api[parquet]`, "
            "or export `jsonl` or `csv`.",
        ) from None
    batches = store.batches(where, EXPORT_BATCH, limit)
    stamp = utcnow().strftime("%Y%m%dT%H%M%SZ")
    return StreamingResponse(
        export_stream(encoding, batches),
        media_type=fmt.media_type,
        headers={
            "Content-Disposition": f'attachment; filename="personas-{stamp}.{fmt.value}"',
            "Cache-Control": "no-store",
        },
    )


async def export_stream(
    encoding: Encoder, batches: AsyncIterator[list[Persona]]
) -> AsyncIterator[bytes]:
    rows, started = 0, time.monotonic()
    yield encoding.header()
    async for batch in batches:
        rows += len(batch)
        yield encoding.batch(batch)
    yield encoding.footer()
    logger.bind(component="export", rows=rows).info(
        "exported {} personas in {:.1f} s", rows, time.monotonic() - started
    )


@router.get(
    "/{persona_id}",
    summary="Get one persona",
    response_model=Persona,
    responses={304: {"description": "Unchanged since the `If-None-Match` ETag."}},
)
async def get_persona(
    persona_id: uuid.UUID,
    store: PersonaQueriesDep,
    response: Response,
    if_none_match: Annotated[str | None, Header(max_length=1024)] = None,
) -> Persona | Response:
    """A persona never changes once stored, so its ETag is stable and it may be cached."""
    persona = await store.get(persona_id)
    if persona is None:
        raise ProblemError(404, "Not found", f"No persona with id {persona_id}.")
    etag = f'"{persona.id.hex}"'
    headers = {"ETag": etag, "Cache-Control": PERSONA_CACHE_CONTROL}
    if if_none_match is not None and etag_matches(if_none_match, etag):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return persona


IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=200,
        pattern=r"^[\x21-\x7e]+$",
        description="Any printable ASCII string (a UUID, say): a retry with the same key "
        "returns the same request for 24 hours; another body with the same key is a 422.",
    ),
]


@router.post("", status_code=status.HTTP_202_ACCEPTED, summary="Request new personas")
async def request_personas(
    body: CreatePersonas,
    request: Request,
    response: Response,
    submissions: SubmissionsDep,
    rules: RulesDep,
    writer: WriterDep,
    _quota: WriteRateLimitDep,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    """Queue a generation request and return at once; poll `status_url` for progress.

    A brief and constraints that contradict each other (`teenagers` with `min_age: 40`)
    are a 422 here, before anything is queued; `POST /v1/plans` shows the plan first.
    When Kafka does not take the request in time the answer is a 503 and the request
    will not run; retry with the same `Idempotency-Key` to be sure it runs once."""
    caller = request.client.host if request.client else None
    event = body.to_event(caller)
    rules.check(event)
    scope = writer.name or f"client:{caller}"
    key = f"{scope}:{idempotency_key}" if idempotency_key else None
    request_id = await submissions.submit(event, key)
    status_url = f"/v1/requests/{request_id}"
    response.headers["Location"] = status_url
    return Accepted(request_id=request_id, status=RequestState.PENDING, status_url=status_url)
