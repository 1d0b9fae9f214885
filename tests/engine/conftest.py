"""A Spark standalone cluster for the tests (only under LIEBIAN_TEST_SPARK=1): a master and two
workers from the installed pyspark on 127.0.0.1, started once per test session and stopped at its
end. Tests point the engine at it with `spark_master` (see test_engine_spark_cluster.py)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Iterator

import pytest

from liebian.engine.spark_cluster import start_cluster, stop_cluster

SPARK_ENABLED = os.environ.get("LIEBIAN_TEST_SPARK") == "1" and shutil.which("java") is not None
SPARK_SKIP = "Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH (CI sets both)"
WORKERS = 2
START_SECONDS = 120


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`spark://127.0.0.1:<port>` of a running standalone master with two 1-core, 1 GB workers."""
    if not SPARK_ENABLED:
        pytest.skip(SPARK_SKIP)
    work = tmp_path_factory.mktemp("spark-cluster")
    started = time.monotonic()
    url, procs = start_cluster(work, WORKERS, START_SECONDS)
    print(f"\nSpark standalone cluster {url} up in {time.monotonic() - started:.1f} s", file=sys.stderr)
    try:
        yield url
    finally:
        stop_cluster(procs)
