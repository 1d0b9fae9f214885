"""Stateless API workers: the concurrency guarantees of the campaign engine with several uvicorn
worker processes against one PostgreSQL store (issue #10), and one scheduler among them.

The concurrency tests of test_campaigns_concurrency.py run unchanged against `uvicorn --workers 4`:
200 duplicate reports of one order → one reward, 100 claims on a budget of 10 → 10, a per-inviter
cap of 3 and an IP cap hold. Requests of one burst land on different processes (the kernel spreads
the connections of the shared socket over the workers), so only the store's conditional updates,
unique keys and row locks can keep them — no in-process lock or cache can.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from test_campaigns_concurrency import (  # noqa: F401 - collected here with this module's `client`
    test_100_claims_on_a_budget_of_10_give_exactly_10,
    test_200_duplicate_reports_of_one_order_give_one_reward,
    test_per_inviter_cap_of_3_holds,
    test_per_ip_cap_holds_under_concurrent_accepts,
)

from liebian.config import get_settings
from shared_helpers import uvicorn_server

WORKERS = 4
pytestmark = pytest.mark.parametrize("store", ["postgres"], indirect=True)


def _children(pid: int) -> list[int]:
    """The worker processes of a uvicorn supervisor (Linux /proc): its children started by
    multiprocessing's spawn — not helpers such as multiprocessing's resource tracker."""
    path = Path(f"/proc/{pid}/task/{pid}/children")
    children = [int(p) for p in path.read_text().split()] if path.exists() else []
    workers = []
    for child in children:
        try:
            cmdline = Path(f"/proc/{child}/cmdline").read_bytes()
        except FileNotFoundError:  # gone since
            continue
        if b"spawn_main" in cmdline:
            workers.append(child)
    return workers


@contextmanager
def workers_running(env_extra: dict[str, str], log: Path) -> Iterator[tuple[subprocess.Popen, str]]:
    """`uvicorn liebian.web.asgi:app --workers 4` against this test's PostgreSQL schema, once every
    worker is up; its output (INFO, without access lines) goes to `log`."""
    settings = get_settings()
    assert settings.database_url and settings.database_url.startswith("postgresql"), "needs PostgreSQL"
    env = dict(os.environ)
    env["LIEBIAN_DATA_DIR"] = str(settings.data_dir)
    env["LIEBIAN_DATABASE_URL"] = settings.database_url
    # 4 workers × 15 connections, plus this test process, stay within PostgreSQL's default 100
    env |= {"LIEBIAN_DB_POOL_SIZE": "5", "LIEBIAN_DB_MAX_OVERFLOW": "10"}
    env.update(env_extra)
    with (
        log.open("w") as out,
        uvicorn_server(
            env, "--workers", str(WORKERS), "--log-level", "info", "--no-access-log", timeout=180, output=out
        ) as (proc, url),
    ):
        deadline = time.monotonic() + 60
        while len(_children(proc.pid)) < WORKERS:
            assert time.monotonic() < deadline, f"the workers did not start:\n{log.read_text()[-3000:]}"
            time.sleep(0.3)
        yield proc, url


@pytest.fixture
def live_workers(store: str, tmp_path: Path) -> Iterator[str]:
    log = tmp_path / "server.log"
    with workers_running({}, log) as (proc, url):
        workers = _children(proc.pid)
        assert len(workers) == WORKERS
        yield url
        # no worker died under the load (a crash would have been replaced with a new process id)
        assert _children(proc.pid) == workers, log.read_text()[-3000:]


@pytest.fixture
def client(live_workers: str, admin_headers) -> Iterator[httpx.Client]:
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    with httpx.Client(base_url=live_workers, timeout=120, limits=limits, headers=admin_headers) as c:
        yield c


def test_one_worker_runs_the_scheduled_jobs(store: str, tmp_path: Path) -> None:
    """With the scheduler on in every worker, one of them is elected to run the jobs; when it stops
    (here: the whole server), the lock is free for the next one."""
    log = tmp_path / "server.log"
    with workers_running({"LIEBIAN_SCHEDULER_ENABLED": "1"}, log):
        deadline = time.monotonic() + 60
        while "runs the scheduled jobs" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.5)
        time.sleep(3)  # the other workers have tried the lock by now (they retry every few seconds)
        # read while all four run: once the server stops, the leader lets go of the lock and a
        # worker still shutting down may take it (as it should), which says nothing about two at once
        lines = log.read_text().splitlines()
    leaders = [line for line in lines if "runs the scheduled jobs" in line]
    assert len(leaders) == 1, "\n".join(lines[-50:])
    # the lock was given back: a scheduler started now becomes the leader
    from liebian.jobs import Scheduler

    again = Scheduler()
    assert again.try_lead()
    again.stop()
