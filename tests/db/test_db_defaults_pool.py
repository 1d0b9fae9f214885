"""PostgreSQL pools fit the server: sizes derived from the workers and `max_connections`, refused at
start with a clear message when the settings cannot fit, and a 503 with Retry-After (never a 500)
when every connection is in use — also for a live server of four workers under a burst."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.config import get_settings, reset_settings_cache
from liebian.db import pool
from liebian.db.session import dispose_engines, get_engine, session_scope
from liebian.web.app import create_app
from shared_helpers import free_port, make_api_key

pytestmark = pytest.mark.parametrize("store", ["postgres"], indirect=True)
BUDGET = 8  # connections the live server's four workers may use together


def _settings(monkeypatch: pytest.MonkeyPatch, **env: str):
    for key, value in env.items():
        monkeypatch.setenv(f"LIEBIAN_{key.upper()}", value)
    reset_settings_cache()
    return get_settings()


def test_the_pool_is_derived_from_the_workers_and_max_connections(store, monkeypatch) -> None:
    limits = pool.server_limits(get_settings().sqlalchemy_url)
    assert limits.max_connections >= 10  # read from the server itself
    for workers in (1, 4, 8):
        settings = _settings(monkeypatch, workers=str(workers))
        plan = pool.plan_pool(settings, limits)
        budget = limits.max_connections - limits.superuser_reserved - settings.db_reserved_connections
        assert plan.budget == budget and plan.pool_size >= 1
        assert workers * plan.per_process <= budget  # headroom left for the CLI and jobs
    # the engine a process makes uses the plan
    settings = _settings(monkeypatch, workers="4")
    dispose_engines()
    engine = get_engine()
    plan = pool.plan_pool(settings, limits)
    assert (engine.pool.size(), engine.pool._max_overflow) == (plan.pool_size, plan.max_overflow)  # type: ignore[attr-defined]


def test_settings_that_cannot_fit_are_refused_with_what_to_change(store, monkeypatch) -> None:
    limits = pool.server_limits(get_settings().sqlalchemy_url)
    settings = _settings(monkeypatch, workers="4", db_pool_size="10", db_max_overflow="20")
    with pytest.raises(pool.PoolConfigError) as raised:
        pool.plan_pool(settings, limits)
    message = raised.value.message
    assert "4 worker(s) × (db_pool_size 10 + db_max_overflow 20) = 120" in message
    assert f"max_connections {limits.max_connections}" in message and "LIEBIAN_DB_POOL_SIZE" in message
    # `liebian serve` checks before any worker starts, and says so
    result = CliRunner().invoke(cli_app, ["serve", "--workers", "4", "--port", str(free_port())])
    assert result.exit_code == 2
    said = " ".join(result.output.split())  # the terminal wraps long lines
    assert "cannot start" in said and "= 120 connections, but PostgreSQL allows" in said


def test_an_exhausted_pool_answers_503_with_retry_after(store, monkeypatch) -> None:
    _settings(monkeypatch, db_pool_size="1", db_max_overflow="0", db_pool_timeout="0.5")
    dispose_engines()
    headers = {"Authorization": f"Bearer {make_api_key('service', 'admin')}"}
    with TestClient(create_app(run_migrations=False), headers=headers) as client:
        assert client.get("/api/v1/campaigns").status_code == 200
        with session_scope() as s:  # holds the one pooled connection
            s.execute(text("SELECT 1"))
            r = client.get("/api/v1/campaigns")
        assert r.status_code == 503 and r.json()["code"] == "unavailable"
        assert int(r.headers["Retry-After"]) > 0
        assert client.get("/api/v1/campaigns").status_code == 200  # free again


def _liebian_command() -> list[str]:
    script = Path(sys.executable).with_name("liebian")
    return [str(script)] if script.exists() else [sys.executable, "-m", "liebian.cli"]


@pytest.mark.slow
def test_four_workers_under_a_burst_answer_no_5xx_but_503(store, tmp_path: Path) -> None:
    settings = get_settings()
    key = make_api_key("service", "admin")
    env = dict(
        os.environ, LIEBIAN_DATA_DIR=str(settings.data_dir), LIEBIAN_DATABASE_URL=settings.database_url or ""
    )
    # A small budget (8 connections: 2 per worker) and a short wait make the burst outrun the pools
    # (the shared test server keeps its connections for other runs): waiting requests get 503s.
    limits = pool.server_limits(settings.sqlalchemy_url)
    reserved = limits.max_connections - limits.superuser_reserved - BUDGET
    env |= {"LIEBIAN_DB_RESERVED_CONNECTIONS": str(reserved), "LIEBIAN_DB_POOL_TIMEOUT": "0.2"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / "serve.log"
    with log.open("w") as out:
        server = subprocess.Popen(
            [*_liebian_command(), "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "4"],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, f"the server exited:\n{log.read_text()[-3000:]}"
            assert time.monotonic() < deadline, f"no answer within 180 s:\n{log.read_text()[-3000:]}"
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.5)

        def one(i: int) -> int:
            # a new key per request would be a write; campaign lists read the store on every call
            path = "/api/v1/campaigns" if i % 2 else "/api/v1/rewards"
            try:
                return httpx.get(
                    f"{url}{path}", headers={"Authorization": f"Bearer {key}"}, timeout=120
                ).status_code
            except httpx.HTTPError:
                return -1

        peak = [0]
        done = threading.Event()

        def watch() -> None:  # the server's connections to this database, while the burst runs
            with session_scope() as s:
                while not done.is_set():
                    n = s.execute(
                        text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
                    )
                    peak[0] = max(peak[0], int(n.scalar_one()))
                    time.sleep(0.05)

        watcher = threading.Thread(target=watch)
        watcher.start()
        try:
            with ThreadPoolExecutor(160) as burst:
                codes = Counter(burst.map(one, range(480)))
        finally:
            done.set()
            watcher.join()
    finally:
        server.terminate()
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    output = log.read_text()
    assert "4 worker(s) ×" in output  # the plan is stated at start
    server_errors = {code: n for code, n in codes.items() if code >= 500 and code != 503}
    assert not server_errors and codes[-1] == 0, (codes, output[-3000:])
    assert codes[200] > 0, codes
    print(f"burst: {dict(codes)}; peak connections {peak[0]} (budget {BUDGET} + this test's 2)")
    assert peak[0] <= BUDGET + 2  # the four pools fit what the server gives liebian


def test_an_idle_connection_the_server_dropped_is_replaced_at_checkout(store, monkeypatch) -> None:
    """No ping per request, but a pooled connection idle past PING_IDLE_SECONDS is checked first:
    one the server terminated meanwhile (a restart, a firewall) is replaced, never handed out."""
    from liebian.db import session as db_session

    dispose_engines()
    with session_scope() as s:
        backend = s.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with session_scope() as s:  # in steady use: the same connection comes back
        assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() == backend
    from sqlalchemy import create_engine
    from sqlalchemy.pool import NullPool

    outside = create_engine(get_settings().sqlalchemy_url, poolclass=NullPool)
    with outside.connect() as other:  # the server drops the idle one
        other.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": backend})
        other.commit()
    outside.dispose()
    monkeypatch.setattr(db_session, "PING_IDLE_SECONDS", 0.0)
    with session_scope() as s:
        assert s.execute(text("SELECT pg_backend_pid()")).scalar_one() != backend
