"""Presentation for ``persona plan``: the plan as tables, one per dimension."""

from rich.console import Console
from rich.table import Table

from persona_audience.planner import RulePlanner
from persona_audience.quotas import PlanPreview, Quota
from persona_contracts import PersonaRequested
from persona_infra.settings import Settings

MAX_ROWS = 15


async def preview(settings: Settings, request: PersonaRequested) -> PlanPreview:
    """Plan ``request`` as a worker configured by ``settings`` would, storing nothing."""
    del settings  # the rule planner needs no configuration
    plan = await RulePlanner.default().plan(request)
    return PlanPreview.of(plan, request.count)


def print_plan(shown: PlanPreview, console: Console) -> None:
    plan, quotas = shown.plan, shown.quotas
    planning = plan.planning
    console.print(
        f"[bold]Audience plan[/bold] for {shown.count} personas (planner: {planning.planner})"
    )
    console.print(
        f"subject: {plan.subject or '-'}    language: {plan.language.code} ({plan.language.source})"
    )
    dimensions = [
        ("locations", plan.locations.source, quotas.locations),
        ("ages", plan.ages.source, quotas.ages),
        ("genders", plan.genders.source, quotas.genders),
        ("occupations", plan.occupations.source, quotas.occupations),
        *((trait.name, trait.source, quotas.traits[trait.name]) for trait in plan.traits),
    ]
    for name, source, rows in dimensions:
        console.print(f"\n[bold]{name}[/bold] (from {source})")
        console.print(_table(rows))
    if planning.model:
        usage = planning.usage
        console.print(
            f"planned by {planning.model}: {usage.prompt_tokens} prompt + "
            f"{usage.completion_tokens} completion tokens, ${planning.cost_usd:.6f}"
        )
    for note in planning.notes:
        console.print(f"[yellow]note[/yellow]: {note}")


def _table(rows: list[Quota]) -> Table:
    """The options with their share and count; in a long list, only the options that get
    personas (``--json`` has them all)."""
    table = Table(show_edge=False)
    table.add_column("option")
    table.add_column("share", justify="right")
    table.add_column("count", justify="right")
    shown = [row for row in rows if row.count] if len(rows) > MAX_ROWS else rows
    for row in shown:
        table.add_row(row.label, f"{row.share:.1%}", str(row.count))
    rest = [row for row in rows if row not in shown]
    if rest:
        table.add_row(f"[dim]{len(rest)} more[/dim]", f"{sum(r.share for r in rest):.1%}", "0")
    return table
