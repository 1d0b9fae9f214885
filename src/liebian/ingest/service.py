"""Ingestion: files and collector batches -> normalised, deduplicated, identity-resolved warehouse rows.

The bulk path stays inside DuckDB: map the export's columns onto the generic format, normalise
and validate with SQL (`normalize.py`), deduplicate by id within the batch and against the
warehouse (anti-joins), register the distinct identifiers with OneID in one call, and load in one
DuckDB transaction. Python touches rows only where it must: the HMAC of each distinct phone.

Exactly once: everything before the load transaction is either idempotent (identity
registration, the identity_map sync) or temporary; the load itself is one transaction. An import
killed at any point and re-run therefore ends with every row exactly once.
"""

from __future__ import annotations

import csv
import threading
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liebian.cells import safe_row
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.engine import warehouse
from liebian.errors import DomainError
from liebian.ingest.files import FileImportError, FileTooLarge, check_archive, read_into, records_into
from liebian.ingest.normalize import KINDS
from liebian.ingest.pipeline import drop_temp, known_keys, normaliser, run_pipeline
from liebian.ingest.presets import GENERIC_COLUMNS, PresetError, get_preset
from liebian.ingest.steps import ProgressHook, Steps
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

__all__ = [
    "IMPORT_SLOTS",
    "FileImportError",
    "FileTooLarge",
    "TooManyImports",
    "check_archive",
    "ImportResult",
    "ItemResult",
    "PresetError",
    "WRITE_LOCK",
    "import_file",
    "ingest_items",
]

# One writer per process at a time: DuckDB allows one writing connection per file, and the
# collector's threads must not interleave their anti-join and insert.
WRITE_LOCK = warehouse.WRITE_LOCK  # one lock for every warehouse writer of the process
CONFLICT_RETRIES = 5


@dataclass
class ImportResult:
    batch_id: str
    kind: str
    source: str
    preset: str
    format: str
    encoding: str | None
    rows_read: int
    rows_loaded: int
    rows_duplicate: int
    rows_rejected: int
    rows_updated: int = 0  # orders whose status a later row changed (counted in rows_loaded)
    rejects_path: str | None = None
    seconds: float = 0.0
    rows_per_second: float = 0.0
    reasons: dict[str, int] = field(default_factory=dict)
    details: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # seconds per pipeline step

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ItemResult:
    index: int
    status: str  # accepted | duplicate | rejected
    errors: list[dict[str, str]] = field(default_factory=list)


def new_batch_id(kind: str) -> str:
    return f"{kind}-{utcnow():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


class TooManyImports(DomainError):
    """Every import slot of this process is taken (setting `max_concurrent_imports`): 429."""

    default_status = 429


