"""Compiled analyses kept per process (DuckDB), so that a repeated analysis skips Ibis.

Building an analysis's Ibis expression and compiling it to SQL costs about 0.1–0.3 s of Python per
call (issue #23's profile), as much as the query itself on a million events. An analysis that asks
for it (`Frame.execute_cached`) is built and compiled once per key — what shapes its SQL: its own
parameters, the frame's filters and configuration — and the warehouse's schema (tables, columns and
their types: an analysis reads the columns it finds). The SQL names the tables only, so it holds
for every connection to a warehouse of that schema (each request opens its own, engine/backend.py);
later calls run the kept SQL and convert the result the way Ibis's own `execute` does, so the
values are the same. Only for DuckDB: Spark runs every call through Ibis. Expressions holding
in-memory tables (a large segment) are not kept: Ibis registers those at execution.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import TYPE_CHECKING, Any

from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.operations as ops
    import ibis.expr.types as ir
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ops = lazy_import("ibis.expr.operations")
    pd = lazy_import("pandas")

MAX_KEPT = 256  # a dashboard asks for a few dozen shapes; each kept entry is a few tens of KiB
# One row that changes with any table, view, column or type of the connection's catalogue.
_SCHEMA = (
    "SELECT count(*), sum(hash(database_name, schema_name, table_name, column_name, data_type)) "
    "FROM duckdb_columns()"
)

_kept: OrderedDict[Hashable, tuple[ir.Expr, str]] = OrderedDict()
_lock = threading.Lock()


def execute(backend: Any, key: Hashable, build: Callable[[], ir.Expr]) -> pd.DataFrame:
    """The result of `build()` on `backend`, its SQL compiled once per `key` and schema (DuckDB)."""
    if getattr(backend, "name", None) != "duckdb":
        return backend.execute(build())
    con = backend.con
    key = (key, tuple(con.execute(_SCHEMA).fetchall()[0]))
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
    if found is None:
        expr = build()
        if expr.op().find(ops.InMemoryTable):  # registered by Ibis at execution
            return backend.execute(expr)
        found = (expr, backend.compile(expr.as_table()))
        with _lock:
            _kept[key] = found
            while len(_kept) > MAX_KEPT:
                _kept.popitem(last=False)
    expr, sql = found
    return _run(con, expr, sql)


def _run(con: Any, expr: ir.Expr, sql: str) -> pd.DataFrame:
    """`sql` (compiled from `expr`) as Ibis's DuckDB `execute` returns it (ibis/backends/duckdb)."""
    import pyarrow.types as pat
    from ibis.backends.duckdb.converter import DuckDBPandasData

    table = con.sql(sql).to_arrow_table()
    df = pd.DataFrame(
        {
            name: (
                col.to_pylist()
                if pat.is_nested(col.type) or pat.is_dictionary(col.type) or col.null_count
                else col.to_pandas()
            )
            for name, col in zip(table.column_names, table.columns, strict=True)
        }
    )
    df = DuckDBPandasData.convert_table(df, expr.as_table().schema())
    return expr.__pandas_result__(df)
