"""Named locks held by one process at a time among every process that uses the operational store:
the workers of a multi-worker server, a separate scheduler process, the CLI.

- PostgreSQL: a session-level advisory lock on a connection of its own (workers on several hosts
  share it; it is released when the connection closes, so a killed process gives it up). The lock's
  number is derived from the name and the connection's schema, so that two installations in one
  database (or two test schemas) do not exclude each other.
- SQLite (one host, as SQLite itself): `flock` on a file beside the database, released by the
  kernel when the process ends.

Used for migrations and the first admin at start-up (`migrate.upgrade`, `auth.bootstrap`) and for
electing the one process that runs scheduled jobs (`jobs.Scheduler`).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import threading
import time
from pathlib import Path

from sqlalchemy import Connection, Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from liebian.config import get_settings
from liebian.errors import Unavailable


class LockTimeout(Unavailable, RuntimeError):
    """The lock stayed with another process for longer than the caller waits (503: retry later)."""

    def __init__(self, message: str):
        super().__init__("busy", message)


class ProcessLock:
    def __init__(self, name: str, url: str | None = None) -> None:
        self.name = name
        self.url = url or get_settings().sqlalchemy_url
        self._conn: Connection | None = None  # PostgreSQL: the connection holding the advisory lock
        self._engine: Engine | None = None
        self._fd: int | None = None  # SQLite: the locked file
        self._mutex = threading.Lock()

    # ---------------------------------------------------------------- public

    @property
    def held(self) -> bool:
        return self._conn is not None or self._fd is not None

    def acquire(self, blocking: bool = True, timeout: float | None = None) -> bool:
        """Take the lock; without `blocking`, try once. Raises LockTimeout after `timeout` seconds."""
        with self._mutex:
            if self.held:
                return True
            deadline = None if timeout is None else time.monotonic() + timeout
            delay = 0.05
            while True:
                if self._try():
                    return True
                if not blocking:
                    return False
                if deadline is not None and time.monotonic() >= deadline:
                    raise LockTimeout(
                        f"lock {self.name!r} is held by another process (waited {timeout:.0f} s)"
                    )
                time.sleep(delay)
                delay = min(delay * 2, 1.0)

    def alive(self) -> bool:
        """Whether the lock is still ours (PostgreSQL: the connection holding it still answers)."""
        with self._mutex:
            if self._fd is not None:
                return True
            if self._conn is None:
                return False
            try:
                self._conn.execute(text("SELECT 1"))
                return True
            except Exception:
                self._close_pg()
                return False

    def release(self) -> None:
        with self._mutex:
            if self._conn is not None:
                with contextlib.suppress(Exception):  # closing the connection releases it anyway
                    self._conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self._key})
                self._close_pg()
            if self._fd is not None:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> ProcessLock:
        self.acquire(timeout=600)
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    # ---------------------------------------------------------------- backends

    def _try(self) -> bool:
        if self.url.startswith("postgresql"):
            return self._try_pg()
        return self._try_file()

    def _try_pg(self) -> bool:
        if self._engine is None:
            self._engine = create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        conn = self._engine.connect()
        try:
            schema = conn.execute(text("SELECT current_schema()")).scalar() or ""
            self._key = _lock_number(f"{schema}:{self.name}")
            if conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self._key}).scalar():
                self._conn = conn
                return True
        except Exception:
            conn.close()
            raise
        conn.close()
        return False

    def _close_pg(self) -> None:
        if self._conn is not None:
            with contextlib.suppress(Exception):
                self._conn.close()
        self._conn = None

    def _try_file(self) -> bool:

        path = _lock_file(self.url, self.name)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._fd = fd
        return True


def _lock_number(name: str) -> int:
    """A signed 64-bit number for pg_advisory_lock, stable across processes and versions."""
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)


def _lock_file(url: str, name: str) -> Path:
    database = make_url(url).database if url.startswith("sqlite") else None
    if database and database != ":memory:":
        base = Path(database).resolve()
        return base.with_name(f"{base.name}.{name}.lock")
    data_dir = get_settings().data_dir
    data_dir.mkdir(parents=True, exist_ok=True)
    return data_dir / f"liebian.{name}.lock"
