"""The Parquet event store: imports commit to it, both engines read it, a killed writer leaves
no partial batch visible, merges rewrite the affected days (engine/eventstore.py)."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.engine import eventstore, warehouse
from liebian.errors import Invalid
from liebian.identity import service as identity
from liebian.ingest.service import import_file
from liebian.privacy.subject_requests import erase_person

SPARK_ENABLED = os.environ.get("LIEBIAN_TEST_SPARK") == "1"
HEADER = ["event_id", "ts", "user_id", "id_type", "event", "channel", "referrer_id", "referrer_id_type"]


def write_events(path: Path, first: int, n: int, users: int = 40) -> Path:
    """n events over five days, every 7th one invited by the next user (referral edges)."""
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(HEADER)
        for i in range(first, first + n):
            referred = i % 7 == 0
            out.writerow([
                f"e{i}", f"2026-03-{1 + i % 5:02d} {10 + i % 12}:00:00", f"u{i % users}", "app_user",
                ("page_view", "join_campaign", "signup", "invite_share")[i % 4], "wecom",
                f"u{(i + 1) % users}" if referred else "", "app_user" if referred else "",
            ])  # fmt: skip
    return path


def write_orders(path: Path, rows: list[tuple[str, str, str, int, str]]) -> Path:
    with path.open("w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(["order_id", "ts", "user_id", "id_type", "amount_fen", "status", "channel"])
        out.writerows([(o, ts, u, "app_user", fen, status, "wecom") for o, ts, u, fen, status in rows])
    return path


@pytest.fixture
def store_url(sqlite_store, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"file://{data_dir.parent / 'store'}"
    monkeypatch.setenv("LIEBIAN_EVENT_STORE", url)
    reset_settings_cache()
    return url


def table_rows(con, table: str) -> list[str]:
    return sorted(map(str, con.execute(f"SELECT * FROM {table}").fetchall()))


def assert_store_is_warehouse() -> dict[str, int]:
    """Every table of the store holds exactly the warehouse's rows; returns the row counts."""
    counts = {}
    with warehouse.connect(read_only=True) as con, eventstore.duckdb_reader() as store:
        for table in warehouse.TABLES:
            expected = table_rows(con, table)
            assert table_rows(store, table) == expected, table
            counts[table] = len(expected)
    return counts


def live_files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.glob("*/**/*.parquet") if "_staging" not in p.parts}


def test_imports_append_to_the_store_once_and_merges_rewrite_the_days(store_url: str, tmp_path: Path) -> None:
    root = Path(store_url.removeprefix("file://"))
    first = import_file(write_events(tmp_path / "a.csv", 0, 300), "events")
    manifest = eventstore.read_manifest(eventstore.location())
    assert manifest["batches"] == [first.batch_id]
    assert {g["batch"] for g in manifest["tables"]["events"]} == {first.batch_id}  # appended, not rewritten
    assert assert_store_is_warehouse()["events"] == 300
    # the same file again: nothing new, no new manifest; an overlapping one appends the new rows only
    assert import_file(tmp_path / "a.csv", "events").rows_loaded == 0
    assert eventstore.read_manifest(eventstore.location())["version"] == manifest["version"]
    import_file(write_events(tmp_path / "b.csv", 250, 100), "events")
    counts = assert_store_is_warehouse()
    assert counts["events"] == 350 and counts["referral_edges"] > 0
    # an order, then its refund: the refund changes a stored row, so its day is rewritten
    import_file(
        write_orders(tmp_path / "o1.csv", [("o1", "2026-03-02 12:00:00", "u1", 5000, "paid")]), "orders"
    )
    import_file(
        write_orders(tmp_path / "o2.csv", [("o1", "2026-03-03 12:00:00", "u1", 5000, "refunded")]), "orders"
    )
    assert assert_store_is_warehouse()["orders"] == 1
    # OneID merges the person of openid o_x into u1's: the days with o_x's events are rewritten
    with (tmp_path / "x.csv").open("w") as fh:
        fh.write(
            "event_id,ts,user_id,id_type,event,channel\nx1,2026-03-02 08:00:00,o_x,openid,page_view,wecom\n"
        )
    import_file(tmp_path / "x.csv", "events")
    before = live_files(root)
    with session_scope() as session:
        report = identity.link(
            session, [identity.LinkEvidence(("app_user", "u1"), ("openid", "o_x"), source="test")]
        )
    assert report.merged == 1
    with session_scope() as session, warehouse.connect() as con:
        identity.sync_warehouse(session, con)
        eventstore.commit(con)
    assert_store_is_warehouse()
    after = live_files(root)
    listed = {
        rel
        for t in warehouse.TABLES
        for rel in eventstore.table_files(eventstore.read_manifest(eventstore.location()), t)
    }
    assert after == listed  # the replaced files were removed after publishing
    assert before - after, "the merge rewrote no file"
    # erasure: the person's rows are rewritten without the identifier, the files that had it go
    with warehouse.connect(read_only=True) as con:
        person = con.execute("SELECT person_id FROM identity_map WHERE id_value = 'u3'").fetchall()[0][0]
        days = {
            f"events/day={d}/"
            for (d,) in con.execute(
                "SELECT DISTINCT CAST(ts AS DATE)::VARCHAR FROM events WHERE user_id = 'u3'"
            ).fetchall()
        }
    erase_person(person, actor="test")
    assert_store_is_warehouse()
    with eventstore.duckdb_reader() as store:
        assert store.execute("SELECT count(*) FROM events WHERE user_id = 'u3'").fetchall() == [(0,)]
        assert store.execute("SELECT count(*) FROM identity_map WHERE id_value = 'u3'").fetchall() == [(0,)]
    kept = after & live_files(root)
    assert not {p for p in kept if p.startswith(tuple(days))}  # the person's days: new files only
    assert {
        p for p in after if p.startswith("events/") and not p.startswith(tuple(days))
    } <= kept  # others kept


