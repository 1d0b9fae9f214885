"""`liebian calendar`: the holiday calendar of the settings (liebian/calendar.py) — a year's public
holidays, adjusted working days (调休), 春节 / 国庆 windows, promotions and brand dates, and what
one day is."""

from __future__ import annotations

from datetime import date

import typer

from liebian import calendar as holiday_calendar
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)

FORMAT = typer.Option(Format.table, "--format", help="table, json or csv.")


def _fail(exc: Exception) -> typer.Exit:
    err_console.print(f"[red]error:[/red] {exc}")
    return typer.Exit(2)


@app.command("show")
def show_command(
    year: int = typer.Option(..., "--year", help="The year, e.g. 2026."),
    fmt: Format = FORMAT,
) -> None:
    """A year's calendar by first day: kind holiday (day off), workday (调休上班), season (春节, 国庆
    windows), promotion, brand."""
    try:
        rows = holiday_calendar.current().year(year)
        _, _, source = holiday_calendar.public_days(year)
    except holiday_calendar.CalendarError as exc:
        raise _fail(exc) from exc
    emit(
        [{**w.as_dict(), "days": (w.end - w.start).days + 1} for w in rows],
        fmt,
        title=f"Calendar {year} (public holidays: {source})",
    )


@app.command("day")
def day_command(
    day: str = typer.Argument(..., help="YYYY-MM-DD"),
    fmt: Format = FORMAT,
) -> None:
    """What one day is: public holiday, adjusted working day, windows, and the name that explains it."""
    try:
        when = date.fromisoformat(day)
        info = holiday_calendar.current().day(when)
    except ValueError as exc:
        raise _fail(ValueError(f"day: {exc}")) from exc
    out = info.as_dict()
    out["windows"] = ", ".join(f"{w['name']} {w['start']}–{w['end']}" for w in out.pop("windows"))  # type: ignore[attr-defined]  # a list of dicts
    out["names"] = "、".join(info.names)
    emit(out, fmt)
