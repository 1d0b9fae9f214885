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

import contextlib
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.identity import bulk
from liebian.identity import service as identity
from liebian.identity.keys import DIRECT_TYPES, stored_value
from liebian.ingest.files import FileImportError, RawFile, read_into, records_into
from liebian.ingest.normalize import DIRECT_TYPES_SQL, ID_COLUMN, KINDS, normalize_query
from liebian.ingest.presets import GENERIC_COLUMNS, Preset, PresetError, get_preset, mapping_sql
from liebian.lazy import lazy_import

# deferred for start-up time: DuckDB and PyArrow imported on first use (liebian/lazy.py)
duckdb = lazy_import("duckdb")
pa = lazy_import("pyarrow")

__all__ = [
    "FileImportError",
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
STATUS_RANK = "CASE status WHEN 'paid' THEN 0 ELSE 1 END"


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

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class ItemResult:
    index: int
    status: str  # accepted | duplicate | rejected
    errors: list[dict[str, str]] = field(default_factory=list)


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def new_batch_id(kind: str) -> str:
    return f"{kind}-{_now():%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}"


# ---------------------------------------------------------------- progress


# on_progress(step name, fraction of the whole import done): the console's import page hears it
ProgressHook = Callable[[str, float], None]


class _Steps:
    """A Rich progress bar over the pipeline's steps, filled inside a step from DuckDB's progress;
    `on_progress` hears the same progress (the console shows it while the import runs)."""

    def __init__(
        self,
        con: duckdb.DuckDBPyConnection,
        enabled: bool,
        total: int,
        label: str,
        on_progress: ProgressHook | None = None,
    ):
        self.con, self.enabled, self.total, self.label = con, enabled, total, label
        self.on_progress = on_progress
        self.done = 0
        self.timings: dict[str, float] = {}
        self.progress = None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

            from liebian.output import err_console

            self.progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.percentage:>3.0f}%"),
                TimeElapsedColumn(),
                console=err_console,
                transient=False,
            )
            con.execute("SET enable_progress_bar = true")
            con.execute("SET enable_progress_bar_print = false")
            self.progress.start()
            self.task = self.progress.add_task(label, total=total)
        elif on_progress is not None:
            con.execute("SET enable_progress_bar = true")
            con.execute("SET enable_progress_bar_print = false")

    def close(self, ok: bool = True) -> None:
        if self.progress is not None:
            if ok:
                self.progress.update(self.task, completed=self.total, description=f"{self.label}: done")
            else:
                self.progress.update(self.task, description=f"{self.label}: failed")
            self.progress.stop()
        if ok and self.on_progress is not None:
            self.on_progress("done", 1.0)

    @contextlib.contextmanager
    def step(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            if self.progress is None and self.on_progress is None:
                yield
            else:
                with self._shown(name):
                    yield
        finally:
            self.timings[name] = round(self.timings.get(name, 0.0) + time.perf_counter() - started, 3)

    def _show(self, name: str, completed: float, describe: bool = False) -> None:
        if self.progress is not None:
            if describe:
                self.progress.update(self.task, description=f"{self.label}: {name}", completed=completed)
            else:
                self.progress.update(self.task, completed=completed)
        if self.on_progress is not None and self.total:
            self.on_progress(name, min(completed / self.total, 1.0))

    @contextlib.contextmanager
    def _shown(self, name: str) -> Iterator[None]:
        self._show(name, self.done, describe=True)
        stop = threading.Event()

        def poll() -> None:
            while not stop.wait(0.2):
                with contextlib.suppress(Exception):
                    pct = self.con.query_progress()
                    if pct is not None and pct >= 0:
                        self._show(name, self.done + min(pct, 100) / 100)

        thread = threading.Thread(target=poll, daemon=True)
        thread.start()
        try:
            yield
        finally:
            stop.set()
            thread.join()
            self.done += 1
            self._show(name, self.done)


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
        steps = _Steps(con, progress, 6, f"import {kind} {path.name}", on_progress)
        ok = False
        # Bounded memory whatever the file's size: DuckDB spills the batch's temporary tables.
        con.execute(f"SET memory_limit = '{settings.import_memory_mb}MB'")
        try:
            with (
                steps.step("reading"),
                read_into(con, path, workdir, _normaliser(kind, preset_obj)) as raw_file,
            ):
                pass
            result = _pipeline(con, kind, preset_obj, raw_file, source, batch_id, steps)
            ok = True
        finally:
            steps.close(ok)
            con.execute("RESET memory_limit")
        _drop_temp(con)
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


def ingest_items(kind: str, items: list, source: str = "api") -> tuple[ImportResult, list[ItemResult]]:
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
                steps = _Steps(con, False, 0, "")
                result = _pipeline(con, kind, preset_obj, raw_file, source, batch_id, steps, want_lines=True)
                _drop_temp(con)
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


def list_batches(con: duckdb.DuckDBPyConnection, *, limit: int = 20, files_only: bool = True) -> list[dict]:
    """The latest import batches (`import_batches`), newest first. Files only by default: the
    collector records one batch per HTTP call."""
    where = "WHERE source LIKE 'file:%'" if files_only else ""
    rows = con.execute(
        f"SELECT {', '.join(BATCH_COLUMNS)} FROM import_batches {where} ORDER BY finished_at DESC, batch_id LIMIT ?",
        [int(limit)],
    ).fetchall()
    return [dict(zip(BATCH_COLUMNS, r, strict=True)) for r in rows]


def get_batch(con: duckdb.DuckDBPyConnection, batch_id: str, *, rejects_limit: int = 200) -> dict | None:
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


# ---------------------------------------------------------------- the pipeline


@dataclass
class _Outcome:
    loaded: int
    duplicate: int
    rejected_rows: int
    updated: int
    reasons: dict[str, int]
    rejects: list[tuple[int, str, str, str]]
    loaded_lines: set[int]
    details: dict[str, int] = field(default_factory=dict)


TEMP_OBJECTS = (  # views before the tables they read
    "mapped",
    "keyed",
    "raw",
    "to_load",
    "raw0",
    "line_shifts",
    "staged",
    "batch_rejects",
    "hashed",
    "drop_lines",
    "loaded_lines",
    "order_groups",
)


def _drop_temp(con: duckdb.DuckDBPyConnection, names: Sequence[str] = TEMP_OBJECTS) -> None:
    """Drop those of `names` that exist as temp tables or views."""
    kinds = dict(
        con.execute(
            "SELECT table_name, table_type FROM information_schema.tables WHERE table_catalog = 'temp'"
        ).fetchall()
    )
    for name in names:
        if name in kinds:
            con.execute(f"DROP {'VIEW' if kinds[name] == 'VIEW' else 'TABLE'} {name}")


def _normaliser(kind: str, preset: Preset) -> Callable[[list[str]], str]:
    """The reader's transform: map the file's columns and normalise them while reading (CSV)."""

    def transform(headers: list[str]) -> str:
        mapping = mapping_sql(preset, kind, headers, keep_raw=True)
        return normalize_query(kind, f"({mapping.sql})", raw_row=True).sql

    return transform


def _drop_staged(con: duckdb.DuckDBPyConnection) -> None:
    """Free the normalised rows (a table, or a view over the reader's table)."""
    _drop_temp(con, ("staged", "raw", "raw0"))


def _pipeline(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    preset: Preset,
    raw_file: RawFile,
    source: str,
    batch_id: str,
    steps: _Steps,
    want_lines: bool = False,
) -> _Outcome:
    # Row order matters only for reading (rowid = line); from here every row carries its _line.
    con.execute("SET preserve_insertion_order = false")
    with steps.step("normalising"):
        if raw_file.normalised:
            # The reader normalised the rows as it read them (CSV); raw numbers them.
            if raw_file.parse_rejects:  # the numbering runs a subquery per row: once, not per use
                con.execute("CREATE OR REPLACE TEMP TABLE staged AS SELECT * FROM raw")
                con.execute("DROP VIEW raw")
                con.execute("DROP TABLE raw0")
            else:
                con.execute("CREATE OR REPLACE TEMP VIEW staged AS SELECT * FROM raw")
        else:
            mapping = mapping_sql(preset, kind, raw_file.headers, keep_raw=True)
            con.execute(f"CREATE OR REPLACE TEMP VIEW mapped AS {mapping.sql}")
            query = normalize_query(kind, "mapped", raw_row=True)
            con.execute(f"CREATE OR REPLACE TEMP TABLE staged AS {query.sql}")
            con.execute("DROP VIEW mapped")
            con.execute("DROP VIEW raw")
            con.execute("DROP TABLE raw0")
        con.execute("DROP TABLE IF EXISTS line_shifts")
        _collect_rejects(con, raw_file)
    with steps.step("hashing identifiers"):
        _hash_direct_identifiers(con, kind)
    if kind == "identities":
        return _identities(con, source, batch_id, raw_file, steps)
    with steps.step("deduplicating"):
        if kind == "orders":
            _orders_candidates(con)
            _drop_staged(con)
        elif _candidates(con, kind):
            _drop_staged(con)  # else to_load is a view over it
    with steps.step("resolving identities"):
        registration = _register_identities(con, kind, source)
    try:
        with steps.step("loading"):
            outcome = _load(con, kind, source, batch_id, raw_file, want_lines, registration)
    finally:
        if registration is not None:
            registration.abandon()  # joined already unless the load failed
            steps.timings["registering identities (beside loading)"] = round(registration.seconds, 3)
    return outcome


def _collect_rejects(con: duckdb.DuckDBPyConnection, raw_file: RawFile) -> None:
    """batch_rejects: one row per problem of each bad row, with the row as JSON (`_raw`)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE batch_rejects (line BIGINT, field VARCHAR, reason VARCHAR, raw VARCHAR)"
    )
    con.execute(
        """
        INSERT INTO batch_rejects
        SELECT s._line, s.e.field, s.e.reason, s._raw
        FROM (SELECT _line, _raw, unnest(_errors) AS e FROM staged WHERE len(_errors) > 0) s
        """
    )
    if raw_file.parse_rejects:
        con.executemany("INSERT INTO batch_rejects VALUES (?, ?, ?, ?)", raw_file.parse_rejects)


def _hash_direct_identifiers(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """HMAC each distinct direct identifier (phones) once; other identifiers stay as given."""
    if kind == "identities":
        pairs = [("id_type_a", "raw_a"), ("id_type_b", "raw_b")]
    elif kind == "events":
        pairs = [("id_type", "user_raw"), ("referrer_id_type", "referrer_raw")]
    else:
        pairs = [("id_type", "user_raw")]
    union = " UNION ".join(
        f"SELECT DISTINCT {t} AS id_type, {v} AS raw FROM staged "
        f"WHERE len(_errors) = 0 AND list_contains({DIRECT_TYPES_SQL}, {t}) AND {v} IS NOT NULL"
        for t, v in pairs
    )
    rows = con.execute(union).fetchall()
    table = pa.table(
        {
            "id_type": pa.array([t for t, _ in rows], pa.string()),
            "raw": pa.array([r for _, r in rows], pa.string()),
            "id_value": pa.array([stored_value(t, r) for t, r in rows], pa.string()),
        }
    )
    con.register("hashed_arrow", table)
    con.execute("CREATE OR REPLACE TEMP TABLE hashed AS SELECT * FROM hashed_arrow")
    con.unregister("hashed_arrow")


def _keyed_select(con: duckdb.DuckDBPyConnection, kind: str) -> tuple[str, bool]:
    """Valid staged rows with identifiers in stored form (user_id, referrer_id), and whether that
    needs a join (direct identifiers were hashed)."""
    has_direct = con.execute("SELECT count(*) FROM hashed").fetchall()[0][0] > 0
    ref = kind == "events"
    if not has_direct:
        cols = "s.* EXCLUDE (_errors, _raw), s.user_raw AS user_id"
        if ref:
            cols += ", s.referrer_raw AS referrer_id"
        return f"SELECT {cols} FROM staged s WHERE len(s._errors) = 0", False
    cols = "s.* EXCLUDE (_errors, _raw), coalesce(h.id_value, s.user_raw) AS user_id"
    joins = "LEFT JOIN hashed h ON h.id_type = s.id_type AND h.raw = s.user_raw"
    if ref:
        cols += ", coalesce(hr.id_value, s.referrer_raw) AS referrer_id"
        joins += " LEFT JOIN hashed hr ON hr.id_type = s.referrer_id_type AND hr.raw = s.referrer_raw"
    return f"SELECT {cols} FROM staged s {joins} WHERE len(s._errors) = 0", True


def _candidates(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    """Events/messages to load (`to_load`): the first row per id in the batch, unknown to the
    warehouse. Returns whether to_load is a table of its own (else a view over staged).

    Exports seldom repeat an id and a first import finds none in the warehouse, so the rows to
    leave out are found first (a hash aggregate over the ids' 64-bit hashes, exact among the few
    repeated hashes, and a semi-join with the warehouse). When there are none and no phone's HMAC
    must be joined in, to_load is a view: no copy of the batch.
    """
    id_col = ID_COLUMN[kind]
    keyed, joined = _keyed_select(con, kind)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE drop_lines AS
        WITH valid AS (SELECT _line, {id_col} FROM staged WHERE len(_errors) = 0),
        repeated AS (SELECT hash({id_col}) AS h FROM valid GROUP BY h HAVING count(*) > 1)
        SELECT _line FROM (
            SELECT _line, row_number() OVER (PARTITION BY {id_col} ORDER BY _line) AS n
            FROM valid WHERE hash({id_col}) IN (SELECT h FROM repeated)
        ) WHERE n > 1
        UNION
        SELECT v._line FROM valid v SEMI JOIN {kind} w ON w.{id_col} = v.{id_col}
        """
    )
    dropped = con.execute("SELECT count(*) FROM drop_lines").fetchall()[0][0]
    if not dropped and not joined:
        con.execute(f"CREATE OR REPLACE TEMP VIEW to_load AS {keyed}")
        return False
    con.execute(f"CREATE OR REPLACE TEMP VIEW keyed AS {keyed}")
    con.execute(
        "CREATE OR REPLACE TEMP TABLE to_load AS SELECT k.* FROM keyed k ANTI JOIN drop_lines d ON d._line = k._line"
    )
    con.execute("DROP VIEW keyed")
    return True


