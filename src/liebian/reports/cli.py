"""`liebian report …`: generate reports to files, SMART targets, subscriptions, the schedule."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path
from typing import NoReturn, overload

import typer

from liebian.analytics.common import AnalyticsError
from liebian.auth.cli_guard import acting
from liebian.db.session import session_scope
from liebian.output import Format, console, emit, err_console
from liebian.privacy import watermark
from liebian.reports import service
from liebian.reports.service import ReportError

app = typer.Typer(no_args_is_help=True)
FMT = typer.Option(Format.table, "--format")


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]{message}[/red]")
    raise typer.Exit(2)


@overload
def _date(value: str, field: str) -> date: ...
@overload
def _date(value: str | None, field: str) -> date | None: ...


def _date(value: str | None, field: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        _fail(f"{field}: {value!r} is not a date (YYYY-MM-DD)")


@app.command("generate")
def generate_cmd(
    kind: str = typer.Option("weekly", help="weekly | monthly"),
    start: str | None = typer.Option(None, help="first day YYYY-MM-DD (with --end)"),
    end: str | None = typer.Option(None, help="last day, inclusive"),
    out: Path = typer.Option(Path("."), help="directory for the .html and .xlsx"),
) -> None:
    """Generate a report now and write it as HTML and XLSX."""
    s, e = _date(start, "start"), _date(end, "end")
    if (s is None) != (e is None):
        _fail("start, end: give both or neither")
    try:
        report = service.generate(kind, s, e)
    except ReportError as exc:
        _fail(exc.message)
    except AnalyticsError as exc:
        _fail(str(exc))
    base = _write_files(report, out, f"liebian-{report['kind']}-{report['period_start']}")
    console.print(f"wrote {base}.html and {base}.xlsx")


def _write_files(report: dict, out: Path, stem: str) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    base = out / stem

    def mark(fmt: str) -> watermark.ExportMark:  # each file is an export: its own mark and audit entry
        period = f"period {report['period_start']}..{report['period_end']}"
        return watermark.issue_now(
            actor=acting().name, what=f"report {report['kind']} ({fmt})", filter_text=period, ip="cli"
        )

    html = watermark.mark_html(service.render_html(report), mark("html"))
    base.with_suffix(".html").write_text(html, encoding="utf-8")
    base.with_suffix(".xlsx").write_bytes(watermark.mark_xlsx(service.render_xlsx(report), mark("xlsx")))
    return base


@app.command("keep")
def keep_cmd(
    kind: str = typer.Option("weekly", help="weekly | monthly"),
    start: str | None = typer.Option(None, help="first day YYYY-MM-DD (with --end)"),
    end: str | None = typer.Option(None, help="last day, inclusive"),
    fmt: Format = FMT,
) -> None:
    """Generate a report now and keep it (listed by `report documents` and in the console)."""

    s_, e_ = _date(start, "start"), _date(end, "end")
    try:
        with session_scope() as s:
            doc = service.request_document(s, kind, s_, e_, requested_by=acting().name)
        doc = service.produce_document(doc["id"])
    except ReportError as exc:
        _fail(exc.message)
    if doc["status"] != "done":
        _fail(f"report {doc['id']} failed: {doc['detail']}")
    emit([doc], fmt)


@app.command("documents")
def documents_cmd(limit: int = typer.Option(50, min=1, max=500), fmt: Format = FMT) -> None:
    """List kept reports, newest first."""
    with session_scope() as s:
        emit(service.list_documents(s, limit), fmt)


@app.command("document")
def document_cmd(
    document_id: int = typer.Argument(..., help="the kept report's id (see `report documents`)"),
    out: Path = typer.Option(Path("."), help="directory for the .html and .xlsx"),
) -> None:
    """Write a kept report as HTML and XLSX."""
    try:
        with session_scope() as s:
            kept = service.get_document(s, document_id)
    except ReportError as exc:
        _fail(exc.message)
    report = kept["report"]
    base = _write_files(report, out, f"liebian-{report['kind']}-{report['period_start']}-{document_id}")
    console.print(f"wrote {base}.html and {base}.xlsx")


@app.command("target-add")
def target_add_cmd(
    name: str = typer.Argument(...),
    metric: str = typer.Option(..., help="KPI key, e.g. retention_d1"),
    baseline: float = typer.Option(...),
    target: float = typer.Option(...),
    start: str = typer.Option(..., help="YYYY-MM-DD"),
    due: str = typer.Option(..., help="YYYY-MM-DD"),
    owner: str = typer.Option(""),
    fmt: Format = FMT,
) -> None:
    """Add a SMART target (e.g. --metric retention_d1 --baseline 0.32 --target 0.41)."""
    try:
        with session_scope() as s:
            emit(service.create_target(s, name, metric, baseline, target, _date(start, "start"), _date(due, "due"),
                                       owner), fmt)  # fmt: skip
    except ReportError as exc:
        _fail(exc.message)


@app.command("targets")
def targets_cmd(fmt: Format = FMT) -> None:
    """List SMART targets."""
    with session_scope() as s:
        emit(service.list_targets(s), fmt)


@app.command("subscribe")
def subscribe_cmd(
    kind: str = typer.Option(..., help="weekly | monthly"),
    channel: str = typer.Option(..., help="email | webhook"),
    address: str = typer.Option(..., help="e-mail address or webhook URL"),
    secret: str | None = typer.Option(
        None, envvar="LIEBIAN_REPORT_WEBHOOK_SECRET", help="webhook signing secret"
    ),
    fmt: Format = FMT,
) -> None:
    """Deliver the weekly or monthly report to an address."""
    try:
        with session_scope() as s:
            emit(service.subscribe(s, kind, channel, address, secret), fmt)
    except ReportError as exc:
        _fail(exc.message)


@app.command("subscriptions")
def subscriptions_cmd(fmt: Format = FMT) -> None:
    """List report subscriptions."""
    with session_scope() as s:
        emit(service.list_subscriptions(s), fmt)


@app.command("send-due")
def send_due_cmd(
    as_of: str | None = typer.Option(None, help="pretend today is this local day (YYYY-MM-DD)"),
    fmt: Format = FMT,
) -> None:
    """Deliver every report due today (also the `reports` job)."""
    day = _date(as_of, "as_of")
    now = datetime(day.year, day.month, day.day, 4) if day else None  # 04:00 UTC = noon in Shanghai
    emit(service.run_scheduled(now), fmt)


@app.command("runs")
def runs_cmd(fmt: Format = FMT) -> None:
    """Deliveries, newest first."""
    with session_scope() as s:
        emit(service.list_runs(s), fmt)
