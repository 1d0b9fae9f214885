"""The campaign loop feeds the warehouse (issue #18): a campaign run through the HTTP API — invites,
accepts, trusted conversions, a refund, the hold's release and the payout — shows in analytics by
that campaign (participants, buyers, revenue net of the refund, the ledger's reward cost, CAC and
ROI from them), and the console's overview shows the campaign by title with the same figures."""

from __future__ import annotations

import re
import sys
from datetime import timedelta
from pathlib import Path

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.analytics import catalogue
from liebian.analytics import service as analytics
from liebian.cli import app as cli
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.engine.backend import export_parquet
from liebian.rewards import service as rewards
from liebian.web.app import create_app
from liebian.web.console import format_cell
from liebian.web.pages import overview as overview_page

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "campaigns"))
from campaign_helpers import Api, rules  # noqa: E402

from shared_helpers import export_records  # noqa: E402

TITLE = "春季邀友有礼·闭环"
FRIENDS = [f"friend{i}" for i in range(5)]
AMOUNT = 9900
CARD = re.compile(r'<div class="card"><div class="label">([^<]*)</div><div class="value">([^<]*)</div></div>')


def _value(kpis: dict, name: str):
    got = kpis[name]
    return got["value"] if isinstance(got, dict) and "value" in got else got


def _run_campaign(api: Api) -> str:
    doc = rules("double_sided", title=TITLE, per_inviter_cap=10, per_device_cap=10)
    cid = api.create(doc, "loop")["id"]
    code = api.invite(cid, "alice")["code"]
    for i, friend in enumerate(FRIENDS):
        api.click(code, visitor=friend)
        r = api.accept(code, friend, device_id=f"dev-{i}", ip=f"10.0.{i}.9")
        assert r.status_code == 201 and r.json()["state"] == "accepted", r.text
    for friend in FRIENDS[:4]:  # the operator key: trusted conversions, judged at once
        r = api.order(cid, friend, f"o-{friend}", amount_fen=AMOUNT)
        assert r.status_code in (200, 201) and r.json()["status"] == "qualified", r.text
    assert api.refund(cid, f"o-{FRIENDS[0]}").status_code == 200
    released = api.c.post(
        "/api/v1/ledger/release", params={"as_of": (utcnow() + timedelta(days=8)).isoformat() + "Z"}
    )
    assert released.status_code == 200 and released.json()["released"] > 0, released.text
    issued = api.c.post(
        "/api/v1/payouts/issue", json={"all_approved": True, "campaign_id": cid, "idempotency_key": "loop-1"}
    )
    assert issued.status_code in (200, 201), issued.text
    flushed = CliRunner().invoke(cli, ["campaign", "flush"])
    assert flushed.exit_code == 0, flushed.output
    return cid


def _ledger_cost(cid: str) -> int:
    with session_scope() as s:
        return sum(
            r.value_fen for r in rewards.list_rewards(s, campaign_id=cid, limit=1000) if r.state == "issued"
        )


