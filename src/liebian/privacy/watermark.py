"""Export watermarks: every file that leaves liebian (console CSV/XLSX tables, HTML and XLSX
reports, the payout file, a data-subject export) says who exported it, when and with which filter,
and carries an invisible mark tied to the audit entry of that export; `liebian privacy trace FILE`
names the export a file, or an excerpt of it, came from.

The mark is an 8-byte token: 6 random bytes and a 2-byte keyed check (HMAC under a key derived from
the installation's identifier key), so a string that merely looks like a mark is not taken for one.
`issue` writes the audit entry (action `export`, the token, the filter, the row count) and returns
the mark. Where it goes:

- every row of a table: the token as 32 zero-width characters (U+200B, U+200C, U+200D, U+2060: two
  bits each) in an extra last cell that looks empty, so any excerpt of whole rows, saved as a file,
  pasted into a sheet or as text, still carries it, while the data cells keep their exact values;
- XLSX: that last column hidden on every sheet, holding `lbwm:<token>` and the zero-width form,
  and the custom document property `liebian_export`;
- HTML: a comment and a hidden element with the token;
- every format: a visible footer line (who, when in the display zone, what, the filter with any
  identifier dropped, the reference) — never a person's data.
"""

from __future__ import annotations

import csv
import hashlib
import hmac
import io
import re
import secrets
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from html import escape
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.auth.models import AuditEntry
from liebian.auth.service import audit
from liebian.cells import safe_row
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.lazy import lazy_import
from liebian.privacy import pii
from liebian.privacy.crypto import keys

if TYPE_CHECKING:
    import openpyxl
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    openpyxl = lazy_import("openpyxl")

ACTION = "export"
ALPHABET = "\u200b\u200c\u200d\u2060"  # zero-width space, non-joiner, joiner, word joiner
TOKEN_BYTES, CHECK_BYTES = 6, 2
MARK_LENGTH = (TOKEN_BYTES + CHECK_BYTES) * 4  # characters: two bits each
REF_PREFIX = "lbwm:"
FOOTER_START = "# liebian export"  # the first cell of a footer row (readers of exports skip it)
DOC_PROPERTY = "liebian_export"
_PURPOSE = b"liebian/export-watermark/v1"
_RUNS = re.compile(f"[{ALPHABET}]+")
_REFS = re.compile(REF_PREFIX + r"([0-9a-f]{16})")


def _check(body: bytes) -> bytes:
    key = hmac.new(keys().hmac_key, _PURPOSE, hashlib.sha256).digest()
    return hmac.new(key, body, hashlib.sha256).digest()[:CHECK_BYTES]


def valid_token(token: str) -> bool:
    """A 16-hex-digit token whose last two bytes are the keyed check of the first six."""
    try:
        raw = bytes.fromhex(token)
    except ValueError:
        return False
    return len(raw) == TOKEN_BYTES + CHECK_BYTES and hmac.compare_digest(
        raw[TOKEN_BYTES:], _check(raw[:TOKEN_BYTES])
    )


def invisible(token: str) -> str:
    """The token as zero-width characters (most significant bits first)."""
    return "".join(ALPHABET[(byte >> shift) & 3] for byte in bytes.fromhex(token) for shift in (6, 4, 2, 0))


def _decode(run: str) -> str:
    out = bytearray()
    for i in range(0, len(run), 4):
        byte = 0
        for ch in run[i : i + 4]:
            byte = (byte << 2) | ALPHABET.index(ch)
        out.append(byte)
    return out.hex()


@dataclass(frozen=True)
class ExportMark:
    token: str
    actor: str
    at: datetime  # naive UTC
    what: str
    filter: str
    audit_seq: int

    @property
    def ref(self) -> str:
        return REF_PREFIX + self.token

    @property
    def invisible(self) -> str:
        return invisible(self.token)

    def footer(self) -> str:
        """The visible line: who, when (display zone), what, the filter; no person's data."""
        zone = get_settings().timezone
        local = self.at.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M")
        return (
            f"{FOOTER_START} 导出 · by 导出人 {self.actor} · at 时间 {local} ({zone}) · "
            f"what 内容 {self.what} · filter 筛选 {self.filter or '—'} · ref 编号 {self.ref}"
        )


def issue(
    session: Session, *, actor: str, what: str, filter_text: str = "", rows: int = 0, ip: str = ""
) -> ExportMark:
    """A new mark for one export, written to the audit log in the caller's transaction."""
    body = secrets.token_bytes(TOKEN_BYTES)
    token = (body + _check(body)).hex()
    shown_filter = (pii.scrub(filter_text, "drop") or "")[:500]
    entry = audit(
        session, actor, ACTION, what, {"watermark": token, "filter": shown_filter, "rows": rows}, ip
    )
    return ExportMark(token, entry["actor"], entry["ts"], entry["target"], shown_filter, entry["seq"])


def issue_now(*, actor: str, what: str, filter_text: str = "", rows: int = 0, ip: str = "") -> ExportMark:
    """`issue` in its own transaction (export sites that hold no session)."""
    with session_scope() as s:
        return issue(s, actor=actor, what=what, filter_text=filter_text, rows=rows, ip=ip)


# --- rows (CSV, XLSX) ------------------------------------------------------------------------------


def mark_row(row: Sequence[Any], mark: ExportMark) -> list[Any]:
    """The row with the invisible mark in an extra last cell: the data cells keep their exact
    values (a lookup or a copied id still matches), the cell looks empty."""
    return [*row, mark.invisible]