class ImportSlots:
    """A bound on the uploads imported at once by one process: a slot is taken when an upload is
    accepted and given back when its import ends; with none free the upload is refused, not queued
    (queued uploads would hold their files and threads while waiting)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.taken = 0

    def take(self) -> None:
        limit = get_settings().max_concurrent_imports
        with self._lock:
            if self.taken >= limit:
                raise TooManyImports(
                    "too_many_imports", f"{limit} imports are running in this process; retry when one ends"
                )
            self.taken += 1

    def give_back(self) -> None:
        with self._lock:
            self.taken = max(0, self.taken - 1)


IMPORT_SLOTS = ImportSlots()


# ---------------------------------------------------------------- public entry points


def import_file(
    path: str | Path,
    kind: str,
    preset: str = "generic",
    *,
    progress: bool = False,
    rejects_dir: str | Path | None = None,
    on_progress: ProgressHook | None = None,
) -> ImportResult:
    """Import one export file; see docs/formats.md for the columns each kind and preset expects.

    Raises FileImportError (or PresetError) only when the file cannot be read at all; bad rows
    are rejected with line, field and reason and the good rows are loaded. `on_progress(step,
    fraction)` is called as the import moves through its steps (and within a step, from DuckDB's
    query progress, about five times a second), then with ("done", 1.0).
    """
    if kind not in KINDS:
        raise FileImportError(f"unknown kind {kind!r}; expected one of {', '.join(KINDS)}")
    preset_obj = get_preset(preset, kind)
    path = Path(path)
    settings = get_settings()
    started = time.perf_counter()
    batch_id = new_batch_id(kind)
    source = f"file:{path.name}"
    workdir = settings.data_dir / "tmp"
    workdir.mkdir(parents=True, exist_ok=True)
    with WRITE_LOCK, warehouse.connect() as con:
        steps = Steps(con, progress, 6, f"import {kind} {path.name}", on_progress)
        ok = False
        # Bounded memory whatever the file's size: DuckDB spills the batch's temporary tables.
        con.execute(f"SET memory_limit = '{settings.import_memory_mb}MB'")
        try:
            with (
                steps.step("reading"),
                read_into(
                    con, path, workdir, normaliser(kind, preset_obj), known_keys(con, kind, preset_obj)
                ) as raw_file,
            ):
                pass
            result = run_pipeline(con, kind, preset_obj, raw_file, source, batch_id, steps)
            ok = True
        finally:
            steps.close(ok)
            con.execute("RESET memory_limit")
        drop_temp(con)
    rejects_path = None
    if result.rejects:
        target = Path(rejects_dir) if rejects_dir else settings.data_dir / "rejects"
        target.mkdir(parents=True, exist_ok=True)
        rejects_path = target / f"{batch_id}_{path.stem}.csv"
        _write_rejects_csv(result.rejects, rejects_path)
    seconds = time.perf_counter() - started
    return ImportResult(
        batch_id=batch_id,
        kind=kind,
        source=source,
        preset=preset_obj.name,
        format=raw_file.format,
        encoding=raw_file.encoding,
        rows_read=raw_file.rows_read,
        rows_loaded=result.loaded,
        rows_duplicate=result.duplicate,
        rows_rejected=result.rejected_rows,
        rows_updated=result.updated,
        rejects_path=str(rejects_path) if rejects_path else None,
        seconds=round(seconds, 3),
        rows_per_second=round(raw_file.rows_read / seconds, 1) if seconds > 0 else 0.0,
        reasons=result.reasons,
        details=result.details,
        timings=steps.timings,
    )


def ingest_items(kind: str, items: list[Any], source: str = "api") -> tuple[ImportResult, list[ItemResult]]:
    """The HTTP collector's path: the same pipeline over a batch of JSON objects.

    Accepted items are committed to the warehouse before this returns.
    """
    started = time.perf_counter()
    batch_id = new_batch_id(kind)
    preset_obj = get_preset("generic", kind)
    # A column no item carries is a per-item error ("missing"), not a whole-batch failure: give
    # the batch the column so that each item is judged on its own.
    present = {key for item in items if isinstance(item, dict) for key in item}
    absent = [col for col in GENERIC_COLUMNS[kind][0] if col not in present]
    if kind == "orders" and not present & {"amount", "amount_fen"}:
        absent.append("amount")
    if absent:
        items = [dict(item, **dict.fromkeys(absent)) if isinstance(item, dict) else item for item in items]
    for attempt in range(CONFLICT_RETRIES):
        try:
            with WRITE_LOCK, warehouse.connect() as con:
                raw_file = records_into(con, items)
                steps = Steps(con, False, 0, "")
                result = run_pipeline(
                    con, kind, preset_obj, raw_file, source, batch_id, steps, want_lines=True
                )
                drop_temp(con)
            break
        except duckdb.TransactionException:
            # Another thread of this process (a scheduled job) wrote the same table at the same
            # moment; the pipeline is idempotent, so running it again is safe.
            if attempt == CONFLICT_RETRIES - 1:
                raise
            time.sleep(0.05 * (attempt + 1))
    errors: dict[int, list[dict[str, str]]] = {}
    for line, fld, reason, _raw in result.rejects:
        errors.setdefault(line, []).append({"field": fld, "reason": reason})
    outcomes = []
    for index in range(len(items)):
        if index in errors:
            outcomes.append(ItemResult(index, "rejected", errors[index]))
        elif index in result.loaded_lines:
            outcomes.append(ItemResult(index, "accepted"))
        else:
            outcomes.append(ItemResult(index, "duplicate"))
    seconds = time.perf_counter() - started
    summary = ImportResult(
        batch_id=batch_id,
        kind=kind,
        source=source,
        preset="generic",
        format="json",
        encoding=None,
        rows_read=len(items),
        rows_loaded=result.loaded,
        rows_duplicate=result.duplicate,
        rows_rejected=result.rejected_rows,
        rows_updated=result.updated,
        seconds=round(seconds, 3),
        rows_per_second=round(len(items) / seconds, 1) if seconds > 0 else 0.0,
        reasons=result.reasons,
    )
    return summary, outcomes


# ---------------------------------------------------------------- batch records

BATCH_COLUMNS = ("batch_id", "kind", "source", "rows_read", "rows_loaded", "rows_duplicate", "rows_rejected",
                 "finished_at")  # fmt: skip


def list_batches(
    con: duckdb.DuckDBPyConnection, *, limit: int = 20, files_only: bool = True
) -> list[dict[str, Any]]:
    """The latest import batches (`import_batches`), newest first. Files only by default: the
    collector records one batch per HTTP call."""
    where = "WHERE source LIKE 'file:%'" if files_only else ""
    rows = con.execute(
        f"SELECT {', '.join(BATCH_COLUMNS)} FROM import_batches {where} ORDER BY finished_at DESC, batch_id LIMIT ?",
        [int(limit)],
    ).fetchall()
    return [dict(zip(BATCH_COLUMNS, r, strict=True)) for r in rows]


def get_batch(
    con: duckdb.DuckDBPyConnection, batch_id: str, *, rejects_limit: int = 200
) -> dict[str, Any] | None:
    """One batch's record, with its rejected lines (line, field, reason — the raw row stays in the
    rejects file) up to `rejects_limit`; None when there is no such batch."""
    row = con.execute(
        f"SELECT {', '.join(BATCH_COLUMNS)} FROM import_batches WHERE batch_id = ?", [batch_id]
    ).fetchone()
    if row is None:
        return None
    rejects = con.execute(
        "SELECT line, field, reason FROM rejects WHERE batch_id = ? ORDER BY line, field LIMIT ?",
        [batch_id, int(rejects_limit)],
    ).fetchall()
    return dict(zip(BATCH_COLUMNS, row, strict=True)) | {
        "rejects": [{"line": line, "field": fld, "reason": reason} for line, fld, reason in rejects]
    }


def _write_rejects_csv(rejects: list[tuple[int, str, str, str]], path: Path) -> None:

    # UTF-8 with BOM: the rejects file is opened in Excel by the people who fix the rows.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "field", "reason", "raw"])
        writer.writerows(safe_row(r) for r in rejects)