def test_a_campaign_run_through_the_api_shows_in_analytics_and_the_console(store: str, admin_headers) -> None:
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        api = Api(client)
        cid = _run_campaign(api)
        cost = _ledger_cost(cid)
        # 4 friends qualified: 4 × (inviter 1000 + friend 500); the refunded one's were clawed back
        assert cost == 3 * 1500
        r = client.get("/api/v1/analytics/kpis", params={"campaign": cid})
        assert r.status_code == 200, r.text
        k = r.json().get("kpis", r.json())
        assert _value(k, "participants") == 6  # the inviter and the five friends
        assert _value(k, "referred_users") == 5 and _value(k, "paid_orders") == 3
        assert _value(k, "buyers") == 3  # the refunded order is no purchase
        assert _value(k, "revenue_fen") == 3 * AMOUNT  # net of the refund
        assert _value(k, "reward_cost_fen") == cost
        new_users = _value(k, "new_users")
        assert _value(k, "roi") == (3 * AMOUNT - cost) / cost
        assert _value(k, "cac_fen") == (cost / new_users if new_users else None)
        # the warehouse holds the loop's events and one order row per order
        with warehouse.connect() as con:
            events = dict(con.execute(
                "SELECT event, count(*) FROM events WHERE campaign_id = ? GROUP BY 1", [cid]
            ).fetchall())  # fmt: skip
            orders = con.execute(
                "SELECT order_id, status, amount_fen, currency FROM orders WHERE campaign_id = ? ORDER BY 1",
                [cid],
            ).fetchall()
        assert events["invite_share"] == 1 and events["invite_accept"] == 5 and events["invite_click"] == 5
        assert events["referral_qualified"] == 4 and events["conversion"] == 4 and events["refund"] == 1
        assert (
            events["reward_granted"] == 8 and events["reward_revoked"] == 2 and events["reward_issued"] == 6
        )
        assert orders == [
            (f"o-{f}", "refunded" if f == FRIENDS[0] else "paid", AMOUNT, "CNY") for f in FRIENDS[:4]
        ]
        # the console: the campaign is picked by title and kept selected; the same figures
        page = client.get("/", params={"campaign": cid})
        assert page.status_code == 200
        selected = re.search(r'<option translate="no" value="([^"]*)" selected>([^<]*)</option>', page.text)
        assert selected is not None and selected.groups() == (cid, TITLE)
        # its cards (names and units from the metric catalogue) show the API's figures, ROI included
        cards = dict(CARD.findall(page.text))
        for key, kind in overview_page.CARDS:
            assert cards[catalogue.metric(key).zh] == format_cell(_value(k, key), kind, "zh-CN"), key
        assert cards["ROI"] == f"{(3 * AMOUNT - cost) / cost:,.2f}" and cards["参与人数"] == "6"
        daily = client.get("/", params={"campaign": cid, "export": "daily", "format": "csv"})
        rows = export_records(daily.content)
        assert sum(int(r["成交额"]) for r in rows) == _value(k, "revenue_fen") == 3 * AMOUNT
        assert sum(int(r["参与人数"]) for r in rows) == _value(k, "participants")


def test_the_loop_reads_the_same_on_every_analytics_engine(
    sqlite_store: str, admin_headers, engine: str
) -> None:
    """The warehouse rows the outbox wrote give the same KPI sheet on DuckDB and on Spark
    (LIEBIAN_TEST_SPARK=1) as the HTTP API gives."""
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        cid = _run_campaign(Api(client))
        api = client.get("/api/v1/analytics/kpis", params={"campaign": cid}).json()
    if engine == "spark":
        export_parquet()
    got = analytics.run_kpis(analytics.make_filters(campaigns=[cid]), engine)
    for name in (
        "participants",
        "buyers",
        "paid_orders",
        "revenue_fen",
        "refunded_fen",
        "reward_cost_fen",
        "roi",
    ):
        assert _value(got, name) == _value(api.get("kpis", api), name), name
    assert _value(got, "refunded_fen") == AMOUNT


def test_imported_campaigns_are_offered_and_kept_selected(store: str, admin_headers) -> None:
    with warehouse.connect() as con:
        con.execute(
            "INSERT INTO events BY NAME SELECT 'e1' AS event_id, TIMESTAMP '2026-11-03 02:00:00' AS ts, 1 AS person_id,"
            " 'app' AS id_type, 'u1' AS user_id, 'join_campaign' AS event, 'wecom' AS channel,"
            " 'c_invite' AS campaign_id, 'b' AS batch_id, TIMESTAMP '2026-11-04' AS ingested_at"
        )
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        page = client.get("/", params={"campaign": "c_invite"})
        assert page.status_code == 200
        selected = re.search(r'<option translate="no" value="([^"]*)" selected>([^<]*)</option>', page.text)
        assert selected is not None and selected.group(1) == "c_invite"
        assert '<option translate="no" value="c_invite"' in page.text
        unknown = client.get("/", params={"campaign": "c_elsewhere"})  # no row yet: still the choice
        kept = re.search(r'<option translate="no" value="([^"]*)" selected>', unknown.text)
        assert kept is not None and kept.group(1) == "c_elsewhere"
        r = client.get("/api/v1/analytics/kpis", params={"campaign": "c_invite"}).json()
        k = r.get("kpis", r)
        assert _value(k, "participants") == 1