def csv_bytes(header: Sequence[Any], rows: Iterable[Sequence[Any]], mark: ExportMark) -> bytes:
    """A CSV export (UTF-8 with BOM, which Excel opens correctly): the header, every row with the
    mark in a last, blank-looking column, and the footer line."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow([*safe_row(header), ""])
    writer.writerows(mark_row(safe_row(r), mark) for r in rows)
    writer.writerow([mark.footer() + mark.invisible])
    return ("\ufeff" + buf.getvalue()).encode("utf-8")


def is_footer(row: Sequence[Any]) -> bool:
    """Whether a row read back from an export is its watermark footer (readers skip it)."""
    return bool(row) and isinstance(row[0], str) and row[0].startswith(FOOTER_START)


def xlsx_bytes(title: str, header: Sequence[Any], rows: Iterable[Sequence[Any]], mark: ExportMark) -> bytes:
    """A one-sheet XLSX export written in one pass (openpyxl's write-only mode: large tables stay
    fast): the header, the rows through cells.safe_row with the mark in a hidden last column, the
    footer row, the document property."""
    # deferred: openpyxl is heavy and only XLSX exports need it (start-up time)
    from openpyxl.packaging.custom import StringProperty
    from openpyxl.utils import get_column_letter

    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet(title[:31])
    ws.column_dimensions[get_column_letter(len(header) + 1)].hidden = True  # before the first row
    cell = mark.ref + mark.invisible
    ws.append([*safe_row(header), cell])
    for row in rows:
        ws.append([*safe_row(row), cell])
    ws.append([mark.footer()])
    _doc_props(wb).append(StringProperty(name=DOC_PROPERTY, value=mark.ref))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def _doc_props(wb: Any) -> Any:
    """A workbook's custom document properties (openpyxl 3.1 has them; its type stubs do not)."""
    return wb.custom_doc_props


def mark_xlsx(data: bytes, mark: ExportMark) -> bytes:
    """An XLSX workbook of several sheets (the reports) marked after it was written: on every sheet a hidden last column carries the mark on every row,
    a footer row ends the sheet, and the custom document property names the mark."""
    # deferred: openpyxl is heavy and only XLSX exports need it (start-up time)
    from openpyxl.packaging.custom import StringProperty
    from openpyxl.utils import get_column_letter

    wb = openpyxl.load_workbook(io.BytesIO(data))
    for ws in wb.worksheets:
        column = ws.max_column + 1
        for row in range(1, ws.max_row + 1):
            ws.cell(row=row, column=column, value=mark.ref + mark.invisible)
        ws.append([mark.footer()])
        ws.column_dimensions[get_column_letter(column)].hidden = True
    _doc_props(wb).append(StringProperty(name=DOC_PROPERTY, value=mark.ref))
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


# --- documents (HTML, JSON) ------------------------------------------------------------------------


def mark_html(document: str, mark: ExportMark) -> str:
    """An HTML document with the visible footer, a comment and a hidden element carrying the mark.
    The footer is the same bilingual trace line in every export and language (translate="no")."""
    block = (
        f"<!-- {mark.ref} -->\n"
        f'<footer class="liebian-export" translate="no" style="margin-top:2em;font-size:smaller;color:#666">'
        f'{escape(mark.footer())}<span hidden data-lbwm="{mark.token}">{mark.invisible}</span></footer>\n'
    )
    at = document.lower().rfind("</body>")
    return document[:at] + block + document[at:] if at >= 0 else document + block


def mark_document(document: dict[str, Any], mark: ExportMark) -> dict[str, Any]:
    """A JSON export with its footer and reference (the data itself is left as it is)."""
    return {**document, "export_watermark": {"footer": mark.footer() + mark.invisible, "ref": mark.ref}}


# --- tracing ---------------------------------------------------------------------------------------


def _texts_of(data: bytes) -> list[str]:
    """The text a file holds: every cell and the document properties of an XLSX, else the text."""
    if data[:2] == b"PK":
        wb = openpyxl.load_workbook(io.BytesIO(data))
        texts = [p.value for p in _doc_props(wb) if isinstance(getattr(p, "value", None), str)]
        for ws in wb.worksheets:
            texts.extend(str(v) for row in ws.iter_rows(values_only=True) for v in row if v is not None)
        return texts
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return data.decode(encoding).splitlines()
        except UnicodeDecodeError:
            continue
    return data.decode("utf-8", "replace").splitlines()


def tokens_in(texts: Iterable[str]) -> Counter[str]:
    """Valid marks found, with how many places (rows, cells) carry each."""
    found: Counter[str] = Counter()
    for text in texts:
        seen: set[str] = set()
        for run in _RUNS.findall(text):
            for i in range(0, len(run) - MARK_LENGTH + 1, MARK_LENGTH):
                seen.add(_decode(run[i : i + MARK_LENGTH]))
        seen.update(_REFS.findall(text))
        found.update(t for t in seen if valid_token(t))
    return found


def trace(session: Session, data: bytes) -> dict[str, Any]:
    """The exports a file (or a pasted excerpt) came from, by the marks it carries."""
    found = tokens_in(_texts_of(data))
    exports = []
    for token, places in found.most_common():
        entry = session.scalar(
            select(AuditEntry)
            .where(AuditEntry.action == ACTION, AuditEntry.detail.like(f'%"watermark": "{token}"%'))
            .limit(1)
        )
        exports.append(
            {
                "ref": REF_PREFIX + token,
                "places": places,
                "audit_seq": entry.seq if entry else None,
                "exported_by": entry.actor if entry else None,
                "exported_at": entry.ts if entry else None,
                "what": entry.target if entry else None,
                "detail": entry.detail if entry else None,
            }
        )
    known = [e for e in exports if e["audit_seq"] is not None]
    verdict = (
        "identified" if len(known) == 1 else "ambiguous" if known else "unknown" if exports else "no_mark"
    )
    return {"verdict": verdict, "exports": exports}