def test_a_store_url_of_another_scheme_is_refused_naming_the_setting() -> None:
    with pytest.raises(Invalid, match="LIEBIAN_EVENT_STORE: unsupported scheme 'ftp'"):
        eventstore.location("ftp://host/store")


def _import_subprocess(path: Path, env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "liebian.cli", "import", "events", str(path), "--no-progress"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize("point", eventstore.STOP_POINTS)
def test_a_killed_import_leaves_every_committed_batch_and_no_partial_one(
    store_url: str, data_dir: Path, tmp_path: Path, point: str
) -> None:
    root = Path(store_url.removeprefix("file://"))
    committed = import_file(write_events(tmp_path / "a.csv", 0, 200), "events")
    marker = tmp_path / "stopped"
    env = {
        **os.environ,
        "LIEBIAN_DATA_DIR": str(data_dir),
        "LIEBIAN_EVENT_STORE": store_url,
        "LIEBIAN_EVENT_STORE_STOP_AT": point,
        "LIEBIAN_EVENT_STORE_STOP_MARKER": str(marker),
        "PYTHONPATH": os.pathsep.join(sys.path),
    }
    proc = _import_subprocess(write_events(tmp_path / "b.csv", 150, 200), env)
    deadline = time.monotonic() + 120
    while not marker.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.exists(), proc.stderr.read().decode() if proc.stderr else "no marker"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    manifest = eventstore.read_manifest(eventstore.location())
    published = point == "published"
    assert committed.batch_id in manifest["batches"]
    assert (len(manifest["batches"]) == 2) is published
    with eventstore.duckdb_reader() as store:
        ids = [r[0] for r in store.execute("SELECT event_id FROM events").fetchall()]
        batches = {r[0] for r in store.execute("SELECT DISTINCT batch_id FROM events").fetchall()}
    assert len(ids) == len(set(ids)) == (350 if published else 200)  # the new batch whole, or none of it
    assert batches <= set(manifest["batches"])
    # the warehouse committed the batch before the store: the next commit catches the store up
    rerun = import_file(tmp_path / "b.csv", "events")
    assert rerun.rows_loaded == 0 and rerun.rows_duplicate == 200
    assert assert_store_is_warehouse()["events"] == 350
    listed = {
        rel
        for t in warehouse.TABLES
        for rel in eventstore.table_files(eventstore.read_manifest(eventstore.location()), t)
    }
    assert live_files(root) == listed  # the dead writer's files were swept


def test_kpis_on_spark_right_after_an_import(store_url: str, tmp_path: Path) -> None:
    if not SPARK_ENABLED:
        pytest.skip("Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH")
    from liebian.cli import app

    import_file(write_events(tmp_path / "a.csv", 0, 300), "events")
    import_file(write_orders(tmp_path / "o.csv", [("o1", "2026-03-02 12:00:00", "u1", 5000, "paid"),
                                                   ("o2", "2026-03-04 09:00:00", "u8", 1200, "paid")]), "orders")  # fmt: skip
    sheets = {}
    for engine in ("duckdb", "spark"):
        result = CliRunner().invoke(
            app,
            [
                "analyze",
                "kpis",
                "--engine",
                engine,
                "--start",
                "2026-03-01",
                "--end",
                "2026-03-07",
                "--format",
                "json",
            ],
        )
        assert result.exit_code == 0, result.output
        sheets[engine] = json.loads(result.stdout)
    assert sheets["duckdb"]["participants"] > 0
    assert sheets["spark"] == sheets["duckdb"]


def test_sync_store_publishes_an_existing_warehouse_and_names_a_missing_setting(
    sqlite_store, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from liebian.cli import app

    import_file(write_events(tmp_path / "a.csv", 0, 120), "events")  # before the store is set up
    off = CliRunner().invoke(app, ["analyze", "sync-store"])
    assert off.exit_code == 2 and "LIEBIAN_EVENT_STORE is not set" in " ".join(off.output.split())
    monkeypatch.setenv("LIEBIAN_EVENT_STORE", str(tmp_path / "store"))  # a plain path works too
    reset_settings_cache()
    done = CliRunner().invoke(app, ["analyze", "sync-store"])
    assert done.exit_code == 0, done.output
    assert assert_store_is_warehouse()["events"] == 120
    bad = CliRunner().invoke(app, ["analyze", "kpis", "--engine", "presto"])
    assert bad.exit_code == 2 and "presto" in bad.output


def test_the_campaign_outbox_flush_commits_to_the_store(store_url: str) -> None:
    from liebian.campaigns import outbox

    with session_scope() as s:
        for i in range(30):
            outbox.record_event(
                s, event="invite_accept", ts=datetime(2026, 11, 3 + i % 3, 9), person_id=100 + i, campaign_id="c-1",
                code=f"CODE{i}", channel="wecom_group", key=f"k{i}", referrer=99, edge=True,
            )  # fmt: skip
    assert outbox.drain_warehouse() == 60  # an event and an edge each
    counts = assert_store_is_warehouse()
    assert counts["events"] == 30 and counts["referral_edges"] == 30
    [batch] = eventstore.read_manifest(eventstore.location())["batches"]
    assert batch.startswith("campaigns-")