def _orders_candidates(con: duckdb.DuckDBPyConnection) -> None:
    """Orders: one row per order_id; a later terminal status updates a known order."""
    con.execute(f"CREATE OR REPLACE TEMP TABLE to_load AS {_keyed_select(con, 'orders')[0]}")
    # Per order in the batch: its first row and its final state (terminal statuses outrank paid,
    # then the later time, then the later line).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE order_groups AS
        SELECT order_id,
               min(_line) AS first_line,
               arg_max({{'status': status, 'ts': ts, 'line': _line}},
                       {{'r': {STATUS_RANK}, 'ts': ts, 'line': _line}}) AS final
        FROM to_load GROUP BY order_id
        """
    )


def _register_identities(con: duckdb.DuckDBPyConnection, kind: str, source: str) -> bulk.Registration | None:
    """Found persons for identifiers never seen, then refresh the warehouse's identity_map.

    Many new identifiers are written to the store while the rows load (`bulk.Registration`): the
    load's transaction then adds them to identity_map and commits after the store has.
    """
    with session_scope() as session:
        identity.sync_warehouse(session, con)
    if kind == "orders":
        subject = "SELECT t.* FROM to_load t SEMI JOIN order_groups g ON g.first_line = t._line ANTI JOIN orders o ON o.order_id = t.order_id"
    else:
        subject = "SELECT * FROM to_load"
    parts = [f"SELECT DISTINCT id_type, user_id AS id_value FROM ({subject})"]
    if kind == "events":
        parts.append(
            "SELECT DISTINCT referrer_id_type, referrer_id FROM to_load WHERE referrer_id IS NOT NULL"
        )
    # The distinct identifiers the warehouse has not seen (raw kept for direct ones: their
    # ciphertext and masked display), registered set-based: ids and displays computed in DuckDB.
    return bulk.register_beside(
        con,
        f"""
        SELECT k.id_type, k.id_value, h.raw FROM ({" UNION ".join(parts)}) k
        ANTI JOIN identity_map m ON m.id_type = k.id_type AND m.id_value = k.id_value
        LEFT JOIN hashed h ON h.id_type = k.id_type AND h.id_value = k.id_value
        """,
        source=source[:64],
    )


def _load(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    source: str,
    batch_id: str,
    raw_file: RawFile,
    want_lines: bool,
    registration: bulk.Registration | None = None,
) -> _Outcome:
    now = _now()
    while True:
        con.execute("BEGIN TRANSACTION")
        in_transaction = True
        try:
            if registration is not None:
                registration.map_into(con)  # the identifiers the store is being given meanwhile
            if kind == "orders":
                loaded, updated = _load_orders(con, batch_id, now)
            else:
                loaded, updated = _load_rows(con, kind, batch_id, now, want_lines), 0
            rejects = con.execute(
                "SELECT line, field, reason, raw FROM batch_rejects ORDER BY line, field"
            ).fetchall()
            rejected_rows = len({line for line, *_ in rejects})
            valid = raw_file.rows_read - rejected_rows
            duplicate = valid - loaded
            con.execute(
                "INSERT INTO rejects SELECT ?, ?, ?, line, field, reason, raw, ? FROM batch_rejects",
                [batch_id, kind, source, now],
            )
            con.execute(
                "INSERT INTO import_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [batch_id, kind, source, raw_file.rows_read, loaded, duplicate, rejected_rows, now],
            )
            # Commit only what the store holds: wait for it (it had the whole load to finish).
            if registration is not None and not registration.stored():
                # An id was taken or an identifier registered meanwhile: undo, register by every
                # rule (the rows' person ids may differ), load again.
                con.execute("ROLLBACK")
                in_transaction = False
                registration.register_here(con)
                registration = None
                continue
            if registration is not None:
                registration.advance(con)
            con.execute("COMMIT")
        except BaseException:
            if registration is not None:
                registration.abandon()
            if in_transaction:
                con.execute("ROLLBACK")
            raise
        break
    try:
        with session_scope() as session:
            identity.sync_warehouse(session, con)  # replay merges other writers made meanwhile
    except duckdb.TransactionException:
        pass  # the rows are committed; the next import or sync replays the merges
    lines = {r[0] for r in con.execute("SELECT line FROM loaded_lines").fetchall()} if want_lines else set()
    reasons = Counter(reason_key(reason) for _line, _f, reason, _raw in rejects)
    return _Outcome(loaded, duplicate, rejected_rows, updated, dict(reasons), rejects, lines)


def reason_key(reason: str) -> str:
    """The histogram bucket of a reason: without the offending value it quotes."""
    for prefix in ("unreadable timestamp", "unknown channel", "unknown id_type", "unknown order status"):
        if reason.startswith(prefix):
            return prefix
    return reason.split(":")[0]


EVENT_INSERT = """
INSERT INTO events
SELECT t.event_id, t.ts, m.person_id, t.id_type, t.user_id, t.event, t.channel, t.campaign_id,
       t.invite_code, {referrer}, t.device_id, t.ip, t._props, t.received_at, $batch, $now
