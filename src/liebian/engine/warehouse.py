"""The analytics warehouse: one DuckDB file holding behaviour, transaction and social data.

DuckDB allows one writing process per file, so every unit of work opens the file, does its work
and closes it again; a process that finds the file locked by another retries until
`LOCK_WAIT_SECONDS` pass. Times are naive UTC; money is integer fen; direct identifiers (phones)
arrive here only as HMACs.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from liebian.config import get_settings
from liebian.errors import Unavailable

LOCK_WAIT_SECONDS = 60.0

# "behaviour – transaction – social": events and orders, identities, referral edges, messages.
# received_at: when the channel's collector got the row (optional input; timeliness is measured
# from it, falling back to ingested_at, the time liebian loaded it).
SCHEMA = [
    """
    CREATE TABLE IF NOT EXISTS events (
        event_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        campaign_id VARCHAR,
        invite_code VARCHAR,
        referrer_person_id BIGINT,
        device_id VARCHAR,
        ip VARCHAR,
        props VARCHAR,
        received_at TIMESTAMP,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS orders (
        order_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        amount_fen BIGINT NOT NULL,
        currency VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        campaign_id VARCHAR,
        status_ts TIMESTAMP NOT NULL,
        props VARCHAR,
        received_at TIMESTAMP,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS messages (
        message_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        group_id VARCHAR NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        text VARCHAR,
        channel VARCHAR NOT NULL,
        props VARCHAR,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    # One row per invitee and campaign: who brought whom (the first inviter seen wins here;
    # the campaign engine applies its own first/last-touch rule to rewards).
    """
    CREATE TABLE IF NOT EXISTS referral_edges (
        inviter_person_id BIGINT NOT NULL,
        invitee_person_id BIGINT NOT NULL,
        campaign_id VARCHAR,
        channel VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        event_id VARCHAR NOT NULL
    )
    """,
    # Replica of the operational OneID registry, so analyses can map identifiers to persons.
    """
    CREATE TABLE IF NOT EXISTS identity_map (
        id_type VARCHAR NOT NULL,
        id_value VARCHAR NOT NULL,
        person_id BIGINT NOT NULL
    )
    """,
    # Person merges already applied to the warehouse tables (watermark for the merge log).
    """
    CREATE TABLE IF NOT EXISTS applied_merges (
        merge_id BIGINT NOT NULL,
        applied_at TIMESTAMP NOT NULL
    )
    """,
    # Each loaded import batch; re-running a batch is a no-op thanks to id anti-joins.
    """
    CREATE TABLE IF NOT EXISTS import_batches (
        batch_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        rows_read BIGINT NOT NULL,
        rows_loaded BIGINT NOT NULL,
        rows_duplicate BIGINT NOT NULL,
        rows_rejected BIGINT NOT NULL,
        finished_at TIMESTAMP NOT NULL
    )
    """,
    # Rows that could not be loaded, kept visible (quarantine) besides the rejects file.
    """
    CREATE TABLE IF NOT EXISTS rejects (
        batch_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        line BIGINT,
        field VARCHAR,
        reason VARCHAR NOT NULL,
        raw VARCHAR,
        rejected_at TIMESTAMP NOT NULL
    )
    """,
]

TABLES = ("events", "orders", "messages", "referral_edges", "identity_map")


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
    """Open the warehouse for one unit of work; create the schema on first use.

    `read_only=True` documents that the caller will not write. The file is always opened
    read-write: DuckDB refuses a read-only and a read-write connection to one file inside one
    process, and a server reads while its jobs write.
    """
    path = Path(path or warehouse_path())
    path.parent.mkdir(parents=True, exist_ok=True)
    with WRITE_LOCK:
        con = _open(path)
        try:
            con.execute("SET TimeZone = 'UTC'")
            ensure_schema(con)
            yield con
        finally:
            con.close()


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


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    """Create missing tables (idempotent; `connect` holds the process's lock while it runs)."""
    for ddl in SCHEMA:
        con.execute(ddl)


def table_counts(con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in TABLES}
