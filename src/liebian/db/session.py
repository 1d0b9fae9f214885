"""Engine and session factory for the operational store (SQLite by default, PostgreSQL by URL)."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import CursorResult, Engine, Executable, Result, Table, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

from liebian.config import get_settings
from liebian.db import pool

_engines: dict[str, Engine] = {}
_factories: dict[str, sessionmaker[Session]] = {}
_lock = threading.Lock()


# SQLite has one writer per database. A connection waiting for the write lock polls it with sleeps
# of up to 100 ms (its busy handler), so under many concurrent requests the lock sits free while the
# waiters sleep, and the latest comers may overtake the first. Within one process the writers queue
# on this lock instead: a connection takes it before the first write of a transaction (the
# statements pysqlite opens a transaction for) and gives it back at commit, rollback or close.
# A SAVEPOINT (Session.begin_nested) opens a transaction too, whose reads would otherwise hold a
# snapshot that a write after another writer's commit cannot upgrade ("database is locked" at once,
# whatever the busy timeout): it takes the lock as well.
# Other processes (the CLI, a second server) still meet SQLite's own lock and its busy timeout.
_WRITE_STATEMENTS = ("INSERT", "UPDATE", "DELETE", "REPLACE", "SAVEPOI")
_sqlite_write_locks: dict[str, threading.Lock] = {}
WRITE_LOCK_TIMEOUT = 30.0


class _SqliteCursor(sqlite3.Cursor):
    def execute(self, sql, parameters=(), /):
        self._before_statement(sql)
        return super().execute(sql, parameters)

    def executemany(self, sql, seq_of_parameters, /):
        self._before_statement(sql)
        return super().executemany(sql, seq_of_parameters)

    def _before_statement(self, sql: str) -> None:
        connection = self.connection
        if isinstance(connection, _SqliteConnection):  # always: only its connections make these cursors
            connection._before_statement(sql)


class _SqliteConnection(sqlite3.Connection):
    """A pysqlite connection whose transactions take the process's write lock of its database."""

    write_lock: threading.Lock | None = None
    _holds = False

    def cursor(self, factory=_SqliteCursor):
        return super().cursor(factory)

    def _before_statement(self, sql: str) -> None:
        if self._holds or self.write_lock is None or self.in_transaction:
            return
        if sql.lstrip()[:7].upper().startswith(_WRITE_STATEMENTS):
            # on a timeout carry on: SQLite's own lock still serialises, it only waits less politely
            self._holds = self.write_lock.acquire(timeout=WRITE_LOCK_TIMEOUT)

    def _release(self) -> None:
        if self._holds and self.write_lock is not None:
            self._holds = False
            self.write_lock.release()

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            if not self.in_transaction:
                self._release()

    def rollback(self) -> None:
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    # WAL lets readers run beside the single writer; busy_timeout queues writers instead of failing.
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def get_engine(url: str | None = None) -> Engine:
    url = url or get_settings().sqlalchemy_url
    with _lock:
        engine = _engines.get(url)
        if engine is None:
            if url.startswith("sqlite"):
                engine = create_engine(
                    url,
                    connect_args={"check_same_thread": False, "timeout": 30, "factory": _SqliteConnection},
                    # a file database: QueuePool; its default of 5 kept open closed and reopened the
                    # connections above 5 (a connect and four PRAGMAs each) for a server's 40 threads
                    **({} if ":memory:" in url or url in ("sqlite://", "sqlite:///") else SQLITE_POOL),
                )
                lock = _sqlite_write_locks.setdefault(url, threading.Lock())

                def _on_connect(dbapi_connection, record, lock=lock) -> None:
                    if isinstance(dbapi_connection, _SqliteConnection):
                        dbapi_connection.write_lock = lock
                    _sqlite_pragmas(dbapi_connection, record)

                event.listen(engine, "connect", _on_connect)
            else:
                engine = _server_engine(url)
            _engines[url] = engine
        return engine


# Connections the SQLite engine keeps open, and opens beyond them at peaks (the server's thread pool
# runs up to 40 requests at once; writes queue on the write lock above whatever the pool).
SQLITE_POOL = {"pool_size": 20, "max_overflow": 30}
# A pooled server connection idle longer than this is pinged at checkout (a restarted server or a
# firewall drops idle connections); one in steady use is not: a ping on every checkout cost a round
# trip per request. A connection that fails in use is still caught: SQLAlchemy invalidates the pool
# on a disconnect error, so the connections checked out after it are new.
PING_IDLE_SECONDS = 10.0


