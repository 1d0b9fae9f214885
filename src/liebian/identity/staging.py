"""The store side of registering many identifiers at once: a temporary staging table `bulk_new`
filled in one go (PostgreSQL: COPY; SQLite: executemany in the caller's transaction), then one
INSERT … SELECT … ON CONFLICT DO NOTHING into persons and one into identifiers.

Shared by `bulk` (an import's new identifiers, planned in DuckDB) and `service` (a long list of
new identifiers founded by `resolve`, e.g. a link() of thousands of evidence pairs)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import DBAPIConnection

STAGING_DDL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS bulk_new (id_type VARCHAR(32), id_value VARCHAR(128), "
    "person_id BIGINT, encrypted_value TEXT, display VARCHAR(64))"
)
PLAN_COLUMNS = "id_type, id_value, person_id, encrypted_value, display"


def stamp(conn: Connection, seen_at: datetime) -> Any:
    # SQLAlchemy keeps SQLite datetimes as text in this form; PostgreSQL takes the object.
    return seen_at.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else seen_at


def mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def dbapi(conn: Connection) -> DBAPIConnection:
    """The driver's connection under `conn` (an open Connection always has one)."""
    driver = conn.connection.dbapi_connection
    if driver is None:
        raise RuntimeError("the store connection is closed")
    return driver


def tune_sqlite(conn: Connection) -> None:
    if conn.dialect.name != "sqlite":
        return
    # The default 2 MB page cache thrashes once the identifier indexes outgrow it.
    conn.exec_driver_sql("PRAGMA cache_size = -262144")
    if not dbapi(conn).in_transaction:  # SQLite refuses it inside one
        conn.exec_driver_sql("PRAGMA temp_store = MEMORY")  # the staging tables need no file


def empty_staging(conn: Connection) -> None:
    """Temporary tables live with the connection (pooled ones keep theirs: emptied before use)."""
    conn.exec_driver_sql(STAGING_DDL)
    conn.exec_driver_sql("DELETE FROM bulk_new")


