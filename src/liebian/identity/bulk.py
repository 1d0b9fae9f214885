"""Set-based OneID registration for file imports: a million new identifiers in seconds, not minutes.

`service.resolve` looks identifiers up in chunks of 900 bound parameters and inserts through
SQLAlchemy: fine for an API batch, minutes for a million new users. Here:

- `register_new(con, keys_sql, source)` registers the identifiers of a DuckDB query (an import's
  distinct keys the warehouse's identity_map lacks). Person ids and displays are computed in DuckDB
  (`person_id_sql` equals `person_id_for`); only direct identifiers (phones) pass through Python, for
  their AES-GCM ciphertext. The rows reach the store through a staging table (PostgreSQL: COPY;
  SQLite: executemany, one transaction) and one INSERT … SELECT per table; identity_map is filled
  from the same DuckDB table, so the new identifiers are never read back out of the store.
- `register_beside(con, keys_sql, source)` does the same for a file import, but writes the store
  in a thread of its own while the caller loads its rows into the warehouse (`Registration`): the
  caller adds the planned identifiers to identity_map inside its load transaction and commits only
  once the store has committed. Should the store find anything but new ids for new identifiers
  (an id taken, an identifier registered meanwhile), the thread rolls back and the caller rolls
  back its load, registers the usual way (`Registration.register_here`) and loads again.
- `resolve_bulk(session, identifiers)` is resolve() for a long Python list, on the same writer.

The rules are those of `service._found_persons`: a new identifier founds a person whose id derives
from it; an id already taken (a hash collision, a deleted person's tombstone) gets a salted id,
unless it is taken by the very same identifier registered meanwhile by a concurrent import (then
that registration is used); inserts ignore conflicts, so a concurrent writer's registration wins.
Two new identifiers of one batch with the same id: the smaller (id_type, value) keeps it.
"""

from __future__ import annotations

import tempfile
import threading
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import Connection, func, select
from sqlalchemy.orm import Session

from liebian.db.base import utcnow
from liebian.db.session import get_engine, session_scope
from liebian.identity import service, staging
from liebian.identity.keys import DIRECT_TYPES, assign_person_ids, display_value, person_id_for, person_id_sql
from liebian.identity.models import Identifier
from liebian.lazy import lazy_import
from liebian.privacy.crypto import encrypt

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    pa = lazy_import("pyarrow")

# Below this many identifiers the ordinary resolve() is as fast and simpler.
BULK_THRESHOLD = 2000
BATCH = 100_000
TAKEN_ROUNDS = 4  # a salted id can itself be taken: look again, a few times
DIRECT_SQL = "[" + ", ".join(f"'{t}'" for t in sorted(DIRECT_TYPES)) + "]"
# Printable ASCII without surrounding blanks: masked in SQL exactly as mask_identifier() does in
# Python (anything else — other scripts, odd whitespace — is masked by Python itself).
PLAIN_ASCII = "[!-~]([ -~]*[!-~])?"


def _batches(rows: list, size: int = BATCH):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


# ---------------------------------------------------------------- the plan (DuckDB)


