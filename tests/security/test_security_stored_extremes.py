"""Analytics and the console stay up whatever the stores hold (issue #21, "one event breaks the
console for everyone"): extreme values written straight into the warehouse and the operational
store (bypassing every check at the edges), then every console page and analysis API is opened.
A 5xx anywhere fails the test."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import select, update

from liebian.auth import policy
from liebian.campaigns import common
from liebian.campaigns.models import Campaign, CampaignVersion
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import Api, rules  # noqa: E402

INT64_MAX = 2**63 - 1
FAR_PAST, FAR_FUTURE = "0001-01-01 00:00:00", "9999-12-31 23:59:59"
LONG = "长" * 10_000
# Analyses fitted with a body; everything else is opened with GET.
POSTS = (
    "/api/v1/predict/ltv",
    "/api/v1/predict/lifecycle",
    "/api/v1/predict/churn",
    "/api/v1/predict/segments",
    "/api/v1/monitor/scan",
    "/api/v1/tags/recompute",
)


def _seed_warehouse() -> None:
    """Copies of real rows with the extremes a hostile or broken client could have left."""
    with warehouse.connect() as con:
        for n, (ts, amount) in enumerate([(FAR_PAST, INT64_MAX), (FAR_FUTURE, -INT64_MAX), (FAR_PAST, 0)]):
            con.execute(
                "INSERT INTO events SELECT * REPLACE (? AS event_id, CAST(? AS TIMESTAMP) AS ts,"
                " ? AS event, ? AS channel, ? AS campaign_id, CAST(? AS TIMESTAMP) AS received_at)"
                " FROM events LIMIT 1",
                [f"x-ev-{n}", ts, LONG if n else "signup", "app\x00" if n == 2 else "app", LONG, ts],
            )
            con.execute(
                "INSERT INTO orders SELECT * REPLACE (? AS order_id, CAST(? AS TIMESTAMP) AS ts,"
                " CAST(? AS TIMESTAMP) AS status_ts, ? AS amount_fen) FROM orders LIMIT 1",
                [f"x-or-{n}", ts, ts, amount],
            )
            con.execute(
                "INSERT INTO referral_edges SELECT * REPLACE (CAST(? AS TIMESTAMP) AS ts, ? AS event_id)"
                " FROM referral_edges LIMIT 1",
                [ts, f"x-edge-{n}"],
            )


def _seed_store() -> None:
    """A campaign whose stored rules hold year 1 and year 9999 and a budget at the 64-bit limit."""
    with session_scope() as s:
        version = s.scalars(select(CampaignVersion).where(CampaignVersion.campaign_id == "wild")).one()
        doc = json.loads(version.rules)
        doc |= {"start_at": "0001-01-01T00:00:00", "end_at": "9999-12-31T23:59:59"}
        version.rules = json.dumps(doc)
        s.execute(update(Campaign).where(Campaign.id == "wild").values(budget_fen=INT64_MAX))
        # a second campaign whose stored rules break the bounds of today's edge
        wilder = s.scalars(select(CampaignVersion).where(CampaignVersion.campaign_id == "wilder")).one()
        wilder.rules = json.dumps(json.loads(wilder.rules) | {"hold_days": 1e308, "budget_fen": 2**64})
    common.clear_rules_cache()  # a fresh process: nothing read before the seeding


def _ingest_normal_rows(client: TestClient) -> None:
    api = Api(client)
    api.create(rules("invite_task"), "wild")
    api.create(rules("invite_task"), "wilder", launch=False)
    code = api.invite("wild", "alice")["code"]
    assert api.accept(code, "bob").status_code < 300
    assert api.order("wild", "bob", "o-1").status_code < 300
    event = {"event_id": "e-1", "ts": "2026-11-01T10:00:00+08:00", "user_id": "bob", "id_type": "unionid",
             "event": "signup", "channel": "app", "campaign_id": "wild", "referrer_id": "alice"}  # fmt: skip
    order = {"order_id": "w-1", "ts": "2026-11-01T11:00:00", "user_id": "bob", "id_type": "unionid",
             "channel": "app", "amount_fen": 9900, "campaign_id": "wild"}  # fmt: skip
    assert client.post("/api/v1/events/batch", json={"items": [event]}).json()["accepted"] == 1
    assert client.post("/api/v1/orders/batch", json={"items": [order]}).json()["accepted"] == 1
    with warehouse.connect() as con:
        for table in ("events", "orders", "referral_edges"):
            assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] > 0, table


def _gettable_paths() -> list[str]:
    """Every GET route without path parameters (the policy table lists every route)."""
    paths = {path for method, path in policy.ROUTES if method == "GET" and "{" not in path}
    return sorted(paths - {"/logout"})


def test_every_page_and_analysis_survives_extreme_stored_values(store, admin_headers):
    app = create_app(run_migrations=False)
    with TestClient(app, headers=admin_headers, raise_server_exceptions=False) as client:
        _ingest_normal_rows(client)
        _seed_warehouse()
        _seed_store()
        failures = []
        for path in _gettable_paths():
            r = client.get(path)
            if r.status_code >= 500:
                failures.append(f"GET {path}: {r.status_code} {r.text[:200]}")
        wild = [f"{p}/{c}" for c in ("wild", "wilder") for p in ("/campaigns", "/api/v1/campaigns")]
        for path in (*wild, "/api/v1/campaigns/wild/stats", "/api/v1/campaigns/wilder/compliance"):
            r = client.get(path)
            if r.status_code >= 500:
                failures.append(f"GET {path}: {r.status_code} {r.text[:200]}")
        listed = client.get("/api/v1/campaigns")
        assert listed.status_code == 200 and {c["id"] for c in listed.json()} >= {"wild", "wilder"}
        assert client.get("/campaigns").status_code == 200
        for path in POSTS:
            r = client.post(path)
            if r.status_code >= 500:
                failures.append(f"POST {path}: {r.status_code} {r.text[:200]}")
    assert not failures, "\n".join(failures)
