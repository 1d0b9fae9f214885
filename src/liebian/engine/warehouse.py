"""The analytics warehouse: one DuckDB file holding behaviour, transaction and social data.

DuckDB allows one writing process per file, so every unit of work opens the file, does its work
and closes it again; a process that finds the file locked by another retries until
`LOCK_WAIT_SECONDS` pass. Times are naive UTC; money is integer fen; direct identifiers (phones)
arrive here only as HMACs. The schema is versioned: `warehouse_migrations` upgrades a file on open.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from liebian.config import get_settings
from liebian.engine import warehouse_migrations
from liebian.errors import Unavailable
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

LOCK_WAIT_SECONDS = 60.0

# The tables analyses read (and Spark reads as their Parquet exports).
TABLES = ("events", "orders", "messages", "referral_edges", "identity_map", "members")


class WarehouseLocked(Unavailable, RuntimeError):
    """Another process kept the warehouse file locked for longer than we wait (503: retry later)."""

    def __init__(self, message: str):
        super().__init__("busy", message)


def warehouse_path() -> Path:
    return get_settings().warehouse_file


def file_state(path: Path | None = None) -> tuple:
    """Size and modification time of the warehouse file and its write-ahead log: every committed
    write changes one of them (DuckDB appends each commit to the WAL, a checkpoint rewrites the file).
    A cheap version of the warehouse's content for caches of derived results (no connection opened)."""
    path = path or warehouse_path()
    out: list = [str(path)]
    for f in (path, path.with_name(path.name + ".wal")):
        try:
            st = f.stat()
            out += [st.st_size, st.st_mtime_ns]
        except FileNotFoundError:
            out += [None, None]
    return tuple(out)


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc)
    return "lock" in text.lower() or "Conflicting" in text


# One unit of work at a time within a process. DuckDB connections of one process share a database
# instance, and concurrent ones proved unsafe here (registering Arrow data while another
# connection opened or closed failed with "python_arrow_scan does not exist"); across processes
# the file lock already serialises them the same way.
WRITE_LOCK = threading.RLock()


@contextmanager
def connect(read_only: bool = False, path: Path | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """Open the warehouse for one unit of work; create or upgrade its schema first if needed
    (see `warehouse_migrations`).

    `read_only=True` documents that the caller will not write. The file is always opened
    read-write: DuckDB refuses a read-only and a read-write connection to one file inside one
    process, and a server reads while its jobs write.
    """
    path = Path(path or warehouse_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    with WRITE_LOCK:
        state = file_state(path)
        con = _open(path)
        try:
            con.execute("SET TimeZone = 'UTC'")
            if state not in _CURRENT_SCHEMA and not ensure_schema(con):
                _CURRENT_SCHEMA.add(state)  # found current, migrated nothing
            yield con
        finally:
            con.close()


# The warehouse files this process found at the latest schema version, by their state then
# (`file_state`): opened again unchanged, the version is not read again (a server opens the file for
# every analysis). Any write — another process's migration included — changes the state.
_CURRENT_SCHEMA: set[tuple] = set()


def _open(path: Path) -> duckdb.DuckDBPyConnection:
    """Connect, waiting (with backoff) while another process holds the file."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    delay = 0.01
    while True:
        try:
            return duckdb.connect(str(path))
        except duckdb.IOException as exc:
            if not _is_lock_error(exc):
                raise
            if time.monotonic() > deadline:
                raise WarehouseLocked(
                    f"the warehouse {path} is held by another process for over {LOCK_WAIT_SECONDS:.0f} s: {exc}"
                ) from exc
            time.sleep(delay * (1 + random.random()))
            delay = min(delay * 2, 0.5)


def ensure_schema(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply the schema migrations the warehouse lacks (a no-op when it is current; `connect` holds
    the process's lock while it runs); the versions applied. Raises `WarehouseTooNew` for a
    warehouse of a newer release."""
    return warehouse_migrations.migrate(con)


def schema_versions(path: Path | None = None) -> tuple[int | None, int]:
    """(the warehouse file's schema version, the latest this code knows), without migrating it;
    None when the file does not exist yet."""
    path = Path(path or warehouse_path())
    if not path.exists():
        return None, warehouse_migrations.LATEST_VERSION
    with WRITE_LOCK:
        con = _open(path)
        try:
            return warehouse_migrations.current_version(con), warehouse_migrations.LATEST_VERSION
        finally:
            con.close()


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    # fetchall: a count(*) has exactly one row, which fetchone() cannot promise the type checker
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in TABLES}
