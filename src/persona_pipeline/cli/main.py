"""Entrypoints: each subcommand reads settings once, sets up logging and runs one process.

Heavy imports happen inside the commands so ``persona --help`` stays instant and
one command never loads another's dependencies.
"""

import asyncio
import sys
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from pydantic import ValidationError

from persona_contracts.events import MAX_COST_USD, MAX_PERSONAS_PER_REQUEST
from persona_contracts.requests import GenerationMode
from persona_pipeline.cli.common import cli_settings, err, out
from persona_pipeline.cli.read_commands import reads

if TYPE_CHECKING:
    from persona_contracts import PersonaRequested

MAX_DEV_WORKERS = 8
"""A machine running the whole stack fits a few workers; a larger group is a deployment."""

app = typer.Typer(
    name="persona",
    help="Event-driven persona generation: Kafka in, MongoDB and persona.created out.",
    no_args_is_help=True,
    add_completion=False,
)


@app.command()
def api() -> None:
    """Serve the HTTP API (API_HOST:API_PORT, default 127.0.0.1:8080)."""
    from persona_api.app import create_app
    from persona_api.key_ring import InsecureConfigurationError
    from persona_infra.http_server import HttpLimits, make_server, run_server
    from persona_infra.logging import configure_logging

    settings = cli_settings()
    configure_logging(settings, "api")
    try:
        application = create_app(settings)
    except InsecureConfigurationError as exc:
        err.print(f"[red]Refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None
    run_server(
        make_server(
            application,
            HttpLimits.of(settings),
            host=settings.api_host,
            port=settings.api_port,
            graceful_shutdown_s=10,
        )
    )


@app.command()
def worker() -> None:
    """Consume generation requests; serves /health, /ready and /metrics on WORKER_PORT."""
    from persona_infra.http_server import HttpLimits, make_server, run_server
    from persona_infra.logging import configure_logging
    from persona_worker.app import create_worker

    settings = cli_settings()
    configure_logging(settings, "worker")
    run_server(
        make_server(
            create_worker(settings).app,
            HttpLimits.of(settings),
            host=settings.worker_host,
            port=settings.worker_port,
            graceful_shutdown_s=30,
        )
    )


@app.command()
def healthcheck(
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per probe.")] = 3.0,
) -> None:
    """Exit 0 when this container's API or worker answers /health (the image's HEALTHCHECK).

    One image runs either process, so the probe asks both ports on loopback and
    passes when one of them answers 200."""
    import urllib.request

    settings = cli_settings()
    for port in (settings.api_port, settings.worker_port):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=timeout):
                raise typer.Exit(0)  # urlopen raises on any status but 2xx
        except OSError:
            continue
    err.print(
        f"unhealthy: nothing answers /health on 127.0.0.1:{settings.api_port} (API_PORT) "
        f"or 127.0.0.1:{settings.worker_port} (WORKER_PORT)"
    )
    raise typer.Exit(1)


@app.command()
def dev(
    workers: Annotated[
        int,
        typer.Option(
            min=1,
            max=MAX_DEV_WORKERS,
            help="Workers to run; they share requests and the shards of large ones. Their "
            "metrics are on WORKER_PORT and the ports after it.",
        ),
    ] = 1,
) -> None:
    """Run the whole stack locally: Kafka, MongoDB (data in DEV_DATA_DIR), workers and API.

    Stays in the foreground; Ctrl-C stops every process it started."""
    from persona_infra.logging import configure_logging
    from persona_pipeline.devstack.runner import run_dev_stack

    settings = cli_settings()
    configure_logging(settings, "dev")
    sys.exit(run_dev_stack(settings, workers))


