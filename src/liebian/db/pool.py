"""Connection pools that fit the PostgreSQL server: sizes derived from its `max_connections` and the
number of server workers, checked at start, and a 503 (never a 500) when they are all in use.

Budget = max_connections − superuser_reserved_connections − settings.db_reserved_connections (left
to the CLI, cron jobs, psql and migrations). Each of the `settings.workers` processes (`liebian
serve --workers N` sets it) gets budget ÷ workers connections, at most MAX_PER_PROCESS: a pool of up
to DEFAULT_POOL_SIZE kept open and the rest as overflow opened at peaks. Explicit `db_pool_size` /
`db_max_overflow` are used as given, and refused at start when workers × (size + overflow) exceed
the budget. A request that finds every connection in use waits `db_pool_timeout` seconds, then gets
503 with Retry-After (`unavailable_error`).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import create_engine, exc, text
from sqlalchemy.pool import NullPool

from liebian.config import Settings
from liebian.errors import Unavailable

DEFAULT_POOL_SIZE = 10
DEFAULT_MAX_OVERFLOW = 20
MAX_PER_PROCESS = DEFAULT_POOL_SIZE + DEFAULT_MAX_OVERFLOW
RETRY_AFTER_S = 2


class PoolConfigError(Unavailable):
    """The configured pools cannot fit the server's connections (the message says what to change)."""

    def __init__(self, message: str):
        super().__init__("unavailable", message)


@dataclass(frozen=True)
class ServerLimits:
    max_connections: int
    superuser_reserved: int


@dataclass(frozen=True)
class PoolPlan:
    pool_size: int
    max_overflow: int
    workers: int
    budget: int  # connections the workers may use together

    @property
    def per_process(self) -> int:
        return self.pool_size + self.max_overflow

    def describe(self, limits: ServerLimits, reserved: int) -> str:
        return (
            f"PostgreSQL max_connections {limits.max_connections} (superuser-reserved "
            f"{limits.superuser_reserved}, {reserved} left to the CLI and jobs): {self.workers} worker(s) × "
            f"({self.pool_size} pooled + {self.max_overflow} overflow) = {self.workers * self.per_process} "
            f"connections of {self.budget}"
        )


def server_limits(url: str) -> ServerLimits:
    """`SHOW max_connections` (and the superuser reserve) on the server of `url`, on one connection."""
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as con:
            max_connections = int(con.execute(text("SHOW max_connections")).scalar_one())
            reserved = int(con.execute(text("SHOW superuser_reserved_connections")).scalar_one())
    finally:
        engine.dispose()
    return ServerLimits(max_connections, reserved)


def plan_pool(settings: Settings, limits: ServerLimits) -> PoolPlan:
    """The pool of one process; PoolConfigError when the settings cannot fit the server."""
    workers = settings.workers
    budget = limits.max_connections - limits.superuser_reserved - settings.db_reserved_connections
    explicit = settings.db_pool_size is not None or settings.db_max_overflow is not None
    if explicit:
        size = settings.db_pool_size if settings.db_pool_size is not None else DEFAULT_POOL_SIZE
        overflow = settings.db_max_overflow if settings.db_max_overflow is not None else DEFAULT_MAX_OVERFLOW
        plan = PoolPlan(size, overflow, workers, budget)
        if workers * plan.per_process > budget:
            raise PoolConfigError(
                f"{workers} worker(s) × (db_pool_size {size} + db_max_overflow {overflow}) = "
                f"{workers * plan.per_process} connections, but PostgreSQL allows {budget} "
                f"(max_connections {limits.max_connections} − {limits.superuser_reserved} superuser-reserved − "
                f"{settings.db_reserved_connections} db_reserved_connections): lower LIEBIAN_DB_POOL_SIZE / "
                f"LIEBIAN_DB_MAX_OVERFLOW or the workers, unset them to derive the sizes, or raise the "
                f"server's max_connections"
            )
        return plan
    per_process = min(MAX_PER_PROCESS, budget // workers)
    if per_process < 1:
        raise PoolConfigError(
            f"PostgreSQL allows {budget} connections to liebian (max_connections {limits.max_connections} − "
            f"{limits.superuser_reserved} superuser-reserved − {settings.db_reserved_connections} "
            f"db_reserved_connections): not one for each of {workers} workers; use fewer workers, lower "
            f"LIEBIAN_DB_RESERVED_CONNECTIONS or raise the server's max_connections"
        )
    size = min(DEFAULT_POOL_SIZE, per_process)
    return PoolPlan(size, per_process - size, workers, budget)


_BUSY_MARKERS = (
    "too many clients",
    "remaining connection slots are reserved",
    "connection slots are reserved",
    "database is locked",
)


def unavailable_error(error: Exception) -> Unavailable | None:
    """The 503 for a store that is busy (every pooled connection in use, the server out of
    connections, SQLite's lock held too long); None for any other error."""
    if isinstance(error, exc.TimeoutError):
        reason = "every database connection is in use; retry shortly"
    elif isinstance(error, exc.OperationalError) and any(m in str(error).lower() for m in _BUSY_MARKERS):
        reason = "the database has no free connection; retry shortly"
    else:
        return None
    busy = Unavailable("unavailable", reason)
    busy.retry_after = RETRY_AFTER_S
    return busy
