"""Across the domains, through the real wiring: a campaign runs through the engine (HTTP API), its
rewards move through the ledger (every entry reaching the subscribers), and the analytics KPI sheet
charges exactly the value the ledger issued — computed here independently, by replaying the ledger's
entries — in CAC and ROI."""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from campaigns.campaign_helpers import Api, rules
from liebian import ports
from liebian.analytics import service as analytics
from liebian.campaigns import outbox as campaign_outbox
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.rewards import service as rewards
from liebian.web.app import create_app

SHANGHAI = timedelta(hours=8)  # the display zone of the tests (Asia/Shanghai, no DST)


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


def _run_campaign(api: Api, cid: str, inviter: str, friends: list[str]) -> None:
    api.create(rules("double_sided"), cid)
    code = api.invite(cid, inviter)["code"]
    for n, friend in enumerate(friends):
        assert api.click(code).status_code == 302
        assert api.accept(code, friend).status_code == 201
        assert api.order(cid, friend, f"{cid}-o{n}").status_code == 200


def _cost_by_replaying_the_ledger(entries: list[dict]) -> dict[tuple[str, object], int]:
    """(campaign, local day of issue) -> value of the rewards whose last state is issued or redeemed."""
    state: dict[int, str] = {}
    issued: dict[int, tuple[str, object, int]] = {}
    for e in sorted(entries, key=lambda e: e["seq"]):
        state[e["reward_id"]] = e["to_state"]
        if e["kind"] == "transition" and e["to_state"] == "issued":
            issued[e["reward_id"]] = (e["campaign_id"], (e["ts"] + SHANGHAI).date(), e["amount_fen"])
    cost: dict[tuple[str, object], int] = defaultdict(int)
    for reward_id, (cid, day, amount) in issued.items():
        if state[reward_id] in ("issued", "redeemed"):
            cost[(cid, day)] += amount
    return cost


def test_the_kpi_reward_cost_is_what_the_ledger_issued(api: Api) -> None:
    wiring = ports.current()
    announced: list[int] = []
    spy = (lambda _session, entry, _reward: announced.append(entry["seq"]),)
    with ports.use(wiring.with_(ledger_subscribers=wiring.ledger_subscribers + spy)):
        _run_campaign(api, "wire", "alice", ["bob", "carol", "dave"])
        _run_campaign(api, "wire2", "erin", ["frank"])
        with session_scope() as s:
            assert rewards.release_due(s, utcnow() + timedelta(days=8)) == 8  # 2 rewards per conversion
        with session_scope() as s:
            wire = rewards.list_rewards(s, campaign_id="wire")
            # all issued but one (approved, not yet paid); one of them redeemed, one clawed back
            for r in wire[1:]:
                rewards.transition(s, r.id, "issued", idempotency_key=f"issue:{r.id}", actor="test")
            rewards.transition(
                s, wire[1].id, "redeemed", idempotency_key=f"redeem:{wire[1].id}", actor="test"
            )
            rewards.transition(s, wire[2].id, "revoked", idempotency_key=f"claw:{wire[2].id}", actor="test")
            for r in rewards.list_rewards(s, campaign_id="wire2"):
                rewards.transition(s, r.id, "issued", idempotency_key=f"issue:{r.id}", actor="test")
    with session_scope() as s:
        entries = rewards.entries(s, limit=10_000)
        assert campaign_outbox.flush_warehouse(s) > 0  # the campaign's facts reach the warehouse
    assert announced == [e["seq"] for e in entries]  # every ledger entry reached the subscribers

    cost = _cost_by_replaying_the_ledger(entries)
    days = sorted({day for _cid, day in cost})
    wire_cost = sum(v for (cid, _day), v in cost.items() if cid == "wire")
    both_cost = sum(cost.values())
    # of the 6 rewards: wire[0] only approved, wire[1] redeemed (counts), wire[2] revoked (does not)
    assert wire_cost == sum(r.value_fen for r in (wire[1], *wire[3:]))
    assert wire_cost > 0 and both_cost > wire_cost

    sheet = analytics.run_kpis(analytics.make_filters(days[0], days[-1], campaigns=["wire"]))
    assert sheet["reward_cost_fen"] == wire_cost
    assert sheet["total_cost_fen"] == wire_cost
    assert sheet["new_users"] > 0
    assert sheet["cac_fen"] == wire_cost / sheet["new_users"]
    assert sheet["roi"] == (sheet["revenue_fen"] - wire_cost) / wire_cost
    assert sheet["ltv_cac"] == (None if sheet["ltv_fen"] is None else sheet["ltv_fen"] / sheet["cac_fen"])

    both = analytics.run_kpis(analytics.make_filters(days[0], days[-1], campaigns=["wire", "wire2"]))
    assert both["reward_cost_fen"] == both_cost
    everything = analytics.run_kpis(analytics.make_filters(days[0], days[-1]))
    assert everything["reward_cost_fen"] == both_cost
    before = analytics.run_kpis(
        analytics.make_filters(days[0] - timedelta(days=7), days[0] - timedelta(days=1))
    )
    assert before["reward_cost_fen"] == 0 and before["cac_fen"] is None and before["roi"] is None
    given = analytics.run_kpis(analytics.make_filters(days[0], days[-1]), reward_cost_fen=7)
    assert given["reward_cost_fen"] == 7  # a cost given by the caller still wins

    r = api.c.get(
        "/api/v1/analytics/kpis", params={"start": str(days[0]), "end": str(days[-1]), "campaign": "wire"}
    )
    assert r.status_code == 200 and r.json()["reward_cost_fen"] == wire_cost
    assert (
        analytics.run_scorecard(analytics.make_filters(days[0], days[-1]))["kpis"]["reward_cost_fen"]
        == both_cost
    )