def _ping_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _checked_in(_dbapi_connection, record) -> None:
        record.info["idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checked_out(dbapi_connection, record, _proxy) -> None:
        since = record.info.get("idle_since")
        if since is None or time.monotonic() - since < PING_IDLE_SECONDS:
            return  # new, or in steady use
        try:
            cursor = dbapi_connection.cursor()
            try:
                cursor.execute("SELECT 1")
            finally:
                cursor.close()
            dbapi_connection.rollback()
        except Exception as error:  # the pool discards it and checks out another (up to 3 times)
            raise exc.DisconnectionError(f"an idle pooled connection was dropped: {error}") from error


def _server_engine(url: str) -> Engine:
    """A pooled engine for a database server; on PostgreSQL the pool fits its max_connections
    (db.pool.plan_pool: derived from the workers, or the settings checked)."""
    settings = get_settings()
    size = settings.db_pool_size or pool.DEFAULT_POOL_SIZE
    overflow = settings.db_max_overflow if settings.db_max_overflow is not None else pool.DEFAULT_MAX_OVERFLOW
    if url.startswith("postgresql"):
        plan = pool.plan_pool(settings, pool.server_limits(url))
        size, overflow = plan.pool_size, plan.max_overflow
    engine = create_engine(url, pool_size=size, max_overflow=overflow, pool_timeout=settings.db_pool_timeout)
    _ping_idle(engine)
    return engine


# The default store's URL per settings object: `Settings.sqlalchemy_url` resolves the data
# directory on the file system (a stat per path part) and every request opens a session. Cached
# only for an absolute data directory (a relative one depends on the working directory);
# `reset_settings_cache` makes a new settings object, so a changed configuration is read again.
_default_url: tuple[object, str] | None = None


def _store_url() -> str:
    global _default_url
    settings = get_settings()
    cached = _default_url
    if cached is not None and cached[0] is settings:
        return cached[1]
    url = settings.sqlalchemy_url
    if settings.database_url or settings.data_dir.is_absolute():
        _default_url = (settings, url)
    return url


def session_factory(url: str | None = None) -> sessionmaker[Session]:
    url = url or _store_url()
    factory = _factories.get(url)
    if factory is None:
        factory = _factories.setdefault(url, sessionmaker(get_engine(url), expire_on_commit=False))
    return factory


@contextmanager
def session_scope(url: str | None = None) -> Iterator[Session]:
    """A transaction: commit on success, roll back on error."""
    session = session_factory(url)()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def dispose_engines() -> None:
    """Close every pooled connection (tests switch databases; the server shuts down)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()
        _factories.clear()


def rowcount(result: Result[Any]) -> int:
    """The rows an UPDATE or DELETE (without RETURNING) matched.

    `Session.execute` types its result as `Result`, since it cannot promise a cursor for every
    statement; for such a statement it is a `CursorResult`, which has the count.
    """
    if not isinstance(result, CursorResult):
        raise TypeError(f"a {type(result).__name__} has no row count")
    return result.rowcount


def core(session: Session, statement: Executable, params: Any = None) -> CursorResult[*tuple[Any, ...]]:
    """Run a Core statement (over tables, not ORM entities) on the session's connection, in its
    transaction. `Session.execute` costs ~10 µs more per statement (its bind look-up, execution
    options and events, measured on SQLite: 50 -> 40 µs for a one-row SELECT), for an ORM step
    such a statement never takes: no autoflush, no loading into the identity map (issue #23).
    An ORM-enabled statement (`select(Model)`, `Model.column`) keeps `Session.execute`."""
    return session.connection().execute(statement, params)


_multi_row_inserts: dict[Table, Executable] = {}


def insert_rows(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT rows into `table` in one statement.

    psycopg runs an executemany as a pipeline of one statement per row, which costs the process
    more CPU than one multi-row VALUES statement (~45 µs more per call for three rows, measured on
    the referral loop's audit rows); SQLAlchemy writes the latter ("insertmanyvalues") for an
    INSERT … RETURNING, so on PostgreSQL the rows come back as their keys, unused. On SQLite the
    driver's executemany, a loop in C, is the cheaper one."""
    if len(rows) > 1 and session.get_bind().dialect.name == "postgresql":
        insert = _multi_row_inserts.get(table)
        if insert is None:
            insert = _multi_row_inserts[table] = table.insert().returning(*table.primary_key.columns)
        core(session, insert, rows)
    elif rows:
        core(session, table.insert(), rows[0] if len(rows) == 1 else rows)
