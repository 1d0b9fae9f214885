"""A Spark standalone cluster on this machine: a master and 1-core, 1 GiB workers started from the
installed pyspark on 127.0.0.1 (the tests' cluster and the scale benchmark's). Not used by the product
at run time: a deployment points `LIEBIAN_SPARK_MASTER` at its own cluster (docs/deploy.md)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_cluster(
    work: Path, workers: int = 2, start_seconds: float = 180
) -> tuple[str, list[subprocess.Popen]]:
    """`spark://127.0.0.1:<port>` of a started master with `workers` registered, and the processes
    (stop them with `stop_cluster`). Logs and the workers' folders go under `work`; a cluster that does
    not come up within `start_seconds` is stopped and the logs' tails raised."""
    import pyspark  # optional extra: only the callers that start a cluster need it

    home = Path(pyspark.__file__).parent
    work.mkdir(parents=True, exist_ok=True)
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
           "--memory", "1g", "--webui-port", "0"] for _ in range(workers)],
    ]  # fmt: skip
    logs = [work / f"{'master' if i == 0 else f'worker{i}'}.log" for i in range(len(commands))]
    procs: list[subprocess.Popen] = []

    def wait(what: str, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + start_seconds
        while not done():
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                stop_cluster(procs)
                tails = "\n".join(f"--- {log}\n{log.read_text()[-2000:]}" for log in logs if log.exists())
                raise RuntimeError(f"the Spark cluster did not start ({what}):\n{tails}")
            time.sleep(0.2)

    for i, (command, log) in enumerate(zip(commands, logs, strict=True)):
        with log.open("wb") as sink:
            procs.append(
                subprocess.Popen(
                    command, env=env, stdout=sink, stderr=subprocess.STDOUT, start_new_session=True
                )
            )
        if i == 0:  # workers register with a master that listens
            wait("master", lambda: "Starting Spark master" in logs[0].read_text())
    wait("workers", lambda: logs[0].read_text().count("Registering worker") >= workers)
    return url, procs


def stop_cluster(procs: list[subprocess.Popen]) -> None:
    """Workers first, then the master; each in its own process group (its JVM and children)."""
    for proc in reversed(procs):
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
    for proc in procs:
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
