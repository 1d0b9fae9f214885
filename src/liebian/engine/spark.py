"""PySpark (local mode in tests, a cluster in production) behind Ibis."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from liebian.config import get_settings
from liebian.engine import warehouse
from liebian.lazy import defer_package, lazy_import

if TYPE_CHECKING:
    import ibis
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")

# Ibis's package of SQL compilers: its __init__ imports all ~20 dialects' (start-up time)
IBIS_COMPILERS = "ibis.backends.sql.compilers"


@lru_cache(maxsize=1)
def spark_session():
    try:
        # deferred: PySpark is optional (the spark extra) and starts a JVM
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the Spark engine needs `pip install liebian[spark]` and Java 17") from exc
    master = get_settings().spark_master
    builder = SparkSession.builder.master(master)
    if master.startswith("spark://127.0.0.1:"):  # a cluster on this machine calls the driver back here
        builder = builder.config("spark.driver.host", "127.0.0.1")
    session = (
        builder.appName("liebian")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", os.environ.get("LIEBIAN_SPARK_SHUFFLE_PARTITIONS", "4"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


def stop_spark_session() -> None:
    """Stop the session (its executors on a cluster); the next `spark_session()` starts a new one
    with the settings of then (e.g. another `spark_master`)."""
    if spark_session.cache_info().currsize:
        spark_session().stop()
    spark_session.cache_clear()


def read_store_table(session, files: list[str]):
    """A Spark DataFrame of one table's files in the event store (the manifest's list, as URLs or
    paths; the hive partition column `day` left out so the columns are the warehouse's)."""
    frame = session.read.parquet(*files)
    return frame.drop("day") if "day" in frame.columns else frame


@contextmanager
def spark_store_backend(files: dict[str, list[str]]) -> Iterator[ibis.BaseBackend]:
    """Spark over the event store: `files` is `eventstore.snapshot()`, one manifest's file list."""
    if "events" not in files:
        raise FileNotFoundError("the event store has no events table yet: import events first")
    session = spark_session()
    defer_package(IBIS_COMPILERS)  # only Spark's SQL compiler is imported (liebian/lazy.py)
    backend = ibis.pyspark.connect(session)
    for table, urls in files.items():
        read_store_table(session, urls).createOrReplaceTempView(table)
    yield backend


@contextmanager
def spark_backend(parquet_dir: Path) -> Iterator[ibis.BaseBackend]:
    if not (parquet_dir / "events.parquet").exists():
        raise FileNotFoundError(
            f"the Spark engine reads Parquet from {parquet_dir}, which has no events.parquet: "
            "set LIEBIAN_EVENT_STORE (imports then write the store Spark reads), or run "
            "`liebian analyze export-parquet` first"
        )
    session = spark_session()
    defer_package(IBIS_COMPILERS)  # only Spark's SQL compiler is imported (liebian/lazy.py)
    backend = ibis.pyspark.connect(session)
    for table in warehouse.TABLES:
        path = parquet_dir / f"{table}.parquet"
        if path.exists():
            backend.read_parquet(str(path), table_name=table)
    yield backend
