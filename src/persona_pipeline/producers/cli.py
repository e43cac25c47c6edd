"""Presentation for ``persona request``: validation messages, the progress bar, the table."""

import asyncio
import getpass
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from persona_pipeline.contracts import Constraints, PersonaRequested
from persona_pipeline.core.settings import Settings
from persona_pipeline.producers.request_command import Outcome, follow_request, publish_requests

out = Console()


class InvalidRequestError(SystemExit):
    """Exit code 2 after the validation errors were printed."""


def build_request(
    *,
    brief: str,
    count: int,
    constraints: dict[str, Any],
    seed: int | None,
    console: Console,
) -> PersonaRequested:
    """Validate the options with the same model the worker uses, and say what is wrong."""
    try:
        return PersonaRequested(
            brief=brief,
            count=count,
            constraints=Constraints(**{k: v for k, v in constraints.items() if v is not None}),
            seed=seed,
            requested_by=f"cli:{getpass.getuser()}",
        )
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"]) or "request"
            console.print(f"[red]--{field.replace('_', '-')}[/red]: {error['msg']}")
        raise InvalidRequestError(2) from None


async def run_request(
    settings: Settings, request: PersonaRequested, *, wait: bool, deadline_s: float
) -> int:
    """Publish, and with ``wait`` follow to completion; returns the process exit code."""
    if not wait:
        await publish_requests(settings, [request])
        out.print(str(request.request_id))
        return 0
    try:
        outcomes = await asyncio.wait_for(_publish_and_follow(settings, request), deadline_s)
    except TimeoutError:
        out.print(
            f"[yellow]Timed out after {deadline_s:.0f}s.[/yellow] The request is still queued; "
            f"check it with GET /v1/requests/{request.request_id}"
        )
        return 1
    _print_outcomes(request, outcomes)
    return 0 if all(o.persona for o in outcomes) else 1


async def _publish_and_follow(settings: Settings, request: PersonaRequested) -> list[Outcome]:
    outcomes: list[Outcome] = []
    ready = asyncio.Event()
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=out,
        transient=True,
    ) as progress:
        bar = progress.add_task(f"request {str(request.request_id)[:8]}", total=request.count)

        async def follow() -> None:
            async for outcome in follow_request(settings, request, on_ready=ready.set):
                outcomes.append(outcome)
                progress.advance(bar)

        follower = asyncio.create_task(follow())
        await ready.wait()  # listen first, so no event can slip past
        await publish_requests(settings, [request])
        await follower
    return outcomes


def _print_outcomes(request: PersonaRequested, outcomes: list[Outcome]) -> None:
    table = Table(title=f"request {request.request_id}")
    for column in ("#", "id", "name", "age", "occupation", "location"):
        table.add_column(column)
    for o in sorted(outcomes, key=lambda o: o.ordinal):
        if o.persona is not None:
            p = o.persona
            where = f"{p.location.city}, {p.location.country}"
            table.add_row(str(o.ordinal), str(p.id), p.name, str(p.age), p.occupation, where)
        else:
            table.add_row(str(o.ordinal), "-", f"[red]failed: {o.failure}[/red]", "", "", "")
    out.print(table)
