""" "Move budget to the best channel": per-channel results from a constructed warehouse whose answer
is known, the option on a real alert (in place of pausing), the report, the console, and the
proposal path (a reviewed version whose note carries the move).

The warehouse (campaign c_move, the 10 display-zone days ending 2026-11-19): every day wecom brings
6 invitees for one ¥6 reward (1 user per yuan), douyin 2 invitees for one ¥8 reward (0.25 per yuan).
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient

from liebian.campaigns import service as campaigns
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.decisions import channels, options, service
from liebian.engine import warehouse
from liebian.reports import service as reports
from liebian.web.app import create_app
from shared_helpers import make_api_key

sys.path.insert(0, str(Path(__file__).parent))
from test_decisions_options import DAY, _low_participation_alert  # noqa: E402

OFFSET = timedelta(hours=8)  # Asia/Shanghai
DAYS = [DAY - timedelta(days=k) for k in range(10)]
CID = "c_move"  # its own id: campaign rules are cached per id and version across stores


def build(per_day: dict[str, list[tuple[int, int]]], extra_rewards: list[dict] = ()) -> None:
    """Edges and issued rewards: per channel, per day (newest last) (invitees, reward fen); each
    day's reward goes to that day's inviter, whose edges are all in that channel."""
    edges, events, pid = [], [], 1000
    for channel, days in per_day.items():
        for k, (invitees, fen) in enumerate(days):
            noon = (
                datetime.combine(DAYS[len(days) - 1 - k], datetime.min.time()) + timedelta(hours=12) - OFFSET
            )
            inviter, pid = pid, pid + 1
            for _ in range(invitees):
                edges.append({"inviter_person_id": inviter, "invitee_person_id": pid, "campaign_id": CID,
                              "channel": channel, "ts": noon, "event_id": f"edge{pid}"})  # fmt: skip
                pid += 1
            events.append(_reward(len(events), inviter, noon + timedelta(hours=1), fen))
    for r in extra_rewards:
        events.append(
            _reward(len(events), r["person"], r["at"], r["fen"], r.get("event", "reward_issued"), r.get("id"))
        )
    with warehouse.connect() as con:
        for name, rows in (("referral_edges", edges), ("events", events)):
            if not rows:
                continue
            con.register("incoming", pd.DataFrame(rows))
            con.execute(f"INSERT INTO {name} BY NAME SELECT * FROM incoming")
            con.unregister("incoming")


def _reward(
    i: int, person: int, at: datetime, fen: int, event: str = "reward_issued", rid: int | None = None
):
    return {"event_id": f"rw{i}", "ts": at, "person_id": person, "id_type": "app", "user_id": f"p{person}",
            "event": event, "channel": "campaign", "campaign_id": CID, "batch_id": "t", "ingested_at": utcnow(),
            "props": f'{{"reward_id": {rid if rid is not None else 90000 + i}, "value_fen": {fen}}}'}  # fmt: skip


STEADY = {"wecom": [(6, 600)] * 10, "douyin": [(2, 800)] * 10}


def known_answer(per_day: dict[str, list[tuple[int, int]]]) -> tuple[str, str, float, float]:
    """Plain arithmetic: (worst, best, moved fen over 28 days, extra users)."""
    eff = {c: sum(n for n, _ in d) / (sum(f for _, f in d) / 100) for c, d in per_day.items()}
    worst, best = min(eff, key=eff.__getitem__), max(eff, key=eff.__getitem__)
    moved = 0.2 * sum(f for _, f in per_day[worst]) / 10 * 28
    return worst, best, moved, moved / 100 * (eff[best] - eff[worst])


def test_per_channel_results_and_the_move_have_the_known_answer(store: str) -> None:
    mixed = 5000  # an inviter with 3 wecom edges and 1 douyin edge: a ¥4 reward splits 3:1
    build(STEADY)
    with warehouse.connect() as con:
        con.execute(f"""INSERT INTO referral_edges VALUES
            ({mixed}, 6001, '{CID}', 'wecom', TIMESTAMP '2026-11-19 03:00:00', 'm1'),
            ({mixed}, 6002, '{CID}', 'wecom', TIMESTAMP '2026-11-19 03:00:00', 'm2'),
            ({mixed}, 6003, '{CID}', 'wecom', TIMESTAMP '2026-11-19 03:00:00', 'm3'),
            ({mixed}, 6004, '{CID}', 'douyin', TIMESTAMP '2026-11-19 03:00:00', 'm4')""")
        rows = channels.daily_results(con, CID)
    last = {
        (r.channel, r.referred_users, r.reward_cost_fen) for r in rows if r.day == max(x.day for x in rows)
    }
    assert last == {("wecom", 9, 600.0), ("douyin", 3, 800.0)}  # the mixed edges, before their reward
    build({}, [{"person": mixed, "at": datetime(2026, 11, 19, 4), "fen": 400},
               {"person": mixed, "at": datetime(2026, 11, 19, 5), "fen": 999, "id": 77},
               {"person": mixed, "at": datetime(2026, 11, 19, 6), "fen": 999, "event": "reward_revoked", "id": 77}])  # fmt: skip
    with warehouse.connect() as con:
        rows = channels.daily_results(con, CID)
    last = {
        (r.channel, r.referred_users, r.reward_cost_fen) for r in rows if r.day == max(x.day for x in rows)
    }
    assert last == {("wecom", 9, 900.0), ("douyin", 3, 900.0)}  # 3:1 of ¥4; the revoked reward costs nothing


def test_the_option_replaces_pause_and_its_effect_is_the_arithmetic(store: str) -> None:
    alert = _low_participation_alert(CID)
    build(STEADY)
    with session_scope() as s:
        by = {o["option"]: o for o in options.for_alert(s, alert["id"])["options"]}
    assert list(by) == ["raise_invitee_reward", "shorten_window", channels.OPTION]
    move = by[channels.OPTION]
    worst, best, moved, users = known_answer(STEADY)
    ev = move["evidence"]
    assert (
        (ev["from_channel"], ev["to_channel"], ev["moved_fen"])
        == (worst, best, round(moved))
        == ("douyin", "wecom", 4480)
    )
    assert move["expected"]["users"] == pytest.approx(users)  # ¥44.80 × 0.75 user per yuan
    # every day alike: every bootstrap resample has the same efficiencies, the range is the point
    assert move["expected"]["users_range"] == pytest.approx([users, users])
    assert move["expected"]["cost_fen"] == 0 and move["proposable"]
    assert {c["channel"]: c["users_per_yuan"] for c in ev["channels"]} == {"douyin": 0.25, "wecom": 1.0}


def test_a_noisy_channel_gets_a_range_around_its_effect(store: str) -> None:
    noisy = {"wecom": [(2, 600), (10, 600)] * 5, "douyin": [(2, 800)] * 10}
    build(noisy)
    with warehouse.connect() as con:
        move = channels.move_budget(channels.daily_results(con, CID), 28)
    assert move is not None
    low, high = move["expected"]["users_range"]
    assert move["expected"]["users"] == pytest.approx(known_answer(noisy)[3])
    assert low < move["expected"]["users"] < high
    # one channel with cost is nothing to compare: no option
    with warehouse.connect() as con:
        con.execute(
            "DELETE FROM events WHERE person_id IN (SELECT inviter_person_id FROM referral_edges WHERE channel = 'douyin')"
        )
        assert channels.move_budget(channels.daily_results(con, CID), 28) is None


def test_report_console_and_proposal(store: str) -> None:
    alert = _low_participation_alert(CID)
    build(STEADY)
    with session_scope() as s:
        (found,) = options.for_report(s, {"kpis": {"reached": 40, "participation_rate": 0.1},
                                          "recommendations": [{"rule": "k_factor<1", "recommendation": "…"}]})  # fmt: skip
    assert found["options"][-1]["option"] == channels.OPTION
    report = {"kind": "weekly", "period_start": "2026-11-16", "period_end": "2026-11-22", "generated_at": "2026-11-23T00:00:00",
              "kpis": {}, "previous_kpis": {}, "targets": [], "funnel": [], "campaigns": [], "cohorts": [], "fraud": [],
              "alerts": [], "top_spreaders": [], "recommendations": [], "options": [found]}  # fmt: skip
    assert "把最差渠道 20% 的奖励预算移到最佳渠道" in reports.render_html(report)
    operator = {"Authorization": f"Bearer {make_api_key('service', 'operator')}"}
    reviewer = {"Authorization": f"Bearer {make_api_key('service', 'operator')}"}
    with TestClient(create_app()) as c:
        page = c.get(f"/alerts/{alert['id']}/options", headers=operator).text
        assert "把最差渠道 20% 的奖励预算移到最佳渠道" in page and "抖音" in page and "企业微信" in page
        r = c.post("/api/v1/decisions/proposals", json={"alert_id": alert["id"], "option": channels.OPTION},
                   headers=operator)  # fmt: skip
        assert r.status_code == 201, r.text
        p = r.json()
        r = c.post(f"/api/v1/decisions/proposals/{p['id']}/approve", headers=reviewer)
        assert r.status_code == 200 and r.json()["applied_version"] == 2
    with session_scope() as s:
        live = campaigns.get_campaign(s, CID)
        notes = [v["note"] for v in campaigns.versions(s, CID)]
        assert service.list_proposals(s)[0]["status"] == "approved"
    assert live["version"] == 2 and live["rules"] == p["rules"]  # the rules hold no channel budget
    assert any("4480 fen of reward budget from douyin to wecom" in n for n in notes)
