"""`INSERT … ON CONFLICT` for the store's dialect.

SQLAlchemy's PostgreSQL package imports the dialects of all its drivers (psycopg, asyncpg, pg8000 …),
some 40 ms: a store on SQLite, and every CLI command and the app's import with it, need not pay for
it (start-up time). `sqlalchemy.dialects.sqlite` is imported anyway with a SQLite engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.dialects.sqlite import insert as sqlite_insert


def upsert_insert(pg: bool) -> Callable[..., Any]:
    """The `insert` whose statement has `on_conflict_do_nothing`/`_do_update`: PostgreSQL's or SQLite's."""
    if pg:
        # deferred: only a PostgreSQL store needs it (start-up time, above)
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert
    return sqlite_insert
