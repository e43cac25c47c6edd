"""What every command shares: the consoles, and the settings read once with errors that
say which variable to fix."""

import typer
from pydantic import ValidationError
from pydantic_settings import SettingsError
from rich.console import Console

from persona_infra.settings import Settings, load_settings

err = Console(stderr=True)
out = Console()


def cli_settings() -> Settings:
    try:
        return load_settings()
    except ValidationError as exc:
        err.print("[red]Invalid configuration:[/red]")
        for error in exc.errors():
            name = "_".join(str(p) for p in error["loc"]).upper() or "settings"
            err.print(f"  {name}: {error['msg']}")
        err.print("Fix the environment variables above (see the README's configuration table).")
        raise typer.Exit(2) from None
    except SettingsError as exc:  # a value that is not even JSON where JSON is expected
        err.print(f"[red]Invalid configuration:[/red] {exc}")
        err.print("Give that variable a JSON value (see the README's configuration table).")
        raise typer.Exit(2) from None