FROM to_load t
JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
{referrer_join}
"""
REFERRER_JOIN = "LEFT JOIN identity_map r ON r.id_type = t.referrer_id_type AND r.id_value = t.referrer_id"

EDGE_INSERT = """
INSERT INTO referral_edges
SELECT c.inviter, c.invitee, c.campaign_id, c.channel, c.ts, c.event_id FROM (
    SELECT r.person_id AS inviter, m.person_id AS invitee, t.campaign_id, t.channel, t.ts, t.event_id
    FROM to_load t
    JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
    JOIN identity_map r ON r.id_type = t.referrer_id_type AND r.id_value = t.referrer_id
    WHERE r.person_id <> m.person_id
    QUALIFY row_number() OVER (PARTITION BY m.person_id, t.campaign_id ORDER BY t.ts, t._line) = 1
) c
ANTI JOIN referral_edges e
    ON e.invitee_person_id = c.invitee AND e.campaign_id IS NOT DISTINCT FROM c.campaign_id
"""

MESSAGE_INSERT = """
INSERT INTO messages
SELECT t.message_id, t.ts, t.group_id, m.person_id, t.id_type, t.user_id, t.text, t.channel,
       t._props, $batch, $now
FROM to_load t
JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
"""


def _load_rows(
    con: duckdb.DuckDBPyConnection, kind: str, batch_id: str, now: datetime, want_lines: bool
) -> int:
    counts = "count(*), count(referrer_id)" if kind == "events" else "count(*), 0"
    expected, referred = con.execute(f"SELECT {counts} FROM to_load").fetchall()[0]
    if kind == "events":
        # Without referrers in the batch, skip probing identity_map a second time for every row.
        sql = EVENT_INSERT.format(
            referrer="r.person_id" if referred else "NULL",
            referrer_join=REFERRER_JOIN if referred else "",
        )
    else:
        sql = MESSAGE_INSERT
    inserted = con.execute(sql, {"batch": batch_id, "now": now}).fetchall()[0][0]
    if inserted != expected:  # never drop a row silently
        raise RuntimeError(f"{kind}: {expected - inserted} rows found no person in identity_map")
    if referred:
        con.execute(EDGE_INSERT)
    if want_lines:  # the collector answers per item
        con.execute("CREATE OR REPLACE TEMP TABLE loaded_lines AS SELECT _line AS line FROM to_load")
    return inserted


def _load_orders(con: duckdb.DuckDBPyConnection, batch_id: str, now: datetime) -> tuple[int, int]:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE order_plan AS
        SELECT g.*, o.status AS cur_status, o.status_ts AS cur_status_ts, f.status AS first_status,
               o.order_id IS NULL AS is_new
        FROM order_groups g
        JOIN to_load f ON f._line = g.first_line
        LEFT JOIN orders o ON o.order_id = g.order_id
        """
    )
    expected = con.execute("SELECT count(*) FROM order_plan WHERE is_new").fetchall()[0][0]
    inserted = con.execute(
        """
        INSERT INTO orders
        SELECT t.order_id, t.ts, m.person_id, t.id_type, t.user_id, t.amount_fen, t.currency,
               p.final.status, t.channel, t.campaign_id, p.final.ts, t._props, t.received_at, $batch, $now
        FROM order_plan p
        JOIN to_load t ON t._line = p.first_line
        JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
        WHERE p.is_new
        """,
        {"batch": batch_id, "now": now},
    ).fetchall()[0][0]
    if inserted != expected:
        raise RuntimeError(f"orders: {expected - inserted} rows found no person in identity_map")
    # A known order moves on only to a later or stronger state (paid -> refunded/cancelled).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE order_updates AS
        SELECT order_id, final FROM order_plan
        WHERE NOT is_new AND final.status <> cur_status
          AND ({STATUS_RANK.replace("status", "final.status")} > {STATUS_RANK.replace("status", "cur_status")}
               OR ({STATUS_RANK.replace("status", "final.status")} = {STATUS_RANK.replace("status", "cur_status")}
                   AND final.ts > cur_status_ts))
        """
    )
    updated = con.execute(
        """
        UPDATE orders SET status = u.final.status, status_ts = u.final.ts
        FROM order_updates u WHERE orders.order_id = u.order_id
        """
    ).fetchall()[0][0]
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE loaded_lines AS
        SELECT first_line AS line FROM order_plan WHERE is_new
        UNION SELECT final.line FROM order_plan WHERE is_new AND final.status <> first_status
        UNION SELECT final.line FROM order_updates
        """
    )
    loaded = con.execute("SELECT count(*) FROM loaded_lines").fetchall()[0][0]
    con.execute("DROP TABLE order_plan")
    con.execute("DROP TABLE order_updates")
    return loaded, updated


