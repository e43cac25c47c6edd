"""Entrypoints: each subcommand reads settings once, sets up logging and runs one process.

Heavy imports happen inside the commands so ``persona --help`` stays instant and
one command never loads another's dependencies.
"""

import asyncio
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console

from persona_pipeline.core.settings import Settings, load_settings

app = typer.Typer(
    name="persona",
    help="Event-driven persona generation: Kafka in, MongoDB and persona.created out.",
    no_args_is_help=True,
    add_completion=False,
)
err = Console(stderr=True)


def _settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        err.print("[red]Invalid configuration:[/red]")
        for error in exc.errors():
            name = "_".join(str(p) for p in error["loc"]).upper() or "settings"
            err.print(f"  {name}: {error['msg']}")
        err.print("Fix the environment variables above (see the README's configuration table).")
        raise typer.Exit(2) from None


@app.command()
def api() -> None:
    """Serve the HTTP API (API_HOST:API_PORT, default 127.0.0.1:8080)."""
    import uvicorn

    from persona_pipeline.api.app import create_app
    from persona_pipeline.core.api_keys import InsecureConfigurationError
    from persona_pipeline.core.logging import configure_logging

    settings = _settings()
    configure_logging(settings, "api")
    try:
        application = create_app(settings)
    except InsecureConfigurationError as exc:
        err.print(f"[red]Refusing to start:[/red] {exc}")
        raise typer.Exit(2) from None
    uvicorn.run(
        application,
        host=settings.api_host,
        port=settings.api_port,
        log_config=None,
        access_log=False,
        proxy_headers=True,
        timeout_graceful_shutdown=10,
    )


@app.command()
def worker() -> None:
    """Consume generation requests; serves /health, /ready and /metrics on WORKER_PORT."""
    import uvicorn

    from persona_pipeline.consumers.app import create_worker
    from persona_pipeline.core.logging import configure_logging

    settings = _settings()
    configure_logging(settings, "worker")
    uvicorn.run(
        create_worker(settings).app,
        host=settings.worker_host,
        port=settings.worker_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=30,
    )


@app.command()
def healthcheck(
    timeout: Annotated[float, typer.Option(min=0.1, help="Seconds per probe.")] = 3.0,
) -> None:
    """Exit 0 when this container's API or worker answers /health (the image's HEALTHCHECK).

    One image runs either process, so the probe asks both ports on loopback and
    passes when one of them answers 200."""
    import urllib.request

    settings = _settings()
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
def dev() -> None:
    """Run the whole stack locally: Kafka, MongoDB (data in DEV_DATA_DIR), worker and API.

    Stays in the foreground; Ctrl-C stops every process it started."""
    from persona_pipeline.core.logging import configure_logging
    from persona_pipeline.devstack.runner import run_dev_stack

    settings = _settings()
    configure_logging(settings, "dev")
    sys.exit(run_dev_stack(settings))


@app.command()
def request(
    brief: Annotated[str, typer.Option(help="What the personas are for.")],
    count: Annotated[int, typer.Option(min=1, max=50, help="How many personas.")] = 1,
    country: Annotated[str | None, typer.Option(help="Country name or ISO code.")] = None,
    occupation: Annotated[str | None, typer.Option()] = None,
    min_age: Annotated[int | None, typer.Option(min=16, max=100)] = None,
    max_age: Annotated[int | None, typer.Option(min=16, max=100)] = None,
    locale: Annotated[str | None, typer.Option(help="Language, e.g. de-DE.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="Reproducible grounding.")] = None,
    wait: Annotated[
        bool, typer.Option("--wait", help="Follow until every persona exists.")
    ] = False,
    timeout: Annotated[float, typer.Option(min=1, help="Seconds to wait with --wait.")] = 300,
) -> None:
    """Publish a generation request to Kafka; with --wait, show progress and the personas."""
    from persona_pipeline.producers.cli import build_request, run_request

    settings = _settings()
    event = build_request(
        brief=brief,
        count=count,
        constraints={
            "country": country,
            "occupation": occupation,
            "min_age": min_age,
            "max_age": max_age,
            "locale": locale,
        },
        seed=seed,
        console=err,
    )
    code = asyncio.run(run_request(settings, event, wait=wait, deadline_s=timeout))
    raise typer.Exit(code)


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

    from persona_pipeline.core.api_keys import KeyFormatError, generate_key, make_entry

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
