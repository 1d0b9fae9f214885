"""`liebian community …`: group health, negative share per group and day, KOC candidates, sentiment."""

from __future__ import annotations

from datetime import date

import typer

from liebian.community import sentiment, service
from liebian.community.service import CommunityError
from liebian.engine import warehouse
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")


def _day(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err_console.print(f"[red]{field}: {value!r} is not a date (YYYY-MM-DD)[/red]")
        raise typer.Exit(2) from None


def _with_con(fn, *args):
    try:
        with warehouse.connect() as con:
            return fn(con, *args)
    except CommunityError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None


@app.command("health")
def health(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), fmt: Format = FMT,
) -> None:  # fmt: skip
    """Members, speaking share, messages per member, weekly active share, interactions, themes."""
    rows = _with_con(service.group_health, _day(start, "start"), _day(end, "end"), group_id)
    if fmt != Format.json:
        rows = [
            {**r, "themes": ", ".join(f"{k} {v}" for k, v in list(r["themes"].items())[:3])} for r in rows
        ]
    emit(rows, fmt)


@app.command("negative")
def negative(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), only_alerts: bool = typer.Option(False, "--only-alerts"),
    fmt: Format = FMT,
) -> None:  # fmt: skip
    """Negative-sentiment share per group and day (alert: ≥ 10 messages and > 5%)."""
    rows = _with_con(service.negative_share, _day(start, "start"), _day(end, "end"), group_id)
    emit([r for r in rows if r["alert"]] if only_alerts else rows, fmt)


@app.command("contributors")
def contributors(
    start: str | None = typer.Option(None), end: str | None = typer.Option(None),
    group_id: str | None = typer.Option(None), limit: int = typer.Option(20, min=1, max=1000), fmt: Format = FMT,
) -> None:  # fmt: skip
    """Top contributors (KOC candidates) by messages: pseudonymous person ids."""
    emit(_with_con(service.top_contributors, _day(start, "start"), _day(end, "end"), group_id, limit), fmt)


@app.command("sentiment")
def sentiment_(texts: list[str], fmt: Format = FMT) -> None:
    """Classify Chinese messages (offline lexicon): positive / negative / neutral."""
    emit(
        [
            {"text": t, **{k: v for k, v in vars(sentiment.classify(t)).items() if k != "terms"}}
            for t in texts
        ],
        fmt,
    )