def _identities(
    con: duckdb.DuckDBPyConnection, source: str, batch_id: str, raw_file: RawFile, steps: _Steps
) -> _Outcome:
    """Identity evidence files: every valid pair goes through OneID's link()."""
    rows = con.execute(
        """
        SELECT s._line, s.id_type_a, coalesce(ha.id_value, s.raw_a), s.raw_a,
               s.id_type_b, coalesce(hb.id_value, s.raw_b), s.raw_b, s.ts, s.source
        FROM staged s
        LEFT JOIN hashed ha ON ha.id_type = s.id_type_a AND ha.raw = s.raw_a
        LEFT JOIN hashed hb ON hb.id_type = s.id_type_b AND hb.raw = s.raw_b
        WHERE len(s._errors) = 0
        ORDER BY s._line
        """
    ).fetchall()
    seen: set[tuple] = set()
    evidence = []
    for _line, ta, va, ra, tb, vb, rb, ts, row_source in rows:
        pair = tuple(sorted([(ta, va), (tb, vb)]))
        if pair in seen:
            continue
        seen.add(pair)
        a = identity.RawIdentifier(ta, ra) if ta in DIRECT_TYPES else (ta, va)
        b = identity.RawIdentifier(tb, rb) if tb in DIRECT_TYPES else (tb, vb)
        evidence.append(identity.LinkEvidence(a, b, source=(row_source or source)[:64], observed_at=ts))
    with steps.step("linking identities"):
        report = None
        if evidence:
            with session_scope() as session:
                report = identity.link(session, evidence)
        with session_scope() as session:
            identity.sync_warehouse(session, con)
    rejects = con.execute(
        "SELECT line, field, reason, raw FROM batch_rejects ORDER BY line, field"
    ).fetchall()
    rejected_rows = len({line for line, *_ in rejects})
    already = report.already_same if report else 0
    loaded = len(evidence) - already
    duplicate = raw_file.rows_read - rejected_rows - loaded
    now = _now()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO rejects SELECT ?, 'identities', ?, line, field, reason, raw, ? FROM batch_rejects",
            [batch_id, source, now],
        )
        con.execute(
            "INSERT INTO import_batches VALUES (?, 'identities', ?, ?, ?, ?, ?, ?)",
            [batch_id, source, raw_file.rows_read, loaded, duplicate, rejected_rows, now],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    reasons = Counter(reason_key(reason) for _l, _f, reason, _r in rejects)
    details = {
        "merged": report.merged if report else 0,
        "already_same": already,
        "conflicts": len(report.conflicts) if report else 0,
    }
    return _Outcome(loaded, duplicate, rejected_rows, 0, dict(reasons), rejects, set(), details)


def _write_rejects_csv(rejects: list[tuple[int, str, str, str]], path: Path) -> None:
    import csv

    # UTF-8 with BOM: the rejects file is opened in Excel by the people who fix the rows.
    with path.open("w", encoding="utf-8-sig", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["line", "field", "reason", "raw"])
        writer.writerows(rejects)
