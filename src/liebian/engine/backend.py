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
from typing import TYPE_CHECKING

from liebian.config import get_settings
from liebian.engine import eventstore, warehouse
from liebian.engine.spark import IBIS_COMPILERS, spark_backend, spark_store_backend
from liebian.lazy import collector_paused, defer_package, lazy_import

if TYPE_CHECKING:
    import ibis
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")

# Ibis's DuckDB backend imports these itself on first use (PyArrow for a table's schema, pandas for
# a result): imported ahead, with the collector paused (liebian/lazy.py; start-up time of a command).
_RESULT_LIBRARIES = ("pyarrow", "pandas")


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
        defer_package(IBIS_COMPILERS)  # only DuckDB's SQL compiler is imported (liebian/lazy.py)
        _import_result_libraries()
        with warehouse.connect(read_only=True) as con:
            yield ibis.duckdb.from_connection(con)
    elif engine == "spark" and eventstore.configured():
        with spark_store_backend(eventstore.snapshot()) as backend:
            yield backend
    elif engine == "spark":
        with spark_backend(parquet_dir()) as backend:
            yield backend
    else:  # pragma: no cover - settings validation prevents it
        raise ValueError(f"unknown analytics engine {engine!r}")


def _import_result_libraries() -> None:
    if all(name in sys.modules for name in _RESULT_LIBRARIES):
        return
    with collector_paused():
        for name in _RESULT_LIBRARIES:
            importlib.import_module(name)
