"""The HTTP collector, the CLI, and imports that die half-way."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest
from fastapi.testclient import TestClient
from ingest_helpers import EVENT_HEADER, rows, scalar, write_csv
from typer.testing import CliRunner

from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.ingest import load
from liebian.ingest.service import import_file


@pytest.fixture
def client(store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LIEBIAN_SCHEDULER_ENABLED", "false")  # no background jobs racing the test
    reset_settings_cache()
    from liebian.web.app import create_app

    with TestClient(create_app()) as c:
        c.headers["X-API-Key"] = _ingest_key()
        yield c


def _ingest_key() -> str:
    """A collector's key: the public kind with the ingest:write scope (when auth is installed)."""
    try:
        from liebian.auth import service as auth
    except ModuleNotFoundError:
        return ""
    with session_scope() as session:
        key, _record = auth.create_api_key(
            session, name="collector", actor="test", kind="public", scopes=["ingest:write"]
        )
    return key


def _event(i: int, **over) -> dict:
    item = {
        "event_id": f"api-{i}",
        "ts": 1793000000 + i,
        "user_id": f"o_{i % 3}",
        "id_type": "openid",
        "event": "view",
        "channel": "小程序",
    }
    item.update(over)
    return item


def test_events_batch_per_item_results_and_idempotency(client: TestClient) -> None:
    items = [
        _event(0, page="home"),
        _event(1, ts="someday"),
        _event(2, channel="火星", event_id=None),
        _event(3),
        _event(0),  # the same id twice in one batch
        "not an object",
    ]
    response = client.post("/api/v1/events/batch", json={"items": items})
    assert response.status_code == 200
    body = response.json()
    assert [(i["index"], i["status"]) for i in body["items"]] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "rejected"),
        (3, "accepted"),
        (4, "duplicate"),
        (5, "rejected"),
    ]
    assert body["items"][1]["errors"] == [{"field": "ts", "reason": "unreadable timestamp someday"}]
    assert sorted((e["field"], e["reason"]) for e in body["items"][2]["errors"]) == [
        ("channel", "unknown channel 火星"),
        ("event_id", "missing event_id"),
    ]
    assert body["items"][5]["errors"] == [{"field": "item", "reason": "not a JSON object"}]
    assert (body["accepted"], body["duplicate"], body["rejected"]) == (2, 1, 3)
    # durable once the response is back: a fresh connection sees the rows
    assert rows("SELECT event_id, channel, props FROM events ORDER BY event_id") == [
        ("api-0", "miniprogram", '{"page":"home"}'),
        ("api-3", "miniprogram", None),
    ]
    assert scalar("SELECT count(*) FROM rejects WHERE source = 'api'") == 4
    again = client.post("/api/v1/events/batch", json={"items": [_event(0), _event(3)]}).json()
    assert [i["status"] for i in again["items"]] == ["duplicate", "duplicate"]
    assert scalar("SELECT count(*) FROM events") == 2


def test_orders_batch_updates_status_and_rejects_negative_amounts(client: TestClient) -> None:
    order = {
        "order_id": "O1",
        "ts": "2026-11-03T10:00:00+08:00",
        "user_id": "13800138000",
        "id_type": "phone",
        "amount": 12.5,
        "channel": "抖音",
    }
    body = client.post(
        "/api/v1/orders/batch", json={"items": [order, {**order, "order_id": "O2", "amount": -1}]}
    ).json()
    assert [i["status"] for i in body["items"]] == ["accepted", "rejected"]
    assert body["items"][1]["errors"] == [{"field": "amount", "reason": "negative amount"}]
    refund = {**order, "status": "refunded", "ts": "2026-11-04T10:00:00+08:00"}
    body = client.post("/api/v1/orders/batch", json={"items": [refund]}).json()
    assert body["items"][0]["status"] == "accepted"
    assert rows("SELECT order_id, amount_fen, status, status_ts FROM orders") == [
        ("O1", 1250, "refunded", __import__("datetime").datetime(2026, 11, 4, 2, 0)),
    ]
    assert (
        client.post("/api/v1/orders/batch", json={"items": [refund]}).json()["items"][0]["status"]
        == "duplicate"
    )


