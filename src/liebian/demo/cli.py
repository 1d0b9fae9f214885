"""`liebian demo`: generate the demo brand, load it, print its KPIs, optionally serve the console."""

from __future__ import annotations

import time
from datetime import date, datetime

import typer

from liebian.analytics import service as analytics
from liebian.analytics.overview import overview, overview_rows
from liebian.demo.generator import DEFAULT_END_DATE, DemoSpec
from liebian.demo.service import DemoError, build
from liebian.engine.backend import analytics_backend
from liebian.output import Format, console, emit, err_console

app = typer.Typer()


@app.command()
def demo(
    seed: int = typer.Option(7, help="Random seed: the same seed gives the same brand, byte for byte."),
    persons: int = typer.Option(50_000, help="Persons to generate (at least 500)."),
    days: int = typer.Option(120, help="Days of history (at least 28)."),
    end_date: datetime = typer.Option(
        datetime.combine(DEFAULT_END_DATE, datetime.min.time()),
        formats=["%Y-%m-%d"],
        help="Last day of the data.",
    ),
    serve: bool = typer.Option(False, "--serve/--no-serve", help="Serve the API and console afterwards."),
    port: int | None = typer.Option(
        None, min=1, max=65535, help="Port to serve on with --serve (default LIEBIAN_PORT, else 8000)."
    ),
    host: str | None = typer.Option(
        None, help="Interface to serve on with --serve (default LIEBIAN_HOST, else 127.0.0.1)."
    ),
    force: bool = typer.Option(
        False, "--force", help="Regenerate and reload, resetting this data directory."
    ),
    fmt: Format = typer.Option(Format.table, "--format", help="Output of the KPI summary."),
) -> None:
    """Generate the demo brand 茶语 TeaWords, import it and print its KPI summary."""

    try:
        spec = DemoSpec(seed=seed, persons=persons, days=days, end_date=_as_date(end_date))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    started = time.perf_counter()
    try:
        with err_console.status("demo") as status:
            result = build(spec, force=force, progress=lambda msg: status.update(f"demo: {msg}"))
    except DemoError as exc:
        err_console.print(f"[red]{exc}[/red]")
        raise typer.Exit(1) from exc
    if result.reused:
        err_console.print(f"reusing the demo already loaded in {result.out_dir} (pass --force to rebuild)")
    else:
        rejected = sum(i["rows_rejected"] for i in result.imports)
        err_console.print(
            f"generated in {result.generation_seconds:.1f} s, imported {sum(i['rows_loaded'] for i in result.imports):,} "
            f"rows in {result.import_seconds:.1f} s ({rejected:,} injected bad rows rejected, see "
            f"{result.out_dir / 'ground_truth.json'}); total {time.perf_counter() - started:.1f} s"
        )
    # the KPI sheet's costs (the reward ledger's), so the summary's figures are the sheet's
    costs = analytics.costs_for(analytics.make_filters())
    with analytics_backend() as backend:
        values = overview(backend, costs=costs)
    if fmt is Format.table:
        emit(overview_rows(values), fmt, title="茶语 TeaWords — KPI")
    else:
        emit(values, fmt)
    if serve:
        from liebian import serving  # uvicorn is loaded only to serve

        console.print("demo ready; starting the server (Ctrl-C to stop)")
        serving.serve(host=host, port=port)


def _as_date(value: datetime | date) -> date:
    return value.date() if isinstance(value, datetime) else value
