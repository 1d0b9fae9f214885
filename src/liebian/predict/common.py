"""Shared pieces of the predictive models: the error type, progress display, data snapshots."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from datetime import datetime
from typing import TYPE_CHECKING, Any, overload

from threadpoolctl import threadpool_limits

from liebian.errors import Invalid
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    from rich import console as rich_console
    from rich import progress as rich_progress
else:  # deferred for start-up time: imported on first use (liebian/lazy.py); Rich draws the
    # CLI's progress bars only, and the server (which imports this module) never shows one
    duckdb = lazy_import("duckdb")
    rich_console = lazy_import("rich.console")
    rich_progress = lazy_import("rich.progress")


class PredictError(Invalid, ValueError):
    """Bad input to a model (the message names the field and the reason); HTTP 422, CLI exit 2.
    The router names the parameter at fault (`errors.blame`); `detail` is "invalid request"."""

    summary = "invalid request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__("invalid", message, field=field)


# Who else wants to hear about a fit's steps (the console's progress display); per thread/task.
_STEP_LISTENER: ContextVar[Callable[[str, int, int], None] | None] = ContextVar("step_listener", default=None)


@contextmanager
def listen_steps(callback: Callable[[str, int, int], None]) -> Iterator[None]:
    """Call `callback(label, done, total)` after every step of the fits run inside this block."""
    token = _STEP_LISTENER.set(callback)
    try:
        yield
    finally:
        _STEP_LISTENER.reset(token)


class _Steps:
    def __init__(self, progress: rich_progress.Progress | None, task: Any, total: int = 0) -> None:
        self._progress, self._task, self.total, self.done = progress, task, total, 0

    def step(self, label: str) -> None:
        self.done += 1
        if self._progress is not None:
            self._progress.update(self._task, advance=1, description=label)
        listener = _STEP_LISTENER.get()
        if listener is not None:
            listener(label, self.done, self.total)


@contextmanager
def fit_progress(title: str, total: int, show: bool = True) -> Iterator[_Steps]:
    """A Rich progress bar on stderr for one fit (`show=False` for the API and tests)."""
    if not show:
        yield _Steps(None, None, total)
        return
    with rich_progress.Progress(
        rich_progress.TextColumn(f"[bold]{title}[/bold]"),
        rich_progress.BarColumn(),
        rich_progress.TextColumn("{task.completed}/{task.total} {task.description}"),
        rich_progress.TimeElapsedColumn(),
        console=rich_console.Console(stderr=True),  # as liebian.output's err_console
        transient=False,
    ) as progress:
        task = progress.add_task("", total=total)
        yield _Steps(progress, task, total)


def single_thread() -> AbstractContextManager[object]:
    """Run scikit-learn's OpenMP/BLAS code on one thread.

    The fits here are small (thousands of rows): on shared cores OpenMP's spinning threads made
    the churn fit 4× and K-Means 6× slower than one thread (measured, 2 busy cores).
    """
    return threadpool_limits(limits=1)


def aggregate_row(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple[Any, ...]:
    """The one row of an aggregate query (a SELECT of aggregates always has exactly one)."""
    row = con.execute(sql, params).fetchone()
    if row is None:
        raise RuntimeError(f"an aggregate query returned no row: {sql}")
    return row


def data_snapshot(con: duckdb.DuckDBPyConnection) -> dict[str, Any]:
    """What a model was fitted on: row counts, max event time and a content hash of the ids.

    The hash folds every event/order id (and order status/amount) with bit_xor, so it does not
    depend on row order and changes when any row is added, removed or altered.
    """
    counts: dict[str, int] = {}
    max_ts: dict[str, str | None] = {}
    parts: list[str] = []
    for table, id_expr in (
        ("events", "event_id"),
        ("orders", "order_id || status || CAST(amount_fen AS VARCHAR)"),
        ("referral_edges", "CAST(inviter_person_id AS VARCHAR) || '>' || CAST(invitee_person_id AS VARCHAR)"),
    ):
        n, ts, h = aggregate_row(
            con, f"SELECT count(*), max(ts), coalesce(bit_xor(hash({id_expr})), 0) FROM {table}"
        )
        counts[table] = int(n)
        max_ts[table] = ts.isoformat() if isinstance(ts, datetime) else None
        parts.append(f"{table}:{n}:{h}")
    digest = hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]
    return {"rows": counts, "max_ts": max_ts, "hash": digest}


@overload
def jsonable(value: Mapping[str, Any]) -> dict[str, Any]: ...
@overload
def jsonable(value: list[Any] | tuple[Any, ...]) -> list[Any]: ...


def jsonable(value: Mapping[str, Any] | list[Any] | tuple[Any, ...]) -> dict[str, Any] | list[Any]:
    """Numpy/pandas scalars and containers as plain JSON values (NaN → None)."""
    plain: dict[str, Any] | list[Any] = json.loads(
        json.dumps(value, default=_default, allow_nan=True).replace("NaN", "null")
    )
    return plain


def _default(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, datetime):
        return value.isoformat()
    return str(value)
