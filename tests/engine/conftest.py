"""A Spark standalone cluster for the tests (only under LIEBIAN_TEST_SPARK=1): a master and two
workers from the installed pyspark on 127.0.0.1, started once per test session and stopped at its
end. Tests point the engine at it with `spark_master` (see test_engine_spark_cluster.py)."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

SPARK_ENABLED = os.environ.get("LIEBIAN_TEST_SPARK") == "1" and shutil.which("java") is not None
SPARK_SKIP = "Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH (CI sets both)"
WORKERS = 2
START_SECONDS = 120


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait(what: str, done, procs: list[subprocess.Popen], logs: list[Path]) -> None:
    deadline = time.monotonic() + START_SECONDS
    while not done():
        if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
            tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs if log.exists())
            raise RuntimeError(f"the Spark cluster did not start ({what}):\n{tails}")
        time.sleep(0.2)


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """`spark://127.0.0.1:<port>` of a running standalone master with two 1-core, 1 GB workers."""
    if not SPARK_ENABLED:
        pytest.skip(SPARK_SKIP)
    import pyspark

    home = Path(pyspark.__file__).parent
    work = tmp_path_factory.mktemp("spark-cluster")
    port = _free_port()
    url = f"spark://127.0.0.1:{port}"
    env = {
        **os.environ,
        "SPARK_HOME": str(home),
        "SPARK_LOCAL_IP": "127.0.0.1",
        "SPARK_WORKER_DIR": str(work / "work"),
        "PYSPARK_PYTHON": sys.executable,  # the executors' Python workers: this interpreter and path
        "PYTHONPATH": os.pathsep.join(p for p in sys.path if p),
    }
    spark_class = str(home / "bin" / "spark-class")
    commands = [
        [spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
         "--webui-port", "0"],
        *[[spark_class, "org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "1",
           "--memory", "1g", "--webui-port", "0"] for _ in range(WORKERS)],
    ]  # fmt: skip
    logs = [work / f"{'master' if i == 0 else f'worker{i}'}.log" for i in range(len(commands))]
    procs: list[subprocess.Popen] = []
    started = time.monotonic()
    try:
        for i, (command, log) in enumerate(zip(commands, logs, strict=True)):
            with log.open("wb") as out:
                procs.append(
                    subprocess.Popen(
                        command, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
                    )
                )
            if i == 0:  # workers register with a master that listens
                _wait("master", lambda: "Starting Spark master" in logs[0].read_text(), procs, logs)
        _wait(
            "workers",
            lambda: logs[0].read_text().count("Registering worker") >= WORKERS,
            procs,
            logs,
        )
        print(f"\nSpark standalone cluster {url} up in {time.monotonic() - started:.1f} s", file=sys.stderr)
        yield url
    finally:
        for proc in reversed(procs):  # workers first, then the master; each in its own process group
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
