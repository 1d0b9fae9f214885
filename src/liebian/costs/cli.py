"""`liebian costs`: other costs per campaign and period (media, staff, tools, other) that the KPI
sheet adds to the reward cost (CAC, ROI, LTV/CAC), pro-rated by days (costs/service.py)."""

from __future__ import annotations

from datetime import date

import typer
from pydantic import ValidationError

from liebian.auth.cli_guard import acting
from liebian.costs import service
from liebian.costs.schemas import CATEGORIES, CostIn
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)

FORMAT = typer.Option(Format.table, "--format", help="table, json or csv.")


def _fail(message: str) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {message}")
    return typer.Exit(2)


def _day(text: str | None, name: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _fail(f"{name}: {text!r} is not a date (YYYY-MM-DD)") from None


@app.command("add")
def add_command(
    amount_fen: int = typer.Argument(..., help="The cost in fen of CNY."),
    category: str = typer.Option(..., "--category", help=f"One of {', '.join(CATEGORIES)}."),
    start: str = typer.Option(..., "--start", help="First day of the period, YYYY-MM-DD (display zone)."),
    end: str = typer.Option(..., "--end", help="Last day of the period, inclusive."),
    campaign: str | None = typer.Option(None, "--campaign", help="The campaign (default: every campaign)."),
    note: str = typer.Option("", "--note", help="What it was (no personal data)."),
    fmt: Format = FORMAT,
) -> None:
    """Record a cost of a campaign over a period (checked like the API: amount, dates, category)."""
    try:
        body = CostIn.model_validate(
            {"campaign_id": campaign, "category": category, "amount_fen": amount_fen,
             "start_date": start, "end_date": end, "note": note}
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "period"
        raise _fail(f"{where}: {first['msg'].removeprefix('Value error, ')}") from None
    with session_scope() as session:
        emit(service.add_cost(session, **body.model_dump(), actor=acting().name), fmt, title="Cost recorded")


@app.command("list")
def list_command(
    campaign: str | None = typer.Option(None, "--campaign", help="Only this campaign."),
    start: str | None = typer.Option(None, "--start", help="Costs whose period ends on or after this day."),
    end: str | None = typer.Option(None, "--end", help="Costs whose period starts on or before this day."),
    fmt: Format = FORMAT,
) -> None:
    """The recorded costs (amounts in fen), oldest period first."""
    with session_scope() as session:
        rows = service.list_costs(session, campaign, _day(start, "--start"), _day(end, "--end"))
    emit(rows, fmt, title="Costs")


@app.command("remove")
def remove_command(cost_id: int = typer.Argument(..., help="The cost's id (`liebian costs list`).")) -> None:
    """Delete a recorded cost."""
    try:
        with session_scope() as session:
            removed = service.remove_cost(session, cost_id)
    except DomainError as exc:
        raise _fail(exc.message) from None
    emit(removed, Format.table, title="Cost removed")