Brief = Annotated[
    str, typer.Option(help="What the personas are for, e.g. 'urban cyclists in Berlin'.")
]
Count = Annotated[
    int,
    typer.Option(
        min=1,
        max=MAX_PERSONAS_PER_REQUEST,
        help="How many personas; more than REQUEST_SHARD_SIZE are generated in shards.",
    ),
]
Countries = Annotated[
    list[str] | None,
    typer.Option(
        "--country", help="Country (name or ISO code), optionally weighted: DE=0.7. Repeat."
    ),
]
Cities = Annotated[
    list[str] | None,
    typer.Option("--city", help="City, optionally weighted: 'Portland, Maine=2'. Repeat."),
]
Genders = Annotated[
    list[str] | None,
    typer.Option("--gender", help="female, male or non-binary, e.g. female=0.6. Repeat."),
]
Occupations = Annotated[
    list[str] | None, typer.Option("--occupation", help="Occupation, optionally weighted. Repeat.")
]
AgeBands = Annotated[
    list[str] | None,
    typer.Option("--age-band", help="Age band LOW-HIGH, optionally weighted: 18-24=0.4."),
]
MinAge = Annotated[int | None, typer.Option(min=16, max=100)]
MaxAge = Annotated[int | None, typer.Option(min=16, max=100)]
Locale = Annotated[str | None, typer.Option(help="Language of the text, e.g. de-DE.")]
Seed = Annotated[int | None, typer.Option(min=0, help="Reproducible grounding.")]
Audience = Annotated[
    Path | None,
    typer.Option(
        help="Use this plan (JSON, e.g. saved from `persona plan --json`) instead of planning."
    ),
]


def _request_from_options(
    brief: str,
    count: int,
    countries: list[str] | None,
    cities: list[str] | None,
    genders: list[str] | None,
    occupations: list[str] | None,
    age_bands: list[str] | None,
    min_age: int | None,
    max_age: int | None,
    locale: str | None,
    seed: int | None,
    audience: Path | None,
) -> "PersonaRequested":
    """The request the options describe, validated and checked against the brief: an
    invalid or contradictory one is reported here and exits with code 2."""
    from persona_audience.planner import AudienceError, RulePlanner
    from persona_producers import cli

    by_country = cli.weighted("country", countries or [], err)
    by_occupation = cli.weighted("occupation", occupations or [], err)
    constraints: dict[str, object] = {
        "cities": cli.weighted("city", cities or [], err),
        "genders": cli.weighted("gender", genders or [], err),
        "age_bands": cli.age_bands(age_bands or [], err),
        "min_age": min_age,
        "max_age": max_age,
        "locale": locale,
    }
    pairs = (("country", "countries", by_country), ("occupation", "occupations", by_occupation))
    for one, many, given in pairs:
        if given is not None and len(given) == 1 and set(given.values()) == {1.0}:
            constraints[one] = next(iter(given))
        else:
            constraints[many] = given
    event = cli.build_request(
        brief=brief,
        count=count,
        constraints=constraints,
        seed=seed,
        console=err,
        audience=cli.read_audience(audience, err),
    )
    try:
        RulePlanner.default().check(event)
    except AudienceError as exc:
        for problem in exc.problems:
            err.print(f"[red]cannot plan this audience[/red]: {problem}")
        raise typer.Exit(2) from None
    return event


@app.command()
def request(
    brief: Annotated[
        str | None,
        typer.Option(help="What the personas are for, e.g. 'urban cyclists in Berlin'."),
    ] = None,
    count: Count = 1,
    country: Countries = None,
    city: Cities = None,
    gender: Genders = None,
    occupation: Occupations = None,
    age_band: AgeBands = None,
    min_age: MinAge = None,
    max_age: MaxAge = None,
    locale: Locale = None,
    seed: Seed = None,
    audience: Audience = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow until every persona exists.")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait with --wait.")] = 300,
    request_id: Annotated[
        uuid.UUID | None,
        typer.Option(
            help="The request's id (default: a new one). Retrying a request that was not "
            "queued with its id and the same options can never generate it twice."
        ),
    ] = None,
    mode: Annotated[
        GenerationMode | None,
        typer.Option(
            help="batch: through the provider's Batch API, at half the price, done within "
            "24 h; sync: personas within seconds (default: the worker's "
            "OPENAI_BATCH_THRESHOLD decides)."
        ),
    ] = None,
    max_cost_usd: Annotated[
        float | None,
        typer.Option(
            min=0.000001,
            max=MAX_COST_USD,
            help="Stop starting personas once this request's LLM calls cost this much (USD, "
            "at the worker's price table); the rest fail saying so. Not with --mode batch.",
        ),
    ] = None,
    cancel: Annotated[
        uuid.UUID | None,
        typer.Option(
            help="Cancel this request instead (through the API at PERSONA_API_URL, with "
            "PERSONA_API_KEY): what is not started yet is not generated."
        ),
    ] = None,
) -> None:
    """Publish a generation request to Kafka; with --wait, show progress and the personas."""
    from persona_contracts import PersonaRequested
    from persona_producers.cli import cancel_request, run_request

    settings = cli_settings()
    if cancel is not None:
        raise typer.Exit(asyncio.run(cancel_request(settings, cancel)))
    if brief is None:
        err.print("[red]give --brief (what the personas are for), or --cancel REQUEST_ID[/red]")
        raise typer.Exit(2)
    event = _request_from_options(
        brief,
        count,
        country,
        city,
        gender,
        occupation,
        age_band,
        min_age,
        max_age,
        locale,
        seed,
        audience,
    )
    changes = {"request_id": request_id, "mode": mode, "max_cost_usd": max_cost_usd}
    given = {k: v for k, v in changes.items() if v is not None}
    try:
        event = PersonaRequested.model_validate({**event.model_dump(), **given})
    except ValidationError as exc:
        for problem in exc.errors():
            err.print(f"[red]invalid request[/red]: {problem['msg']}")
        raise typer.Exit(2) from None
    code = asyncio.run(run_request(settings, event, wait=wait, deadline_s=timeout))
    raise typer.Exit(code)


