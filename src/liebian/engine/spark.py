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
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")


@lru_cache(maxsize=1)
def spark_session():
    try:
        # deferred: PySpark is optional (the spark extra) and starts a JVM
        from pyspark.sql import SparkSession
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise RuntimeError("the Spark engine needs `pip install liebian[spark]` and Java 17") from exc
    session = (
        SparkSession.builder.master(get_settings().spark_master)
        .appName("liebian")
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.sql.shuffle.partitions", os.environ.get("LIEBIAN_SPARK_SHUFFLE_PARTITIONS", "4"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .getOrCreate()
    )
    session.sparkContext.setLogLevel("ERROR")
    return session


@contextmanager
def spark_backend(parquet_dir: Path) -> Iterator[ibis.BaseBackend]:
    if not (parquet_dir / "events.parquet").exists():
        raise FileNotFoundError(
            f"the Spark engine reads Parquet from {parquet_dir}, which has no events.parquet: "
            "run `liebian analyze export-parquet` (or write the tables there) first"
        )
    session = spark_session()
    backend = ibis.pyspark.connect(session)
    for table in warehouse.TABLES:
        path = parquet_dir / f"{table}.parquet"
        if path.exists():
            backend.read_parquet(str(path), table_name=table)
    yield backend
