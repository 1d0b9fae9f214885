"""`liebian serve --workers 4` on a busy machine: every worker comes up and stays up (issue #17).

uvicorn's supervisor pings each worker and replaces one that does not answer in time. A spawned
worker answers only after it has re-imported the parent's main module (the `liebian` script, so
liebian.cli) — when that imported every domain, a machine kept busy by other work made workers miss
the ping, and uvicorn killed and restarted them over and over. Here two processes burn the CPU while
the four workers start and serve for a minute; the server's log must show four workers started once
each and none replaced, and four different worker processes must have answered.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from liebian.config import get_settings
from shared_helpers import free_port

WORKERS = 4
BURNERS = 2
UNDER_LOAD_S = 60

pytestmark = [pytest.mark.slow, pytest.mark.parametrize("store", ["postgres"], indirect=True)]

# uvicorn/supervisors/multiprocess.py: a worker that missed the ping, or that was stopped
REPLACED = re.compile(
    r"Child process \[\d+\] (died|failed to start)|Terminated child process|Waiting for child process"
)
STARTED = re.compile(r"Started server process \[(\d+)\]")


def _liebian_command() -> list[str]:
    """The `liebian` script beside this Python (as users start it), else `python -m liebian.cli`."""
    script = Path(sys.executable).with_name("liebian")
    return [str(script)] if script.exists() else [sys.executable, "-m", "liebian.cli"]


def _answering_pids(url: str, connections: int = 8) -> set[int]:
    """Pids of the workers that answered `connections` health checks sent at once, each on a new
    connection (the kernel hands the connections of the shared socket to different workers)."""

    def one(_: int) -> int | None:
        try:
            r = httpx.get(f"{url}/api/v1/health", timeout=10)
        except httpx.HTTPError:
            return None
        return r.json()["pid"] if r.status_code == 200 else None

    with ThreadPoolExecutor(connections) as pool:
        return {pid for pid in pool.map(one, range(connections)) if pid is not None}


def test_four_workers_start_and_stay_up_while_the_cpu_is_busy(store: str, tmp_path: Path) -> None:
    settings = get_settings()
    env = dict(os.environ)
    env["LIEBIAN_DATA_DIR"] = str(settings.data_dir)
    env["LIEBIAN_DATABASE_URL"] = settings.database_url
    # 4 workers × 15 connections, plus this test process, stay within PostgreSQL's default 100
    env |= {"LIEBIAN_DB_POOL_SIZE": "5", "LIEBIAN_DB_MAX_OVERFLOW": "10"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    burners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(BURNERS)]
    server = None
    try:
        with log.open("w") as out:
            server = subprocess.Popen(
                [*_liebian_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)],
                env=env, stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        answered: set[int] = set()
        deadline = time.monotonic() + 180
        while not answered:
            assert server.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer within 180 s:\n{log.read_text()[-3000:]}"
            answered = _answering_pids(url, 1)
            time.sleep(0.5)
        until = time.monotonic() + UNDER_LOAD_S
        while time.monotonic() < until:
            assert server.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            answered |= _answering_pids(url)
            time.sleep(1)
        assert all(b.poll() is None for b in burners), "the CPU load stopped early"
        output = log.read_text()  # before the server is stopped: stopping logs its own lines
    finally:
        for proc in (server, *burners):
            if proc is not None:
                proc.terminate()
        for proc in (server, *burners):
            if proc is not None:
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
    replaced = [line for line in output.splitlines() if REPLACED.search(line)]
    assert not replaced, "workers were replaced under load:\n" + "\n".join(replaced)
    started = [int(pid) for pid in STARTED.findall(output)]
    assert len(started) == WORKERS, f"{len(started)} worker starts, not {WORKERS}:\n{output[-3000:]}"
    assert answered == set(started), f"answered by {sorted(answered)}; workers started: {sorted(started)}"
