"""`liebian fx`: the exchange rates to CNY the settings provide (`fx_rates`, `fx_rates_file`) or the
operator imported into the store (`liebian fx import FILE`), and what an amount converts to
(liebian/fx.py; docs/formats.md "Currencies")."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from liebian import fx
from liebian.auth.cli_guard import acting
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)

FORMAT = typer.Option(Format.table, "--format", help="table, json or csv.")


@app.command("list")
def list_command(
    currency: str | None = typer.Option(None, "--currency", help="Only this currency (ISO code)."),
    fmt: Format = FORMAT,
) -> None:
    """The usable rates (CNY per unit, per day: imported and configured); a bad setting or file line
    is named."""
    try:
        rates = fx.usable_rates()
    except fx.FxRatesInvalid as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    wanted = currency.upper() if currency else None
    emit(
        [
            {"date": str(r.day), "currency": r.currency, "cny_per_unit": str(r.cny_per_unit)}
            for r in rates
            if wanted is None or r.currency == wanted
        ],
        fmt,
        title="Exchange rates to CNY",
    )


@app.command("convert")
def convert_command(
    amount_fen: int = typer.Argument(..., help="Hundredths of the currency's unit (cents)."),
    currency: str = typer.Argument(..., help="ISO code, e.g. USD."),
    on: str = typer.Option(..., "--date", help="The order's day, YYYY-MM-DD (in the configured zone)."),
    fmt: Format = FORMAT,
) -> None:
    """What an amount on a day converts to, with the rate used (or why none is)."""
    settings = get_settings()
    try:
        day = date.fromisoformat(on)
        rate = fx.rate_on(fx.usable_rates(settings), currency.upper(), day, settings.fx_max_staleness_days)
    except (ValueError, fx.FxRatesInvalid) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    if currency.upper() == fx.BASE:
        emit({"amount_fen": amount_fen, "currency": fx.BASE, "fx_rate": None}, fmt)
        return
    if rate is None:
        err_console.print(
            f"[red]error:[/red] {fx.no_rate_reason(currency.upper(), day, settings.fx_max_staleness_days)}"
        )
        raise typer.Exit(2)
    emit(
        {
            "amount_fen": fx.to_fen(amount_fen, rate.cny_per_unit),
            "currency": fx.BASE,
            "orig_amount": amount_fen,
            "orig_currency": currency.upper(),
            "fx_rate": str(rate.cny_per_unit),
            "rate_date": str(rate.day),
        },
        fmt,
    )


@app.command("import")
def import_command(
    path: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV: currency,date,rate."),
) -> None:
    """Store the rates of a CSV file (`currency,date,rate`, CNY per unit); a rate of a currency and
    day stored already is replaced. A bad line is named and nothing is stored."""
    try:
        rates = fx.read_rates_csv(path)
    except (OSError, ValueError, KeyError) as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from exc
    with session_scope() as session:
        count = fx.import_rates(session, rates, acting().name)
    emit({"imported": count, "file": str(path)}, Format.table, title="Exchange rates imported")
