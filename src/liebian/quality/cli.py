"""`liebian quality report`: the data-quality report of the warehouse."""

from __future__ import annotations

import json
import sys
from datetime import datetime

import typer
from sqlalchemy.exc import OperationalError, ProgrammingError

from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.output import Format, console, edge_time, emit, err_console
from liebian.quality import service

app = typer.Typer(no_args_is_help=True)


@app.command()
def report(
    start: datetime | None = typer.Option(
        None, parser=edge_time, help="First time included, e.g. 2026-08-01 (display zone), …Z or …+08:00."
    ),
    end: datetime | None = typer.Option(None, parser=edge_time, help="First time excluded (as --start)."),
    late_hours: float = typer.Option(24.0, help="Rows arriving later than this after their time are late."),
    max_amount_yuan: float = typer.Option(100_000.0, help="Order amounts above this are out of range."),
    outlier_factor: float = typer.Option(
        100.0, help="Amounts this many times above or below the median order are out of range (0: off)."
    ),
    with_store: bool = typer.Option(
        True, "--with-store/--warehouse-only", help="Also count OneID conflicts in the operational store."
    ),
    fmt: Format = typer.Option(Format.table, "--format", help="table, json or csv."),
) -> None:
    """Completeness, consistency and timeliness scores, error rate against the 0.3 % target, anomalies."""
    if late_hours <= 0 or max_amount_yuan <= 0 or outlier_factor < 0:
        err_console.print(
            "[red]error:[/red] --late-hours and --max-amount-yuan must be positive, --outlier-factor ≥ 0"
        )
        raise typer.Exit(2)
    config = service.QualityConfig(
        late_hours=late_hours,
        max_amount_fen=round(max_amount_yuan * 100),
        amount_outlier_factor=outlier_factor,
    )
    try:
        with warehouse.connect() as con:
            result = None
            if with_store:
                try:
                    with session_scope() as session:
                        result = service.quality_report(
                            con, start=start, end=end, session=session, config=config
                        )
                except (OperationalError, ProgrammingError) as exc:
                    err_console.print(
                        f"[yellow]warning:[/yellow] identity conflicts not counted, the operational store is "
                        f"not ready ({exc.orig}); run `liebian db upgrade`"
                    )
            if result is None:
                result = service.quality_report(con, start=start, end=end, config=config)
    except ValueError as exc:
        err_console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None
    if fmt is Format.json:
        sys.stdout.write(json.dumps(result.model_dump(mode="json"), ensure_ascii=False) + "\n")
        return
    if fmt is Format.csv:
        emit(service.metric_rows(result), fmt)
        return
    s, e = result.scores, result.error_rate
    verdict = "[green]pass[/green]" if e.passed else "[red]fail[/red]"
    console.print(
        f"overall {s.overall:.1f}  completeness {s.completeness:.1f}  consistency {s.consistency:.1f}  "
        f"timeliness {s.timeliness:.1f}\nerror rate {e.error_rate:.3%} of {e.rows_received:,} rows "
        f"(target ≤ {e.target:.1%}): {verdict}"
    )
    findings = [f.model_dump() for f in result.findings]
    if findings:
        emit(findings, fmt, title="findings")
    else:
        console.print("no findings: the data is clean")
    fields = [
        f.model_dump() | {"null_rate": f"{f.null_rate:.2%}"} for f in result.completeness.fields if f.missing
    ]
    if fields:
        emit(fields, fmt, title="missing values per field")