def plan(con: duckdb.DuckDBPyConnection, keys_sql: str) -> int:
    """Temp table `bulk_plan` (id_type, id_value, person_id, encrypted_value, display) for the
    distinct keys of `keys_sql` (columns id_type, id_value, raw: the raw value of a direct
    identifier, else NULL); returns its row count."""
    mask = (
        "CASE WHEN length(id_value) <= 6 THEN left(id_value, 1) || repeat('*', length(id_value) - 1)"
        " ELSE left(id_value, 3) || '…' || right(id_value, 3) END"
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE bulk_plan AS
        SELECT id_type, id_value, {person_id_sql("id_type", "id_value")} AS person_id,
               NULL::VARCHAR AS encrypted_value,
               CASE WHEN list_contains({DIRECT_SQL}, id_type)
                    THEN CASE WHEN raw IS NULL THEN id_type || ':' || left(id_value, 8) || '…' END
                    WHEN regexp_full_match(id_value, '{PLAIN_ASCII}') THEN {mask}
               END AS display,
               raw
        FROM (SELECT id_type, id_value, min(raw) AS raw FROM ({keys_sql}) GROUP BY id_type, id_value)
        """
    )
    n = con.execute("SELECT count(*) FROM bulk_plan").fetchall()[0][0]
    _python_values(con)
    _separate_batch_clashes(con)
    return n


def _python_values(con: duckdb.DuckDBPyConnection) -> None:
    """Ciphertext and display of direct identifiers, and displays SQL could not mask exactly."""
    rows = con.execute(
        f"SELECT id_type, id_value, raw FROM bulk_plan WHERE display IS NULL OR "
        f"(raw IS NOT NULL AND list_contains({DIRECT_SQL}, id_type))"
    ).fetchall()
    if not rows:
        return
    enc, disp = [], []
    for id_type, value, raw in rows:
        direct = raw is not None and id_type in DIRECT_TYPES
        enc.append(encrypt(raw) if direct else None)
        disp.append(display_value(id_type, raw if direct else value))
    fix = pa.table(
        {
            "id_type": pa.array([r[0] for r in rows], pa.string()),
            "id_value": pa.array([r[1] for r in rows], pa.string()),
            "encrypted_value": pa.array(enc, pa.string()),
            "display": pa.array(disp, pa.string()),
        }
    )
    con.register("bulk_fix", fix)
    try:
        con.execute(
            "UPDATE bulk_plan SET encrypted_value = f.encrypted_value, display = f.display FROM bulk_fix f "
            "WHERE bulk_plan.id_type = f.id_type AND bulk_plan.id_value = f.id_value"
        )
    finally:
        con.unregister("bulk_fix")


def _set_ids(con: duckdb.DuckDBPyConnection, ids: dict[tuple[str, str], int]) -> None:
    con.executemany(
        "UPDATE bulk_plan SET person_id = ? WHERE id_type = ? AND id_value = ?",
        [(pid, t, v) for (t, v), pid in ids.items()],
    )


def _separate_batch_clashes(con: duckdb.DuckDBPyConnection) -> None:
    """Two new keys with one id (about 1 in 18,000 at a million): the smaller key keeps it."""
    clashing = con.execute(
        "SELECT id_type, id_value, person_id FROM bulk_plan WHERE person_id IN "
        "(SELECT person_id FROM bulk_plan GROUP BY person_id HAVING count(*) > 1) ORDER BY id_type, id_value"
    ).fetchall()
    if not clashing:
        return
    kept: set[int] = set()
    moved: dict[tuple[str, str], int] = {}
    for id_type, value, pid in clashing:
        if pid in kept:
            moved[(id_type, value)] = pid
        kept.add(pid)
    _set_ids(con, _salted(con, moved, set()))


def _salted(
    con: duckdb.DuckDBPyConnection, wanted: dict[tuple[str, str], int], taken: set[int]
) -> dict[tuple[str, str], int]:
    """assign_person_ids() for `wanted`, also avoiding every id the plan already hands out."""
    in_plan = {
        pid
        for (pid,) in con.execute(
            "SELECT person_id FROM bulk_plan WHERE list_contains(?, person_id)",
            [sorted({person_id_for(t, f"{v}#{s}") for t, v in wanted for s in range(1, 4)})],
        ).fetchall()
    }
    return assign_person_ids(dict(wanted), taken | in_plan | set(wanted.values()))


# ---------------------------------------------------------------- the store


PLAN_QUERY = f"SELECT {staging.PLAN_COLUMNS} FROM bulk_plan"


def _export_csv(con: duckdb.DuckDBPyConnection, path: Path) -> None:
    con.execute(f"COPY ({PLAN_QUERY}) TO '{path}' (FORMAT csv, HEADER false)")


def _copy_csv(conn: Connection, path: Path) -> None:
    cursor = staging.dbapi(conn).cursor()
    copy_sql = f"COPY bulk_new ({staging.PLAN_COLUMNS}) FROM STDIN (FORMAT csv)"
    with cursor.copy(copy_sql) as copy, path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            copy.write(chunk)
    conn.exec_driver_sql("ANALYZE bulk_new")


def _insert_batches(conn: Connection, batches: Iterable[pa.RecordBatch]) -> None:
    mark = staging.mark(conn)
    insert = f"INSERT INTO bulk_new ({staging.PLAN_COLUMNS}) VALUES ({', '.join([mark] * 5)})"
    for batch in batches:
        conn.exec_driver_sql(insert, list(zip(*(c.to_pylist() for c in batch.columns), strict=True)))


def _fill_staging(conn: Connection, con: duckdb.DuckDBPyConnection) -> None:
    """Copy bulk_plan into the store's temp table bulk_new."""
    staging.empty_staging(conn)
    if conn.dialect.name == "postgresql":
        with tempfile.TemporaryDirectory(prefix="liebian-bulk-") as tmp:
            path = Path(tmp) / "bulk_new.csv"
            _export_csv(con, path)
            _copy_csv(conn, path)
        return
    _insert_batches(conn, con.sql(PLAN_QUERY).to_arrow_reader(BATCH))


def _resolve_taken(session: Session, conn: Connection, con: duckdb.DuckDBPyConnection) -> dict:
    """Ids of the plan that persons already holds: the same identifier registered meanwhile (use
    that registration) or a collision/tombstone (salt). Returns the keys registered meanwhile."""
    rows = conn.exec_driver_sql(
        "SELECT b.id_type, b.id_value, b.person_id FROM bulk_new b JOIN persons p ON p.id = b.person_id"
    ).fetchall()
    wanted = {(t, v): pid for t, v, pid in rows}
    taken = {pid for pid in wanted.values()}
    registered = service.lookup(session, list(wanted))
    for key in registered:
        del wanted[key]
    moved = _salted(con, wanted, taken)
    _set_ids(con, moved)
    mark = staging.mark(conn)
    if registered:
        con.executemany(
            "DELETE FROM bulk_plan WHERE id_type = ? AND id_value = ?", [list(k) for k in registered]
        )
        conn.exec_driver_sql(
            f"DELETE FROM bulk_new WHERE id_type = {mark} AND id_value = {mark}", list(registered)
        )
    if moved:
        conn.exec_driver_sql(
            f"UPDATE bulk_new SET person_id = {mark} WHERE id_type = {mark} AND id_value = {mark}",
            [(pid, t, v) for (t, v), pid in moved.items()],
        )
    return registered


def store(
    session: Session, con: duckdb.DuckDBPyConnection, source: str, seen_at: datetime
) -> tuple[dict, int]:
    """Write bulk_plan to the store. Returns the keys another writer registered first (key → its
    person id; dropped from bulk_plan) and the number of identifiers inserted here."""
    conn = session.connection()
    stamp = staging.stamp(conn, seen_at)
    staging.tune_sqlite(conn)
    _fill_staging(conn, con)
    n = conn.exec_driver_sql("SELECT count(*) FROM bulk_new").scalar_one()
    other: dict = {}
    conn.exec_driver_sql("SAVEPOINT bulk_persons")
    for attempt in range(TAKEN_ROUNDS):
        if staging.insert_persons(conn, stamp) == n:
            break
        if attempt == TAKEN_ROUNDS - 1:
            raise RuntimeError("person ids kept being taken while registering identifiers; import again")
        # Some ids are taken: undo, sort out which and why, and insert again (rare).
        conn.exec_driver_sql("ROLLBACK TO SAVEPOINT bulk_persons")
        registered = _resolve_taken(session, conn, con)
        other.update(registered)
        n -= len(registered)
    conn.exec_driver_sql("RELEASE SAVEPOINT bulk_persons")
    inserted = staging.insert_identifiers(conn, source, stamp)
    mark = staging.mark(conn)
    if inserted != n:
        # A concurrent writer registered some of these identifiers first: its ids win, and the
        # persons founded here for them are removed again.
        won = conn.exec_driver_sql(
            "SELECT b.id_type, b.id_value, i.person_id, b.person_id FROM bulk_new b JOIN identifiers i "
            "ON i.id_type = b.id_type AND i.id_value = b.id_value WHERE i.person_id <> b.person_id"
        ).fetchall()
        conn.exec_driver_sql(
            f"DELETE FROM persons WHERE id = {mark}", [(ours,) for _t, _v, _theirs, ours in won]
        )
        theirs = {(t, v): pid for t, v, pid, _ours in won}
        con.executemany("DELETE FROM bulk_plan WHERE id_type = ? AND id_value = ?", [list(k) for k in theirs])
        other.update(theirs)
    conn.exec_driver_sql("DELETE FROM bulk_new")
    staging.analyze_after_bulk(conn)
    return other, inserted


def register_new(con: duckdb.DuckDBPyConnection, keys_sql: str, source: str = "") -> int:
    """Register the identifiers of `keys_sql` (id_type, id_value, raw) that are new to the
    warehouse's identity_map, and add them to identity_map. Returns how many the store gained."""
    last = service.sync_watermark(con)
    if not plan(con, keys_sql):
        return 0
    return _store_and_map(con, source, last)


def _store_and_map(con: duckdb.DuckDBPyConnection, source: str, last: int) -> int:
    """Write bulk_plan to the store (every rule of `store`), then to identity_map; drops bulk_plan."""
    with session_scope() as session:
        other, inserted = store(session, con, source, utcnow())
    # Committed in the store: now the warehouse's replica (a crash here is repaired by the next sync).
    if other:
        con.register("bulk_other", pa.table({"id_type": [k[0] for k in other], "id_value": [k[1] for k in other],
                                              "person_id": pa.array(list(other.values()), pa.int64())}))  # fmt: skip
        con.execute("INSERT INTO bulk_plan (id_type, id_value, person_id) SELECT * FROM bulk_other")
        con.unregister("bulk_other")
    con.execute(MAP_INSERT)
    con.execute("DROP TABLE bulk_plan")
    with session_scope() as session:
        service.advance_sync(session, con, last, inserted)
    return inserted


MAP_INSERT = """
INSERT INTO identity_map
SELECT p.id_type, p.id_value, p.person_id FROM bulk_plan p
ANTI JOIN identity_map m ON m.id_type = p.id_type AND m.id_value = p.id_value
"""

# Below this many new identifiers an import registers them before loading (no thread).
BESIDE_THRESHOLD = BULK_THRESHOLD


def _store_plain(conn: Connection, staged: pa.Table | Path, source: str, seen_at: datetime) -> int | None:
    """`store` for the common case only, without touching DuckDB: every planned id is free and
    every identifier new. Returns how many identifiers were inserted, or None when that is not so
    (the caller rolls back and registers with `store`)."""
    stamp = staging.stamp(conn, seen_at)
    staging.tune_sqlite(conn)
    staging.empty_staging(conn)
    if isinstance(staged, Path):
        _copy_csv(conn, staged)
    else:
        _insert_batches(conn, staged.to_batches(BATCH))
    n = conn.exec_driver_sql("SELECT count(*) FROM bulk_new").scalar()
    if staging.insert_persons(conn, stamp) != n:
        return None
    # Every person of bulk_new is in (counted above): see staging.checked_persons.
    with staging.indexes_rebuilt(conn, "identifiers", n):
        inserted = staging.insert_identifiers(conn, source, stamp)
    if inserted != n:
        return None
    conn.exec_driver_sql("DELETE FROM bulk_new")
    staging.analyze_after_bulk(conn)
    return inserted


class Registration:
    """New identifiers being written to the store by a thread while the caller loads its rows.

    The caller, inside its warehouse transaction: `map_into(con)` (identity_map gains the planned
    identifiers), its inserts, then `stored()`: True once the store has committed them (then
    `advance(con)` and commit); False when the plain path did not apply (roll back, then
    `register_here(con)` and load again). On an error: `abandon()`, roll back, raise.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, source: str, last: int, planned: int):
        self.source, self.last, self.planned = source, last, planned
        self.seen_at = utcnow()
        self.seconds = 0.0
        self._tmp: tempfile.TemporaryDirectory | None = None
        staged: pa.Table | Path
        if get_engine().dialect.name == "postgresql":
            self._tmp = tempfile.TemporaryDirectory(prefix="liebian-bulk-")
            staged = Path(self._tmp.name) / "bulk_new.csv"
            _export_csv(con, staged)
        else:
            staged = con.sql(PLAN_QUERY).fetch_arrow_table()
        self._result: tuple[int | None, int, int] | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(staged,), name="oneid-register", daemon=True)
        self._thread.start()

    def _run(self, staged: pa.Table | Path) -> None:
        started = time.perf_counter()
        try:
            with get_engine().connect() as conn, staging.checked_persons(conn):
                inserted = _store_plain(conn, staged, self.source, self.seen_at)
                if inserted is None:
                    conn.rollback()
                    self._result = (None, 0, 0)
                    return
                conn.commit()
            with session_scope() as session:
                count, top = session.execute(
                    select(func.count(), func.max(Identifier.id)).where(Identifier.id > self.last)
                ).one()
            self._result = (inserted, count or 0, top or 0)
        except BaseException as exc:  # handed to the caller's thread
            self._error = exc
        finally:
            self.seconds = time.perf_counter() - started

    def _join(self) -> None:
        self._thread.join()
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def map_into(self, con: duckdb.DuckDBPyConnection) -> None:
        con.execute(MAP_INSERT)

    def stored(self) -> bool:
        self._join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result[0] is not None

    def advance(self, con: duckdb.DuckDBPyConnection) -> None:
        """Move the sync watermark past the identifiers stored here when nobody else registered
        any meanwhile (else the caller's next sync_warehouse copies what identity_map lacks)."""
        inserted, count, top = self._result or (None, 0, 0)
        if inserted is not None and count and count == inserted:
            con.execute("INSERT INTO identity_sync VALUES (?)", [int(top)])
        con.execute("DROP TABLE IF EXISTS bulk_plan")

    def register_here(self, con: duckdb.DuckDBPyConnection) -> int:
        """The plain path did not apply: register bulk_plan by every rule of `store`."""
        return _store_and_map(con, self.source, self.last)

    def abandon(self) -> None:
        self._join()


def register_beside(con: duckdb.DuckDBPyConnection, keys_sql: str, source: str = "") -> Registration | None:
    """`register_new`, with the store written beside the caller's load (see `Registration`) when
    there are at least BESIDE_THRESHOLD new identifiers. Returns None when the registration is
    already complete (nothing new, or few enough to register at once)."""
    last = service.sync_watermark(con)
    planned = plan(con, keys_sql)
    if not planned:
        con.execute("DROP TABLE bulk_plan")
        return None
    if planned < BESIDE_THRESHOLD:
        _store_and_map(con, source, last)
        return None
    return Registration(con, source, last, planned)


def resolve_bulk(
    session: Session,
    identifiers: Iterable,
    source: str = "",
    seen_at: datetime | None = None,
) -> dict[tuple[str, str], int]:
    """Map identifiers (RawIdentifier or stored-form keys) to person ids, founding new persons."""
    raw_by_key: dict[tuple[str, str], str] = {}
    keys: set[tuple[str, str]] = set()
    items = list(identifiers)
    for item in items:
        if isinstance(item, service.RawIdentifier):
            raw_by_key[item.key] = item.raw
            keys.add(item.key)
        else:
            keys.add(item)
    if len(keys) < BULK_THRESHOLD:
        return service.resolve(session, items, source=source, seen_at=seen_at)

    conn = session.connection()
    staging.tune_sqlite(conn)
    mark = staging.mark(conn)
    # Temporary tables live with the connection (pooled ones keep theirs: emptied before use).
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS bulk_keys (id_type VARCHAR(32), id_value VARCHAR(128))"
    )
    conn.exec_driver_sql("DELETE FROM bulk_keys")
    for batch in _batches(list(keys)):
        conn.exec_driver_sql(f"INSERT INTO bulk_keys (id_type, id_value) VALUES ({mark}, {mark})", batch)

    def known() -> dict[tuple[str, str], int]:
        rows = conn.exec_driver_sql(
            "SELECT k.id_type, k.id_value, i.person_id FROM bulk_keys k "
            "JOIN identifiers i ON i.id_type = k.id_type AND i.id_value = k.id_value"
        ).fetchall()
        return {(t, v): p for t, v, p in rows}

    found = known()
    new = sorted(keys - found.keys())
    if new:
        con = duckdb.connect()
        try:
            con.register(
                "bulk_input",
                pa.table(
                    {
                        "id_type": [k[0] for k in new],
                        "id_value": [k[1] for k in new],
                        "raw": pa.array([raw_by_key.get(k) for k in new], pa.string()),
                    }
                ),
            )
            plan(con, "SELECT * FROM bulk_input")
            other, _inserted = store(session, con, source, seen_at or utcnow())
            found.update(
                {
                    (t, v): p
                    for t, v, p in con.execute(
                        "SELECT id_type, id_value, person_id FROM bulk_plan"
                    ).fetchall()
                }
            )
            found.update(other)
        finally:
            con.close()
    conn.exec_driver_sql("DELETE FROM bulk_keys")
    return found
