"""Print results as a Rich table, JSON or CSV — every CLI command that outputs data uses this."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from rich.console import Console

from liebian.cells import safe_record
from liebian.lazy import lazy_import
from liebian.schemas import parse_edge_datetime

if TYPE_CHECKING:
    import typer
    from rich import table as rich_table
else:  # deferred for start-up time (liebian/lazy.py): the server imports this module for its
    # consoles through the domains, and only a command's options and tables need Typer and Rich tables
    typer = lazy_import("typer")
    rich_table = lazy_import("rich.table")

console = Console()
# Errors are not wrapped at the terminal's width: a message names a file and a line
# ("…/units.csv: line 4002: …"), and a break inside it would cut the path from its line number.
err_console = Console(stderr=True, soft_wrap=True)


class Format(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def edge_time(text: str) -> datetime:
    """The `parser` of a CLI option that takes a time: `Z`, an offset (`+08:00`) or naive in the
    configured display zone (a date alone: its midnight there), as naive UTC."""
    try:
        return parse_edge_datetime(text)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def _plain(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def emit(
    rows: Sequence[Mapping[str, Any]] | Mapping[str, Any], fmt: Format = Format.table, title: str = ""
) -> None:
    """Rows (a list of dicts) or one record (a dict, shown as field/value pairs)."""
    if isinstance(rows, Mapping):
        if fmt is Format.json:
            sys.stdout.write(
                json.dumps({k: _plain(v) for k, v in rows.items()}, ensure_ascii=False, default=str) + "\n"
            )
            return
        rows = [{"field": k, "value": v} for k, v in rows.items()]
    rows = [{k: _plain(v) for k, v in r.items()} for r in rows]
    if fmt is Format.json:
        sys.stdout.write(json.dumps(rows, ensure_ascii=False, default=str) + "\n")
    elif fmt is Format.csv:
        buffer = io.StringIO()
        columns = list(rows[0].keys()) if rows else []
        writer = csv.DictWriter(buffer, fieldnames=columns)
        writer.writeheader()
        writer.writerows(safe_record(r) for r in rows)
        sys.stdout.write(buffer.getvalue())
    else:
        table = rich_table.Table(title=title or None)
        columns = list(rows[0].keys()) if rows else []
        for column in columns:
            table.add_column(str(column))
        for row in rows:
            table.add_row(*("" if row.get(c) is None else str(row.get(c)) for c in columns))
        console.print(table)
