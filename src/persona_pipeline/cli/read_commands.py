"""The read API from the terminal: ``persona list``, ``search``, ``show``, ``stats``,
``status`` and ``export``.

Each command calls the API at ``--api-url`` (default ``PERSONA_API_URL``, else the local
API) with ``PERSONA_API_KEY`` when set, and prints rich tables, or with ``--json`` the
API's JSON for scripts. The filters are the API's own, under the same names.
"""

import asyncio
import functools
import inspect
import json
import uuid
from collections.abc import Callable, Coroutine, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from rich.console import Console

from persona_pipeline.cli.common import cli_settings, err, out
from persona_pipeline.cli.read_views import print_page, print_persona, print_stats, print_status

if TYPE_CHECKING:
    from persona_producers.api_client import PersonaApi

reads = typer.Typer()
T = TypeVar("T")

ApiUrl = Annotated[
    str | None,
    typer.Option(help="The API to read from (default: PERSONA_API_URL, else the local API)."),
]
AsJson = Annotated[bool, typer.Option("--json", help="Print the API's JSON instead of tables.")]
Country = Annotated[str | None, typer.Option(help="Country name or ISO code.")]
City = Annotated[str | None, typer.Option()]
Occupation = Annotated[str | None, typer.Option()]
Gender = Annotated[str | None, typer.Option(help="female, male or non-binary.")]
MinAge = Annotated[int | None, typer.Option(min=0, max=150)]
MaxAge = Annotated[int | None, typer.Option(min=0, max=150)]
Tag = Annotated[str | None, typer.Option()]
Interest = Annotated[str | None, typer.Option()]
RequestId = Annotated[uuid.UUID | None, typer.Option(help="Only this request's personas.")]
CreatedAfter = Annotated[datetime | None, typer.Option(help="ISO 8601, inclusive (UTC).")]
CreatedBefore = Annotated[datetime | None, typer.Option(help="ISO 8601, inclusive (UTC).")]
Generator = Annotated[str | None, typer.Option(help="openai or offline.")]
PageSize = Annotated[int, typer.Option(min=1, max=100, help="Personas per page.")]
Cursor = Annotated[str | None, typer.Option(help="`next_cursor` printed under a page.")]

FILTER_OPTIONS: dict[str, Any] = {
    "country": Country,
    "city": City,
    "occupation": Occupation,
    "gender": Gender,
    "min_age": MinAge,
    "max_age": MaxAge,
    "tag": Tag,
    "interest": Interest,
    "request_id": RequestId,
    "created_after": CreatedAfter,
    "created_before": CreatedBefore,
    "generator": Generator,
}
"""The API's list filters, as options of every command that takes them."""


def _query(values: Mapping[str, Any]) -> dict[str, str]:
    """The query string of the options that were given."""
    given = {name: value for name, value in values.items() if value is not None}
    return {k: v.isoformat() if isinstance(v, datetime) else str(v) for k, v in given.items()}


def with_filters(command: Callable[..., None]) -> Callable[..., None]:
    """``command`` with every option of ``FILTER_OPTIONS`` besides its own; it receives
    them as ``filters``, the query string of those given. Declared once here, so list,
    search and export cannot drift apart."""
    own = [p for p in inspect.signature(command).parameters.values() if p.name != "filters"]
    added = [
        inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=kind)
        for name, kind in FILTER_OPTIONS.items()
    ]

    @functools.wraps(command)
    def with_options(**values: Any) -> None:
        filters = _query({name: values.pop(name) for name in FILTER_OPTIONS})
        command(filters=filters, **values)

    with_options.__signature__ = inspect.Signature([*own, *added])  # type: ignore[attr-defined]
    with_options.__annotations__ = {**command.__annotations__, **FILTER_OPTIONS}
    return with_options


def _client(api_url: str | None) -> "PersonaApi":
    from persona_producers.api_client import PersonaApi

    settings = cli_settings()
    key = settings.persona_api_key.get_secret_value() if settings.persona_api_key else None
    return PersonaApi((api_url or settings.api_url).rstrip("/"), key)


def _run(call: Coroutine[Any, Any, T]) -> T:
    """Run one API call; its ``ApiError`` is printed and exits with code 1."""
    from persona_producers.api_client import ApiError

    try:
        return asyncio.run(call)
    except ApiError as exc:
        err.print(f"[red]error[/red]: {exc}")
        raise typer.Exit(1) from None


def _show(body: Any, as_json: bool, render: Callable[[Any, Console], None]) -> None:
    if as_json:
        typer.echo(json.dumps(body, indent=2))
    else:
        render(body, out)


@reads.command("list")
@with_filters
def list_personas(
    filters: dict[str, str],
    sort: Annotated[str, typer.Option(help="created_at (newest first) or age.")] = "created_at",
    limit: PageSize = 20,
    cursor: Cursor = None,
    api_url: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """One page of stored personas, newest first; the next with --cursor."""
    params = {**filters, **_query({"sort": sort, "limit": limit, "cursor": cursor})}
    _show(_run(_client(api_url).get("/v1/persona", params)), as_json, print_page)


@reads.command("search")
@with_filters
def search_personas(
    query: Annotated[str, typer.Argument(help="Words that must all appear.")],
    filters: dict[str, str],
    sort: Annotated[str, typer.Option(help="relevance, created_at or age.")] = "relevance",
    limit: PageSize = 20,
    cursor: Cursor = None,
    api_url: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """Personas whose name, occupation, place, interests or bio hold every word, best first."""
    paging = _query({"sort": sort, "limit": limit, "cursor": cursor})
    params = {"q": query, **filters, **paging}
    _show(_run(_client(api_url).get("/v1/persona/search", params)), as_json, print_page)


@reads.command("show")
def show_persona(
    persona_id: Annotated[uuid.UUID, typer.Argument(help="The persona's id.")],
    api_url: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """One persona in full."""
    _show(_run(_client(api_url).get(f"/v1/persona/{persona_id}")), as_json, print_persona)


@reads.command("stats")
def stats(api_url: ApiUrl = None, as_json: AsJson = False) -> None:
    """The population: countries, ages, occupations, models, tokens and cost."""
    _show(_run(_client(api_url).get("/v1/persona/stats")), as_json, print_stats)


@reads.command("status")
def status(
    request_id: Annotated[uuid.UUID, typer.Argument(help="The request's id.")],
    api_url: ApiUrl = None,
    as_json: AsJson = False,
) -> None:
    """Where a generation request stands: stored, failed, shards, time left, cost."""
    body = _run(_client(api_url).get(f"/v1/requests/{request_id}"))
    _show(body, as_json, print_status)


@reads.command("export")
@with_filters
def export(
    filters: dict[str, str],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="The file to write (default stdout).")
    ] = None,
    export_format: Annotated[
        str, typer.Option("--format", help="jsonl, csv or parquet.")
    ] = "jsonl",
    limit: Annotated[int | None, typer.Option(min=1, max=1_000_000)] = None,
    api_url: ApiUrl = None,
) -> None:
    """Download the personas the filters match as JSON Lines, CSV or Parquet, with a
    progress bar; the file appears only once it is complete."""
    from persona_pipeline.cli.export_download import download

    params = {"format": export_format, **filters, **_query({"limit": limit})}
    rows = _run(download(_client(api_url), params, output, err))
    if output is not None:
        err.print(f"wrote {rows} personas to {output}" if rows is not None else f"wrote {output}")
