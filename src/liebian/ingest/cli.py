"""`liebian import events|orders|identities|messages FILE --preset NAME`, and
`liebian import campaigns FILE` (titles of imported campaigns)."""

from __future__ import annotations

from pathlib import Path

import typer

from liebian.db import migrate
from liebian.ingest import campaigns
from liebian.ingest.files import FileImportError
from liebian.ingest.presets import PresetError
from liebian.ingest.service import import_file
from liebian.output import Format, emit, err_console

app = typer.Typer(no_args_is_help=True)


def _run(kind: str, path: Path, preset: str, fmt: Format, progress: bool) -> None:

    migrate.upgrade()
    try:
        result = import_file(path, kind, preset, progress=progress)
    except (FileImportError, PresetError) as exc:
        err_console.print(f"[red]cannot import:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    summary = {
        "batch_id": result.batch_id,
        "kind": result.kind,
        "preset": result.preset,
        "format": result.format,
        "encoding": result.encoding,
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_duplicate": result.rows_duplicate,
        "rows_rejected": result.rows_rejected,
        "rows_updated": result.rows_updated,
        "rejects_path": result.rejects_path,
        "seconds": result.seconds,
        "rows_per_second": result.rows_per_second,
    }
    if fmt is Format.json:
        emit({**summary, "reasons": result.reasons, "details": result.details}, fmt)
        return
    emit(summary, fmt, title=f"import {kind}: {path.name}")
    if result.reasons and fmt is Format.table:
        emit(
            [{"reason": k, "rows": v} for k, v in sorted(result.reasons.items(), key=lambda kv: -kv[1])],
            fmt,
            title="rejected rows by reason",
        )


PRESET_HELP = "Column preset: generic, wecom_contacts, miniprogram_orders, douyin_orders."


def _command(kind: str):
    def command(
        file: Path = typer.Argument(..., help="CSV, XLSX, JSONL or Parquet file."),
        preset: str = typer.Option("generic", "--preset", "-p", help=PRESET_HELP),
        fmt: Format = typer.Option(Format.table, "--format", "-f", help="Summary as table, json or csv."),
        progress: bool = typer.Option(True, "--progress/--no-progress", help="Show a progress bar."),
    ) -> None:
        _run(kind, file, preset, fmt, progress)

    command.__doc__ = (
        f"Import {kind} from a file; rejected rows go to a rejects file with line, field and reason."
    )
    return command


for _kind in ("events", "orders", "identities", "messages"):
    app.command(_kind)(_command(_kind))


@app.command("campaigns")
def campaigns_command(
    file: Path = typer.Argument(..., exists=True, dir_okay=False, help="CSV: campaign_id,title (UTF-8)."),
    fmt: Format = typer.Option(Format.table, "--format", "-f", help="Summary as table, json or csv."),
) -> None:
    """Import the titles of imported campaigns (CSV campaign_id,title); a bad row is named by line."""
    migrate.upgrade()
    try:
        result = campaigns.import_campaigns(file)
    except (OSError, ValueError) as exc:
        err_console.print(f"[red]cannot import:[/red] {exc}")
        raise typer.Exit(code=2) from exc
    rejects = [{"line": line, "field": name, "reason": reason} for line, name, reason in result.rejects]
    summary = {
        "rows_read": result.rows_read,
        "rows_loaded": result.rows_loaded,
        "rows_rejected": len(rejects),
    }
    if fmt is Format.json:
        emit({**summary, "rejects": rejects}, fmt)
        return
    emit(summary, fmt, title=f"import campaigns: {file.name}")
    if rejects:
        emit(rejects, fmt, title="rejected rows")