def test_batch_limits(client: TestClient) -> None:
    too_many = client.post("/api/v1/events/batch", json={"items": [_event(i) for i in range(1001)]})
    assert too_many.status_code == 413
    assert "at most 1000 items" in too_many.json()["detail"]
    empty = client.post("/api/v1/events/batch", json={"items": []})
    assert empty.status_code == 422
    assert empty.json()["errors"][0]["field"] == "items"
    full = client.post("/api/v1/events/batch", json={"items": [_event(i) for i in range(1000)]})
    assert full.status_code == 200 and full.json()["accepted"] == 1000
    assert scalar("SELECT count(*) FROM events") == 1000


def test_cli_imports_and_prints_a_summary(sqlite_store, data_dir: Path, tmp_path: Path) -> None:
    from liebian.cli import app

    path = write_csv(
        tmp_path / "events.csv",
        EVENT_HEADER,
        [["e1", "2026-11-03", "o_a", "openid", "view", "app"], ["e2", "bad", "o_a", "openid", "view", "app"]],
    )
    result = CliRunner().invoke(app, ["import", "events", str(path), "--format", "json", "--no-progress"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["rows_loaded"], summary["rows_rejected"]) == (1, 1)
    assert summary["reasons"] == {"unreadable timestamp": 1}
    assert Path(summary["rejects_path"]).is_file()
    table = CliRunner().invoke(app, ["import", "events", str(path), "--no-progress"])
    assert table.exit_code == 0 and "rows_duplicate" in table.stdout
    missing = CliRunner().invoke(app, ["import", "orders", str(tmp_path / "nope.csv")])
    assert missing.exit_code == 2
    assert "no such file" in " ".join(missing.output.split())


def _big_file(path: Path, n: int, users: int) -> Path:
    duckdb.sql(
        f"""
        COPY (SELECT 'k' || i AS event_id, '2026-11-03 10:00:00' AS ts, 'o' || (i % {users}) AS user_id,
                     'openid' AS id_type, 'view' AS event, '小程序' AS channel,
                     CASE WHEN i % 7 = 0 THEN 'o' || ((i + 1) % {users}) END AS referrer_id
              FROM range({n}) t(i))
        TO '{path}' (FORMAT csv, HEADER)
        """
    )
    return path


def _assert_exactly_once(n: int, users: int) -> None:
    assert rows("SELECT count(*), count(DISTINCT event_id) FROM events") == [(n, n)]
    assert scalar("SELECT count(DISTINCT person_id) FROM events") == users
    with session_scope() as session:
        assert identity.identifier_count(session) == users


def test_failure_inside_the_load_step_leaves_nothing_and_a_rerun_loads_all_once(
    sqlite_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _big_file(tmp_path / "events.csv", 5000, 500)
    original = load._load_rows

    def crash_after_insert(*args, **kwargs):
        original(*args, **kwargs)
        raise RuntimeError("power cut")

    monkeypatch.setattr(load, "_load_rows", crash_after_insert)
    with pytest.raises(RuntimeError, match="power cut"):
        import_file(path, "events")
    assert scalar("SELECT count(*) FROM events") == 0
    assert scalar("SELECT count(*) FROM referral_edges") == 0
    monkeypatch.setattr(load, "_load_rows", original)
    result = import_file(path, "events")
    assert result.rows_loaded == 5000
    _assert_exactly_once(5000, 500)


@pytest.mark.slow
def test_killed_cli_import_rerun_ends_with_every_row_once(
    sqlite_store, data_dir: Path, tmp_path: Path
) -> None:
    n, users = 300_000, 30_000
    path = _big_file(tmp_path / "big.csv", n, users)
    env = {**os.environ, "LIEBIAN_DATA_DIR": str(data_dir)}
    killed_at = []
    for delay in (0.5, 3.0):
        proc = subprocess.Popen(
            [sys.executable, "-m", "liebian.cli", "import", "events", str(path), "--no-progress"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while not (data_dir / "tmp").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed_at.append(delay)
        proc.wait()
    assert killed_at, "the import finished before it could be killed; use a bigger file"
    result = import_file(path, "events")
    assert result.rows_loaded + result.rows_duplicate == n
    _assert_exactly_once(n, users)
    assert import_file(path, "events").rows_loaded == 0