def copy_rows(conn: Connection, target: str, rows: Iterable[tuple]) -> None:
    """PostgreSQL: rows into `target` ("table (columns)") with one COPY."""
    with dbapi(conn).cursor().copy(f"COPY {target} FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)


def stage_rows(conn: Connection, rows: Iterable[tuple]) -> None:
    """Rows of (id_type, id_value, person_id, encrypted_value, display) into an emptied bulk_new."""
    empty_staging(conn)
    if conn.dialect.name == "postgresql":
        copy_rows(conn, f"bulk_new ({PLAN_COLUMNS})", rows)
        conn.exec_driver_sql("ANALYZE bulk_new")
        return
    m = mark(conn)
    conn.exec_driver_sql(f"INSERT INTO bulk_new ({PLAN_COLUMNS}) VALUES ({', '.join([m] * 5)})", list(rows))


def insert_persons(conn: Connection, seen: Any) -> int:
    """A person for each row of bulk_new, skipping ids taken; returns how many went in."""
    return conn.exec_driver_sql(
        f"INSERT INTO persons (id, created_at) SELECT person_id, {mark(conn)} FROM bulk_new WHERE true "
        "ORDER BY person_id ON CONFLICT DO NOTHING",  # primary-key order: sequential pages
        (seen,),
    ).rowcount


def insert_identifiers(conn: Connection, source: str, seen: Any) -> int:
    """bulk_new into identifiers, skipping identifiers registered meanwhile; returns how many went in."""
    m = mark(conn)
    return conn.exec_driver_sql(
        "INSERT INTO identifiers (id_type, id_value, person_id, encrypted_value, display, source, first_seen_at) "
        f"SELECT id_type, id_value, person_id, encrypted_value, display, {m}, {m} FROM bulk_new "
        "WHERE true ORDER BY id_type, id_value ON CONFLICT DO NOTHING",  # unique-index order
        (source[:64], seen),
    ).rowcount


@contextmanager
def checked_persons(conn: Connection) -> Iterator[None]:
    """SQLite: no per-row foreign-key probe of persons while inserting identifiers whose persons
    the caller has just inserted and counted (`insert_persons` == rows staged): about a third of
    the identifiers insert's time at a million rows. The pragma works only outside a transaction,
    so it is set before the caller's first statement and set back after its commit or rollback;
    elsewhere (PostgreSQL, or already in a transaction) the checks stay on."""
    if conn.dialect.name != "sqlite" or dbapi(conn).in_transaction:
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys = OFF")
    try:
        yield
    finally:
        if dbapi(conn).in_transaction:  # not committed: the pragma would be ignored inside it
            conn.rollback()
        conn.exec_driver_sql("PRAGMA foreign_keys = ON")


def _plain_indexes(conn: Connection, table: str) -> list[tuple[str, str]]:
    """(name, CREATE statement) of the table's explicit non-unique indexes."""
    if conn.dialect.name == "postgresql":
        return [
            (name, sql)
            for name, sql in conn.exec_driver_sql(
                "SELECT c.relname, pg_get_indexdef(i.indexrelid) FROM pg_index i "
                "JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = %s::regclass AND NOT i.indisunique",
                (table,),
            ).fetchall()
        ]
    rows = conn.exec_driver_sql(
        "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
        (table,),
    ).fetchall()
    return [(name, sql) for name, sql in rows if not sql.lstrip().upper().startswith("CREATE UNIQUE")]


def _foreign_keys(conn: Connection, table: str) -> list[tuple[str, str]]:
    """PostgreSQL: (name, definition) of the table's foreign keys."""
    return [
        (name, definition)
        for name, definition in conn.exec_driver_sql(
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = %s::regclass AND contype = 'f'",
            (table,),
        ).fetchall()
    ]


def _in_transaction(conn: Connection) -> bool:
    return bool(dbapi(conn).in_transaction) if conn.dialect.name == "sqlite" else conn.in_transaction()


@contextmanager
def indexes_rebuilt(conn: Connection, table: str, adding: int) -> Iterator[None]:
    """Inside the caller's transaction: when `adding` rows are at least as many as the table
    holds, its non-unique indexes (identifiers: person_id, display) are dropped before the insert
    and created again after it — one sort each instead of a random B-tree insert per row (SQLite,
    with `checked_persons`: a million new identifiers register in ~8.8 CPU s instead of ~11.9).
    PostgreSQL also drops the table's foreign keys and adds them back (one validating join instead
    of a trigger per row: 3.1 of the 8.2 s of 300k identifiers), as its manual advises for bulk
    loads; the ALTERs lock the table (and persons) until the commit, which only a registration at
    least doubling the registry (a first import) accepts. Same names and definitions (read from
    the catalogue); the transaction keeps it atomic."""
    if not _in_transaction(conn):
        yield  # DDL outside a transaction would commit at once
        return
    if conn.dialect.name == "sqlite":
        held = conn.exec_driver_sql(f"SELECT coalesce(max(rowid), 0) FROM {table}").scalar_one()
    else:  # a bounded count: only whether it holds more than `adding` matters
        held = conn.exec_driver_sql(
            f"SELECT count(*) FROM (SELECT 1 FROM {table} LIMIT {adding + 1}) t"
        ).scalar_one()
    dropped = _plain_indexes(conn, table) if adding >= held else []
    keys = _foreign_keys(conn, table) if dropped and conn.dialect.name == "postgresql" else []
    for name, _definition in keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"')
    for name, _sql in dropped:
        conn.exec_driver_sql(f'DROP INDEX "{name}"')
    yield
    for _name, sql in dropped:
        conn.exec_driver_sql(sql)
    for name, definition in keys:
        conn.exec_driver_sql(f'ALTER TABLE {table} ADD CONSTRAINT "{name}" {definition}')


def analyze_after_bulk(conn: Connection) -> None:
    """PostgreSQL: planner statistics for the rows just added (a first import can multiply the
    tables; autovacuum would see them only later, and lookups would meanwhile plan as for empty
    tables). SQLite plans by its indexes without statistics."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("ANALYZE persons")
        conn.exec_driver_sql("ANALYZE identifiers")
