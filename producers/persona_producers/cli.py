"""Presentation for ``persona request`` (and the options ``persona plan`` shares with it):
option parsing, validation messages, the progress bar, the table."""

import asyncio
import getpass
import json
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from persona_contracts import Constraints, PersonaRequested
from persona_contracts.plan import AudiencePlan
from persona_infra.settings import Settings
from persona_producers.api_client import ApiError, PersonaApi
from persona_producers.request_command import (
    NotQueuedError,
    Outcome,
    follow_request,
    publish_requests,
)

out = Console()
err = Console(stderr=True)


class InvalidRequestError(SystemExit):
    """Exit code 2 after the validation errors were printed."""


def weighted(option: str, values: Sequence[str], console: Console) -> dict[str, float] | None:
    """``["DE=0.7", "NL=0.3"]`` -> ``{"DE": 0.7, "NL": 0.3}``; a value without ``=`` weighs 1."""
    if not values:
        return None
    parsed: dict[str, float] = {}
    for value in values:
        name, _, weight = value.rpartition("=") if "=" in value else (value, "", "1")
        try:
            parsed[name.strip()] = float(weight)
        except ValueError:
            console.print(
                f"[red]--{option}[/red] {value!r}: the weight after '=' must be a number, "
                f"e.g. --{option} 'NAME=0.7'"
            )
            raise InvalidRequestError(2) from None
    return parsed


def age_bands(values: Sequence[str], console: Console) -> list[dict[str, float]] | None:
    """``["18-24=0.4", "25-34"]`` -> age bands with weights."""
    bands = weighted("age-band", values, console)
    if bands is None:
        return None
    parsed = []
    for band, share in bands.items():
        low, _, high = band.partition("-")
        if not (low.strip().isdigit() and high.strip().isdigit()):
            console.print(f"[red]--age-band[/red] {band!r}: write it as LOW-HIGH, e.g. 18-24=0.4")
            raise InvalidRequestError(2)
        parsed.append({"low": int(low), "high": int(high), "share": share})
    return parsed


def read_audience(path: Path | None, console: Console) -> AudiencePlan | None:
    """A plan from a JSON file: a plan, or what ``persona plan --json`` printed."""
    if path is None:
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return AudiencePlan.model_validate(
            data.get("plan", data) if isinstance(data, dict) else data
        )
    except (OSError, ValueError) as exc:
        console.print(f"[red]--audience[/red] {path}: not a plan ({exc})")
        raise InvalidRequestError(2) from None


def build_request(
    *,
    brief: str,
    count: int,
    constraints: dict[str, Any],
    seed: int | None,
    console: Console,
    audience: AudiencePlan | None = None,
) -> PersonaRequested:
    """Validate the options with the same model the worker uses, and say what is wrong."""
    try:
        return PersonaRequested(
            brief=brief,
            count=count,
            constraints=Constraints(**{k: v for k, v in constraints.items() if v is not None}),
            audience=audience,
            seed=seed,
            requested_by=f"cli:{getpass.getuser()}",
        )
    except ValidationError as exc:
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"][:2]) or "request"
            console.print(f"[red]--{field.replace('_', '-')}[/red]: {error['msg']}")
        raise InvalidRequestError(2) from None


async def run_request(
    settings: Settings, request: PersonaRequested, *, wait: bool, deadline_s: float
) -> int:
    """Publish, and with ``wait`` follow to completion; returns the process exit code."""
    try:
        if not wait:
            await publish_requests(settings, [request])
            out.print(str(request.request_id))
            return 0
        outcomes = await asyncio.wait_for(_publish_and_follow(settings, request), deadline_s)
    except NotQueuedError as exc:
        err.print(
            f"[red]not queued[/red]: {exc}. Check KAFKA_BOOTSTRAP_SERVERS, then retry with "
            f"the same options and --request-id {request.request_id} (Kafka may still take "
            "this copy: with the same id it is generated once)."
        )
        return 1
    except TimeoutError:
        out.print(
            f"[yellow]Timed out after {deadline_s:.0f}s.[/yellow] The request is still queued; "
            f"check it with GET /v1/requests/{request.request_id}"
        )
        return 1
    _print_outcomes(request, outcomes)
    return 0 if all(o.persona for o in outcomes) else 1


async def cancel_request(settings: Settings, request_id: uuid.UUID) -> int:
    """Cancel through the API and show where the request stands; the exit code."""
    key = settings.persona_api_key.get_secret_value() if settings.persona_api_key else None
    try:
        status = await PersonaApi(settings.api_url, key).cancel(request_id)
    except ApiError as exc:
        err.print(f"[red]cannot cancel[/red]: {exc}")
        return 1
    shards = f", shards {status.shards.done}/{status.shards.total}" if status.shards else ""
    out.print(
        f"request {request_id}: {status.status.value}, {status.stored} of {status.requested} "
        f"stored{shards}; what was not started is not generated"
    )
    return 0


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


TABLE_ROWS = 50
"""A larger request is summed up in one line rather than listed."""


def _print_outcomes(request: PersonaRequested, outcomes: list[Outcome]) -> None:
    if len(outcomes) > TABLE_ROWS:
        failed = sum(1 for o in outcomes if o.persona is None)
        out.print(
            f"request {request.request_id}: {len(outcomes) - failed} personas stored, "
            f"{failed} failed; list them with GET /v1/persona?request_id={request.request_id}"
        )
        return
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
