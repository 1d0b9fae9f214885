"""Invite clicks count distinct visitors (issue #18), not raw clicks: imported clicks once per
visitor, inviter and campaign (never the inviter's own); the engine's clicks as campaigns/visits.py
judged them (a repeat visitor is no new click) — the same figure the invite's own click count shows."""

from __future__ import annotations

import json
import os
import shutil
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.analytics import service as analytics
from liebian.campaigns import outbox
from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.engine.backend import export_parquet
from liebian.ingest.service import import_file
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaigns"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "ingest"))
from campaign_helpers import Api, rules  # noqa: E402
from ingest_helpers import EVENT_HEADER, write_csv  # noqa: E402


def _clicks(*extra: str) -> int:
    out = CliRunner().invoke(cli_app, ["analyze", "kpis", "--format", "json", *extra])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)["invite_clicks"]
    return got["value"] if isinstance(got, dict) else got


def _import_clicks(tmp_path: Path) -> None:
    def click(n: int, when: str, visitor: str, inviter: str, campaign: str = "c1") -> list[str]:
        return [f"k{n}", when, visitor, "openid", "invite_click", "app", campaign, inviter, "openid"]

    header = [*EVENT_HEADER, "campaign_id", "referrer_id", "referrer_id_type"]
    events = [
        click(1, "2026-11-03 10:00", "bob", "alice"),
        click(2, "2026-11-03 10:05", "bob", "alice"),  # bob again: the same visitor of alice's link
        click(3, "2026-11-04 09:00", "bob", "alice"),
        click(4, "2026-11-03 11:00", "carol", "alice"),
        click(5, "2026-11-03 12:00", "alice", "alice"),  # alice's own click
        click(6, "2026-11-03 13:00", "bob", "dave"),  # bob on dave's link: another invite
        click(7, "2026-11-03 14:00", "bob", "alice", "c2"),  # and alice's link of another campaign
    ]
    assert import_file(write_csv(tmp_path / "clicks.csv", header, events), "events").rows_loaded == 7


def test_imported_clicks_count_once_per_visitor_and_inviter(store, tmp_path) -> None:
    _import_clicks(tmp_path)
    # by hand: (bob, alice, c1), (carol, alice, c1), (bob, dave, c1), (bob, alice, c2)
    assert _clicks("--start", "2026-11-01", "--end", "2026-11-30") == 4
    assert _clicks("--start", "2026-11-01", "--end", "2026-11-30", "--campaign", "c1") == 3
    assert _clicks("--start", "2026-11-04", "--end", "2026-11-04") == 1  # bob's click of that day


def _engine_clicks(admin_headers: dict[str, str]) -> tuple[str, int]:
    """A campaign whose invite bob clicks three times and carol once; (campaign id, the invite's
    own click count)."""
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        api = Api(client)
        cid = api.create(rules("double_sided", title="点击去重"), "clicks")["id"]
        code = api.invite(cid, "alice")["code"]
        for visitor in ("bob", "bob", "carol", "bob"):
            assert api.click(code, visitor=visitor).status_code in (302, 303, 307)
        with session_scope() as s:
            outbox.flush_warehouse(s)
        invite_clicks = client.get(f"/api/v1/invites/{code}").json()["clicks"]
    return cid, invite_clicks


def test_engine_clicks_count_the_distinct_visitors_the_invite_counts(store, admin_headers) -> None:
    cid, invite_clicks = _engine_clicks(admin_headers)
    with warehouse.connect() as con:
        raw = con.execute(
            "SELECT count(*) FROM events WHERE event = 'invite_click' AND campaign_id = ?", [cid]
        ).fetchall()[0][0]
    assert raw == 4  # every click reaches the warehouse
    assert _clicks("--campaign", cid) == 2  # bob and carol
    assert invite_clicks == 2  # the invite's own count agrees


@pytest.mark.spark
def test_spark_counts_the_same_clicks(sqlite_store, admin_headers, tmp_path) -> None:
    if os.environ.get("LIEBIAN_TEST_SPARK") != "1" or shutil.which("java") is None:
        pytest.skip("Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH (CI sets both)")
    _import_clicks(tmp_path)
    cid, _ = _engine_clicks(admin_headers)
    export_parquet()
    for campaigns, want in (((), 4 + 2), (("c1",), 3), ((cid,), 2)):
        filters = analytics.make_filters(campaigns=campaigns)
        got = analytics.run_kpis(filters, "spark", reward_cost_fen=0, other_cost_fen=0)["invite_clicks"]
        assert (got["value"] if isinstance(got, dict) else got) == want, campaigns