@app.command()
def plan(
    brief: Brief,
    count: Count = 20,
    country: Countries = None,
    city: Cities = None,
    gender: Genders = None,
    occupation: Occupations = None,
    age_band: AgeBands = None,
    min_age: MinAge = None,
    max_age: MaxAge = None,
    locale: Locale = None,
    seed: Seed = None,
    audience: Audience = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the plan and its counts as JSON.")
    ] = False,
) -> None:
    """Show the audience a brief is read as (same options as `persona request`), without
    generating or storing anything: every dimension with its shares, the count each
    option gets, and where it came from."""
    from persona_pipeline.cli.plan import preview, print_plan

    settings = cli_settings()
    event = _request_from_options(
        brief,
        count,
        country,
        city,
        gender,
        occupation,
        age_band,
        min_age,
        max_age,
        locale,
        seed,
        audience,
    )
    shown = asyncio.run(preview(settings, event))
    if as_json:
        typer.echo(shown.model_dump_json(indent=2))
    else:
        print_plan(shown, out)


app.add_typer(reads)  # list, search, show, stats, status, export: top-level commands

contracts = typer.Typer(help="The published event contracts (docs/contracts, docs/asyncapi.json).")
app.add_typer(contracts, name="contracts")


@contracts.command("export")
def export_contracts(
    out: Annotated[Path, typer.Option(help="The docs folder to write into.")] = Path("docs"),
    check: Annotated[bool, typer.Option("--check", help="Fail if the files are stale.")] = False,
) -> None:
    """Write the events' JSON Schemas and the worker's AsyncAPI document."""
    from persona_pipeline.cli.contracts import render_contracts

    stale = []
    for path, text in render_contracts(out).items():
        if path.exists() and path.read_text() == text:
            continue
        stale.append(path)
        if not check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
    for path in stale:
        err.print(f"{'stale' if check else 'wrote'}: {path}")
    if check and stale:
        err.print("Run `make contracts` and commit the result.")
        raise typer.Exit(1)


keys = typer.Typer(help="API keys of the HTTP API (API_KEYS, ADMIN_API_KEYS, READ_API_KEYS).")
app.add_typer(keys, name="keys")


@keys.command("hash")
def hash_key(
    name: Annotated[
        str, typer.Option(help="The key's name in configuration and logs, e.g. ci-publisher.")
    ],
    generate: Annotated[
        bool,
        typer.Option("--generate", help="Make a random key and print it once, on stderr."),
    ] = False,
) -> None:
    """Print the `name:scrypt$salt$hash` entry of a key read from stdin (or of a new key).

    Add the entry to API_KEYS (writers), ADMIN_API_KEYS or READ_API_KEYS; only the
    client keeps the key itself."""
    import getpass

    from persona_infra.api_keys import KeyFormatError, generate_key, make_entry

    if generate:
        key = generate_key()
    elif sys.stdin.isatty():
        key = getpass.getpass("API key (not echoed): ")
    else:
        key = sys.stdin.readline().rstrip("\r\n")
    try:
        entry = make_entry(name, key)
    except KeyFormatError as exc:
        typer.echo(f"Cannot hash this key: {exc}.", err=True)
        raise typer.Exit(2) from None
    if generate:
        typer.echo(f"New API key for {name} (shown once; give it to the client):", err=True)
        typer.echo(key, err=True)
    typer.echo(entry)


if __name__ == "__main__":
    app()
