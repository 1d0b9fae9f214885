"""Spreadsheet cells that stay data: every CSV and XLSX export writes its cells through `safe_cell`.

A text cell beginning with `=`, `+`, `-`, `@`, a tab or a carriage return is read by Excel,
WPS and LibreOffice as a formula (`=HYPERLINK(...)`, `=cmd|...`), and openpyxl writes such a
string as a formula cell. Prefixing a single quote keeps it text in both formats (OWASP's
CSV-injection advice). Numbers, and text that is only a number (`-12.50`, `+8613800000000`),
stay as they are.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"[+-]?\d+(\.\d+)?")


def safe_cell(value: Any) -> Any:
    """`value`, with a leading `'` when it is text a spreadsheet would run as a formula."""
    if isinstance(value, str) and value.startswith(FORMULA_START) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_row(row: Iterable[Any]) -> list[Any]:
    return [safe_cell(v) for v in row]


def safe_record(record: Mapping[str, Any]) -> dict[str, Any]:
    return {k: safe_cell(v) for k, v in record.items()}
