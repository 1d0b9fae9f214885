"""The analytics engine seam: analyses are Ibis expressions; this module hands them a backend.

DuckDB (embedded, default) reads the warehouse file. Spark (scale-out, `LIEBIAN_ENGINE=spark`)
reads the same tables as Parquet: the event store the ingest pipeline commits to when
`LIEBIAN_EVENT_STORE` is set (engine/eventstore.py), else the files `export_parquet` wrote.
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from liebian.config import get_settings
from liebian.engine import eventstore, warehouse
from liebian.engine.spark import IBIS_COMPILERS, spark_backend, spark_store_backend
from liebian.lazy import collector_paused, defer_package, lazy_import

if TYPE_CHECKING:
    import duckdb
    import ibis
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")

# Ibis's DuckDB backend imports these itself on first use: imported ahead, with the collector paused
# (liebian/lazy.py; start-up time of a command). PyArrow for a table's schema, pandas for a result
# (not for an analysis that only compiles its SQL, analytics/compiled.py: ~0.4 s of CPU).
_SCHEMA_LIBRARIES = ("pyarrow",)
_RESULT_LIBRARIES = ("pandas",)


def parquet_dir() -> Path:
    return get_settings().data_dir / "parquet"


def export_parquet(target: Path | None = None) -> dict[str, Path]:
    """Write every warehouse table as Parquet (the form both DuckDB and Spark read)."""
    target = target or parquet_dir()
    target.mkdir(parents=True, exist_ok=True)
    written = {}
    with warehouse.connect(read_only=True) as con:
        for table in warehouse.TABLES:
            out = target / f"{table}.parquet"
            con.execute(f"COPY {table} TO '{out}' (FORMAT parquet)")
            written[table] = out
    return written


@contextmanager
def analytics_backend(engine: str | None = None) -> Iterator[ibis.BaseBackend]:
    """An Ibis backend whose tables are events, orders, messages, referral_edges, identity_map."""
    engine = engine or get_settings().engine
    if engine == "duckdb":
        with warehouse.connect(read_only=True) as con:
            yield cast("ibis.BaseBackend", DuckDBBackend(con))
    elif engine == "spark" and eventstore.configured():
        with spark_store_backend(eventstore.snapshot()) as backend:
            yield backend
    elif engine == "spark":
        with spark_backend(parquet_dir()) as backend:
            yield backend
    else:  # pragma: no cover - settings validation prevents it
        raise ValueError(f"unknown analytics engine {engine!r}")


class DuckDBBackend:
    """Ibis's DuckDB backend on `con`, made when first used: an analysis whose SQL is kept
    (analytics/compiled.py) runs on `con` itself, without importing Ibis, PyArrow or pandas (a CLI
    command's start-up time). Every other attribute is Ibis's backend's."""

    name = "duckdb"

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self.con = con
        self._ibis: ibis.BaseBackend | None = None

    @property
    def ibis(self) -> ibis.BaseBackend:
        if self._ibis is None:
            defer_package(IBIS_COMPILERS)  # only DuckDB's SQL compiler is imported (liebian/lazy.py)
            _import_ahead(_SCHEMA_LIBRARIES)
            self._ibis = ibis.duckdb.from_connection(self.con)
        return self._ibis

    def execute(self, expr: Any, **kwargs: Any) -> Any:
        _import_ahead(_RESULT_LIBRARIES)
        return self.ibis.execute(expr, **kwargs)

    def __getattr__(self, attr: str) -> Any:  # what this class lacks: Ibis's (table, execute, …)
        if attr.startswith("__") or attr == "_ibis":  # (copy, pickle: before __init__ ran)
            raise AttributeError(attr)
        return getattr(self.ibis, attr)


def _import_ahead(names: tuple[str, ...]) -> None:
    if all(name in sys.modules for name in names):
        return
    with collector_paused():
        for name in names:
            importlib.import_module(name)
