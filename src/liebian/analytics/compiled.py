"""Compiled analyses kept per process and on disk (DuckDB), so that a repeated analysis skips Ibis.

Building an analysis's Ibis expression and compiling it to SQL costs about 0.1–0.3 s of Python per
call (issue #23's profile), as much as the query itself on a million events. An analysis that asks
for it (`Frame.execute_cached`, `Frame.execute_cached_rows`) is built and compiled once per key —
what shapes its SQL: its own parameters, the frame's filters and configuration — and the
warehouse's schema (tables, columns and their types: an analysis reads the columns it finds). The
SQL names the tables only, so it holds for every connection to a warehouse of that schema (each
request opens its own, engine/backend.py); later calls run the kept SQL and convert the result the
way Ibis's own `execute` does, so the values are the same. Only for DuckDB: Spark runs every call
through Ibis. Expressions holding in-memory tables (a large segment) are not kept: Ibis registers
those at execution.

A CLI command is a new process each time, so the SQL is also kept on disk, under the data
directory's `cache/sql/`, one file per key, schema and code (`_material`: liebian's version and the
analyses' source files, Ibis's, sqlglot's and DuckDB's): a file written for another schema or
another code is never read, only pruned. `execute_cached_rows` on such a file runs its SQL on the
DuckDB connection and returns plain rows, without importing Ibis, PyArrow or pandas (~0.8 s of a
command's start-up). A file that cannot be read, or whose SQL fails, is compiled again.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import importlib.util
import json
import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from datetime import date, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import liebian
from liebian.config import get_settings
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import ibis
    import ibis.expr.operations as ops
    import ibis.expr.types as ir
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    ibis = lazy_import("ibis")
    ops = lazy_import("ibis.expr.operations")
    pd = lazy_import("pandas")

MAX_KEPT = 256  # a dashboard asks for a few dozen shapes; each kept entry is a few tens of KiB
# One row that changes with any table, view, column or type of the connection's catalogue.
_SCHEMA = (
    "SELECT count(*), sum(hash(database_name, schema_name, table_name, column_name, data_type)) "
    "FROM duckdb_columns()"
)
FORMAT = 1  # of the files on disk: a new format is a new key, never a misread file
CACHE_DIR = Path("cache") / "sql"  # under the data directory

# key (with the schema) -> (the expression, or None when the SQL came from disk; its SQL)
_kept: OrderedDict[Hashable, tuple[ir.Expr | None, str]] = OrderedDict()
_lock = threading.Lock()

Row = dict[str, Any]


class _NotKeptOnDisk(TypeError):
    """A key holding a value with no stable text (kept in this process only)."""


def execute(backend: Any, key: Hashable, build: Callable[[], ir.Expr]) -> pd.DataFrame:
    """The result of `build()` on `backend`, its SQL compiled once per `key` and schema (DuckDB)."""
    if getattr(backend, "name", None) != "duckdb":
        return backend.execute(build())
    con = backend.con
    key = (key, _schema(con))
    found = _recall(key)
    if found is None or found[0] is None:  # a frame needs the expression's types to convert
        expr = build()
        if expr.op().find(ops.InMemoryTable):  # registered by Ibis at execution
            return backend.execute(expr)
        found = _keep(key, expr, found[1] if found else backend.compile(expr.as_table()))
    expr, sql = found
    return _run(con, expr, sql)


def rows(backend: Any, key: Hashable, build: Callable[[], ir.Expr]) -> list[Row]:
    """The rows of `build()` on `backend` as dicts of column -> value, the SQL compiled once per
    `key`, schema and code and kept on disk (DuckDB). The values are DuckDB's Python values (numbers,
    str, None for NULL), or a pandas frame's cells where Ibis executes (Spark, in-memory tables):
    callers read them through `clean` / `as_int`, which give the same Python values for both."""
    if getattr(backend, "name", None) != "duckdb":
        return _frame_rows(backend.execute(build()))
    con = backend.con
    key = (key, _schema(con))
    found = _recall(key)
    if found is not None:
        return _fetch(con, found[1])
    disk = _disk(key)
    sql = _read(*disk) if disk else None
    if disk and sql is not None:
        try:
            result = _fetch(con, sql)
        except duckdb.Error:  # not what this code would write: compiled again below
            _unlink(disk[0])
        else:
            _keep(key, None, sql)
            return result
    expr = build()
    if expr.op().find(ops.InMemoryTable):  # registered by Ibis at execution
        return _frame_rows(backend.execute(expr))
    _, sql = _keep(key, expr, backend.compile(expr.as_table()))
    if disk:
        _write(*disk, sql)
    return _fetch(con, sql)


def _schema(con: Any) -> tuple:
    return tuple(con.execute(_SCHEMA).fetchall()[0])


def _recall(key: Hashable) -> tuple[ir.Expr | None, str] | None:
    with _lock:
        found = _kept.get(key)
        if found is not None:
            _kept.move_to_end(key)
        return found


def _keep(key: Hashable, expr: ir.Expr | None, sql: str) -> tuple[ir.Expr | None, str]:
    with _lock:
        _kept[key] = (expr, sql)
        while len(_kept) > MAX_KEPT:
            _kept.popitem(last=False)
    return expr, sql


def _fetch(con: Any, sql: str) -> list[Row]:
    cursor = con.execute(sql)
    names = [column[0] for column in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _frame_rows(df: pd.DataFrame) -> list[Row]:
    return [{str(k): v for k, v in r.items()} for r in df.to_dict(orient="records")]


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


# --- on disk --------------------------------------------------------------------------------------
def _material(key: Hashable) -> str:
    """The text that names a kept SQL: the key (with the schema) and the code that wrote the SQL."""
    return json.dumps([FORMAT, _canonical(key), _code()], ensure_ascii=False, separators=(",", ":"))


def _canonical(value: Any) -> Any:
    """`value` as JSON data that is the same in every process (a set's order, a date's type)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, tuple | list):
        return [_canonical(v) for v in value]
    if isinstance(value, frozenset | set):
        return {"set": sorted((_canonical(v) for v in value), key=json.dumps)}
    if isinstance(value, date | time):  # datetime is a date
        return {type(value).__name__: value.isoformat()}
    if isinstance(value, timedelta):
        return {"timedelta": [value.days, value.seconds, value.microseconds]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        fields = {f.name: _canonical(getattr(value, f.name)) for f in dataclasses.fields(value)}
        return {type(value).__qualname__: fields}
    raise _NotKeptOnDisk(type(value).__name__)


@functools.cache
def _code() -> list:
    """What writes an analysis's SQL: liebian (its version and the analyses' source files: a checkout
    changes without a new version), Ibis, sqlglot (their package files, rewritten by an upgrade;
    read without importing them) and DuckDB."""
    files = sorted(Path(__file__).parent.glob("*.py"))
    for name in ("ibis", "sqlglot"):
        spec = importlib.util.find_spec(name)
        if spec is not None and spec.origin:
            files.append(Path(spec.origin))
    stats = [[f.name, f.stat().st_size, f.stat().st_mtime_ns] for f in files]
    return [liebian.__version__, duckdb.__version__, stats]


def _disk(key: Hashable) -> tuple[Path, str] | None:
    """The file of `key` and the text it is named after, or None for a key with no stable text."""
    try:
        material = _material(key)
    except _NotKeptOnDisk:
        return None
    digest = hashlib.sha256(material.encode()).hexdigest()
    return get_settings().data_dir / CACHE_DIR / f"{digest}.json", material


def _read(path: Path, material: str) -> str | None:
    """The SQL kept in `path` for `material`, or None (absent, unreadable, or another key's: the name
    is a hash of the key, the file holds the key itself)."""
    try:
        kept = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(kept, dict) and kept.get("material") == material and isinstance(kept.get("sql"), str):
        return kept["sql"]
    return None


def _write(path: Path, material: str, sql: str) -> None:
    """Keep `sql` in `path` (written whole, then renamed: a reader never sees half a file); the oldest
    files beyond `MAX_KEPT` are removed. Best effort: a data directory that cannot be written to
    leaves the SQL kept in this process only."""
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=path.parent, delete=False) as f:
            tmp = Path(f.name)
            json.dump({"material": material, "sql": sql}, f, ensure_ascii=False)
        os.replace(tmp, path)
        kept = sorted(path.parent.glob("*.json"), key=lambda p: p.stat().st_mtime_ns)
    except OSError:
        if tmp is not None:
            _unlink(tmp)
        return
    for old in kept[:-MAX_KEPT]:
        _unlink(old)


def _unlink(path: Path) -> None:
    try:
        path.unlink()
    except OSError:
        return
