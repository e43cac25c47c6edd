"""How the read commands print what the API answered: rich tables and panels, from the
API's JSON as it is (so ``--json`` and the tables show the same thing)."""

from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table

TOP = 10
"""Rows per ranking in ``persona stats``."""


def _when(value: str | None) -> str:
    return value[:16].replace("T", " ") if value else "-"


def _place(location: dict[str, Any]) -> str:
    return ", ".join(part for part in (location.get("city"), location.get("country")) if part)


def print_page(page: dict[str, Any], console: Console) -> None:
    table = Table(title=f"{len(page['items'])} personas", title_justify="left")
    for column in ("name", "age", "gender", "place", "occupation", "tags", "created", "id"):
        table.add_column(column, overflow="fold")
    for persona in page["items"]:
        table.add_row(
            persona["name"],
            str(persona["age"]),
            persona["gender"],
            _place(persona["location"]),
            persona["occupation"],
            ", ".join(persona["tags"][:3]),
            _when(persona["created_at"]),
            persona["id"],
        )
    console.print(table)
    if page.get("next_cursor"):
        console.print(f"next page: --cursor {page['next_cursor']}", soft_wrap=True)


def _bullets(items: list[str]) -> str:
    return "\n".join(f"- {item}" for item in items) or "-"


def print_persona(persona: dict[str, Any], console: Console) -> None:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    personality = ", ".join(f"{k} {v:.2f}" for k, v in persona["personality"].items())
    usage = persona["usage"]
    rows = [
        ("age", f"{persona['age']} ({persona['gender']})"),
        ("place", _place(persona["location"])),
        ("occupation", persona["occupation"]),
        ("interests", ", ".join(persona["interests"]) or "-"),
        ("personality", personality),
        ("goals", _bullets(persona["goals"])),
        ("pain points", _bullets(persona["pain_points"])),
        ("tags", ", ".join(persona["tags"]) or "-"),
        ("created", f"{_when(persona['created_at'])} by {persona['generator']}/{persona['model']}"),
        ("tokens", f"{usage['prompt_tokens']} in, {usage['completion_tokens']} out"),
        ("cost", f"${persona['cost_usd']:.6f}"),
        ("request", f"{persona['request_id']} #{persona['ordinal']}"),
    ]
    if cell := persona.get("plan_cell"):
        rows.append(("plan cell", ", ".join(str(v) for v in cell.values() if v)))
    for name, value in rows:
        facts.add_row(name, value)
    console.print(
        Panel(Group(persona["bio"], "", facts), title=persona["name"], subtitle=persona["id"])
    )


def _ranking(title: str, counts: dict[str, int]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(title.split(" ")[-1])
    table.add_column("personas", justify="right")
    for name, count in list(counts.items())[:TOP]:
        table.add_row(name, f"{count:,}")
    return table


def print_stats(stats: dict[str, Any], console: Console) -> None:
    console.print(
        f"[bold]{stats['total']:,}[/bold] personas, {stats['total_tokens']:,} tokens, "
        f"${stats['cost_usd']:.4f}, {stats['near_duplicates_caught']:,} near-duplicates caught, "
        f"{stats['failed_ordinals']:,} failed"
    )
    occupations = {o["occupation"]: o["count"] for o in stats["top_occupations"]}
    console.print(_ranking("by country", stats["by_country"]))
    console.print(_ranking("by age", stats["by_age_bucket"]))
    console.print(_ranking("top occupation", occupations))
    models = Table(title="by model", title_justify="left")
    for column in ("model", "personas", "prompt tokens", "completion tokens", "cost"):
        models.add_column(column, justify="left" if column == "model" else "right")
    for m in stats["by_model"]:
        models.add_row(
            f"{m['generator']}/{m['model']}",
            f"{m['personas']:,}",
            f"{m['prompt_tokens']:,}",
            f"{m['completion_tokens']:,}",
            f"${m['cost_usd']:.4f}",
        )
    console.print(models)
    days = {day: n for day, n in stats["personas_per_day"].items() if n}
    console.print(_ranking("per day", dict(sorted(days.items(), reverse=True))))


def print_status(status: dict[str, Any], console: Console) -> None:
    facts = Table.grid(padding=(0, 2))
    facts.add_column(style="bold")
    facts.add_column()
    shards = status.get("shards")
    rows = [
        ("status", status["status"]),
        ("brief", status["brief"]),
        ("stored", f"{status['stored']:,} of {status['requested']:,}"),
        ("failed", f"{status['failed']:,}"),
        ("shards", f"{shards['done']} of {shards['total']} done" if shards else "-"),
        ("time left", f"{status['eta_s']:.0f} s" if status.get("eta_s") is not None else "-"),
        ("tokens", f"{status['prompt_tokens']:,} in, {status['completion_tokens']:,} out"),
        ("cost", f"${status['cost_usd']:.6f}"),
        ("created", _when(status["created_at"])),
        ("updated", _when(status["updated_at"])),
    ]
    if status.get("error"):
        rows.append(("error", status["error"]))
    for name, value in rows:
        facts.add_row(name, value)
    console.print(Panel(facts, title=f"request {status['request_id']}"))
    for ordinal, reason in list(status.get("failures", {}).items())[:TOP]:
        console.print(f"  ordinal {ordinal}: {reason}")
