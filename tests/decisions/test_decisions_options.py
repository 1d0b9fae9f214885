"""Options with expected effects for a real threshold alert (DuckDB warehouse → monitoring rule),
checked against an independent run of the growth simulation; a past A/B readout of a reward change
replaces the assumed lift; the report carries the options; a proposal is a draft rules version that
is not live until a second person approves it. On SQLite and PostgreSQL (the `store` fixture)."""

from __future__ import annotations

import io
import json
import sys
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from typer.testing import CliRunner

from liebian.campaigns import service as campaigns
from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.decisions import options
from liebian.monitor import rules
from liebian.monitor import service as monitor
from liebian.predict import results as predict_results
from liebian.predict.simulate import GrowthParams, simulate
from liebian.reports import service as reports
from liebian.web.app import create_app
from shared_helpers import make_api_key

sys.path.insert(0, str(Path(__file__).parents[1] / "monitor"))
sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import rules as campaign_rules  # noqa: E402
from test_monitor_hourly import OFFSET, write  # noqa: E402

DAY = date(2026, 11, 19)
T0 = datetime(2026, 11, 20, 1, 0)  # naive UTC, 09:00 local the next morning


def _low_participation_alert(cid: str = "c_low") -> dict:
    """40 persons reached on DAY, 4 joined (participation 10 % < 15 %): the rule opens an alert."""
    with session_scope() as s:
        campaigns.create_campaign(s, campaign_rules("invite_task"), campaign_id=cid)
        campaigns.launch(s, cid, now=datetime.combine(DAY, datetime.min.time()) - OFFSET - timedelta(days=2))
        rule = rules.create_rule(s, {"name": "参与率低于15%", "metric": "participation_rate", "op": "<",
                                     "threshold": 0.15, "campaign_id": cid, "level": "重要"}, actor="t")  # fmt: skip
    start = datetime.combine(DAY, datetime.min.time()) + timedelta(hours=10)
    write([{"at": start + timedelta(minutes=p), "person": p, "campaign": cid,
            "event": "join_campaign" if p < 4 else "page_view"} for p in range(40)])  # fmt: skip
    with session_scope() as s:
        (alert,) = rules.evaluate_rules(s, DAY, now=T0, rule_ids=[rule["id"]], notify_new=False)
    return alert


def _paired(base: GrowthParams, changed: GrowthParams | None) -> tuple[float, float, float]:
    """The independent check: simulate both, difference per run, mean and 10/90th percentiles."""
    before = simulate(base, 400, 20261206)[:, 1:].sum(axis=1)
    after = simulate(changed, 400, 20261206)[:, 1:].sum(axis=1) if changed else np.zeros_like(before)
    d = after - before
    return float(d.mean()), float(np.percentile(d, 10)), float(np.percentile(d, 90))


def test_alert_options_equal_an_independent_simulation(store: str) -> None:
    alert = _low_participation_alert()
    with session_scope() as s:
        out = options.for_alert(s, alert["id"])
    by = {o["option"]: o for o in out["options"]}
    assert list(by) == ["raise_invitee_reward", "shorten_window", "pause_campaign"]
    # the campaign as it is: 40 reached, 10 % took part, no referrals yet (k default), tier-1 reward ¥5
    base = GrowthParams(seed_users=40, k_per_participant=2.0, participation=0.1, cycle_days=7.0,
                        cost_per_user_fen=500, cycles=4)  # fmt: skip
    raised = GrowthParams(seed_users=40, k_per_participant=2.0, participation=0.11, cycle_days=7.0,
                          cost_per_user_fen=1000, cycles=4)  # fmt: skip
    shorter = GrowthParams(seed_users=40, k_per_participant=2.0, participation=0.1, cycle_days=5.6,
                           cost_per_user_fen=500, cycles=5)  # fmt: skip
    for code, changed in (
        ("raise_invitee_reward", raised),
        ("shorten_window", shorter),
        ("pause_campaign", None),
    ):
        mean, p10, p90 = _paired(base, changed)
        e = by[code]["expected"]
        assert e["users"] == pytest.approx(mean) and e["users_range"] == pytest.approx([p10, p90]), code
    # pausing loses exactly what the campaign would have brought
    assert by["pause_campaign"]["expected"]["users"] == pytest.approx(
        -by["pause_campaign"]["expected"]["baseline_users"]
    )
    assert by["raise_invitee_reward"]["expected"]["users"] > 0  # more participation, more users
    ev = by["raise_invitee_reward"]["evidence"]
    assert (
        ev["metric"] == "participation_rate"
        and ev["observed"] == pytest.approx(0.1)
        and ev["threshold"] == 0.15
    )
    assert ev["reward_lift_from"] == "assumption" and ev["params_from"]["participation"] == "calibration"
    assert by["raise_invitee_reward"]["proposable"] and not by["pause_campaign"]["proposable"]


def test_a_recorded_ab_readout_replaces_the_assumed_reward_lift(store: str) -> None:
    alert = _low_participation_alert()
    entry = predict_results.record_readout(
        "邀请奖励 +5 元",
        {"name": "A", "units": 2000, "conversions": 200},
        {"name": "B", "units": 2000, "conversions": 260},
    )
    assert entry["metrics"]["status"] == "final"
    with session_scope() as s:
        (raise_opt,) = [
            o for o in options.for_alert(s, alert["id"])["options"] if o["option"] == "raise_invitee_reward"
        ]
    assert raise_opt["evidence"]["reward_lift"] == pytest.approx(0.3)  # 13 % vs 10 %
    assert raise_opt["evidence"]["reward_lift_from"].startswith(f"experiment {entry['id']}")
    base = GrowthParams(seed_users=40, participation=0.1, cost_per_user_fen=500, cycles=4)
    raised = GrowthParams(seed_users=40, participation=0.13, cost_per_user_fen=1000, cycles=4)
    assert raise_opt["expected"]["users"] == pytest.approx(_paired(base, raised)[0])


def test_the_report_carries_options_in_html_and_xlsx(store: str) -> None:
    with session_scope() as s:
        monitor.raise_alert(
            s, kind="threshold", metric="fraud_rate", scope={"campaign_id": "c1"}, level="紧急",
            title="作弊率超过阈值", observed=0.02, expected=0.005, now=datetime(2026, 11, 3, 2),
        )  # fmt: skip
    report = reports.build_report("weekly", date(2026, 11, 2), date(2026, 11, 8))
    findings = {f["finding"]: f for f in report["options"]}
    assert set(findings) == {r["rule"] for r in report["recommendations"]} and "urgent_alerts" in findings
    assert [o["option"] for o in findings["urgent_alerts"]["options"]] == [
        "pause_campaign",
        "raise_invitee_reward",
    ]
    html = reports.render_html(report)
    assert 'id="options"' in html and "暂停活动" in html and "Pause the campaign" not in html
    assert "Pause the campaign" in reports.render_html(report, "en")
    sheet = list(load_workbook(io.BytesIO(reports.render_xlsx(report)))["Options"].values)
    assert sheet[0][:3] == ("finding", "option", "title_zh")
    assert len(sheet) - 1 == sum(len(f["options"]) for f in report["options"])


def test_a_proposal_is_a_draft_until_another_person_approves_it(store: str) -> None:
    alert = _low_participation_alert()
    operator = {"Authorization": f"Bearer {make_api_key('service', 'operator')}"}
    reviewer = {"Authorization": f"Bearer {make_api_key('service', 'operator')}"}
    analyst = {"Authorization": f"Bearer {make_api_key('service', 'analyst')}"}
    with TestClient(create_app()) as c:
        r = c.get("/api/v1/decisions/options", params={"alert_id": alert["id"]}, headers=analyst)
        assert r.status_code == 200 and len(r.json()["options"]) == 3
        r = c.post("/api/v1/decisions/proposals", json={"alert_id": alert["id"], "option": "raise_invitee_reward"},
                   headers=analyst)  # fmt: skip
        assert r.status_code == 403  # analysts read options; proposing changes a campaign
        r = c.post("/api/v1/decisions/proposals", json={"alert_id": alert["id"], "option": "pause_campaign"},
                   headers=operator)  # fmt: skip
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "option"
        r = c.post("/api/v1/decisions/proposals", json={"alert_id": alert["id"], "option": "x", "extra": 1},
                   headers=operator)  # fmt: skip
        assert r.status_code == 422
        r = c.post("/api/v1/decisions/proposals", json={"alert_id": alert["id"], "option": "raise_invitee_reward"},
                   headers=operator)  # fmt: skip
        assert r.status_code == 201, r.text
        p = r.json()
        assert p["status"] == "draft" and p["base_version"] == 1
        assert [t["reward"]["value_fen"] for t in p["rules"]["tiers"]] == [1000, 3500]
        with session_scope() as s:  # nothing live changed yet
            live = campaigns.get_campaign(s, "c_low")
        assert live["version"] == 1 and [t["reward"]["value_fen"] for t in live["rules"]["tiers"]] == [
            500,
            3000,
        ]
        r = c.post(f"/api/v1/decisions/proposals/{p['id']}/approve", headers=operator)
        assert r.status_code == 403  # the proposer does not approve their own change
        r = c.post(f"/api/v1/decisions/proposals/{p['id']}/approve", headers=reviewer)
        assert r.status_code == 200 and r.json()["status"] == "approved" and r.json()["applied_version"] == 2
        assert c.post(f"/api/v1/decisions/proposals/{p['id']}/approve", headers=reviewer).status_code == 409
    with session_scope() as s:
        live = campaigns.get_campaign(s, "c_low")
        trail = [a["action"] for a in campaigns.audit_log(s, "c_low")]
    assert live["version"] == 2 and [t["reward"]["value_fen"] for t in live["rules"]["tiers"]] == [1000, 3500]
    assert "campaign.edit" in trail


def test_cli_options_propose_and_reject(store: str) -> None:
    alert = _low_participation_alert()
    runner = CliRunner()
    out = runner.invoke(cli_app, ["decisions", "options", "--alert", str(alert["id"]), "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [o["option"] for o in json.loads(out.stdout)["options"]][0] == "raise_invitee_reward"
    out = runner.invoke(cli_app, ["decisions", "propose", "--alert", str(alert["id"]), "--option", "shorten_window",
                                  "--format", "json"])  # fmt: skip
    assert out.exit_code == 0, out.output
    pid = json.loads(out.stdout)["id"]
    out = runner.invoke(
        cli_app, ["decisions", "reject", str(pid), "--reason", "先观察一周", "--format", "json"]
    )
    assert out.exit_code == 0 and json.loads(out.stdout)["status"] == "rejected"
    out = runner.invoke(cli_app, ["decisions", "options", "--alert", "999999"])
    assert out.exit_code == 2 and "999999" in out.output
    with session_scope() as s:
        assert campaigns.get_campaign(s, "c_low")["version"] == 1  # rejected: nothing applied


def test_a_projection_beyond_the_simulation_gives_no_figure_and_says_why() -> None:
    explosive = GrowthParams(
        seed_users=1_000_000, k_per_participant=200.0, participation=1.0, churn=0.0, cycles=28
    )
    e = options.effect(explosive, None)
    assert e["users"] is None and e["users_range"] == [None, None] and "outgrows" in e["error"]
    report = {"kind": "weekly", "period_start": "2026-11-02", "period_end": "2026-11-08",
              "generated_at": "2026-11-09T00:00:00", "kpis": {}, "previous_kpis": {}, "targets": [], "funnel": [],
              "campaigns": [], "cohorts": [], "fraud": [], "alerts": [], "top_spreaders": [],
              "recommendations": [], "options": [{"finding": "k_factor<1", "options": [
                  {"option": "pause_campaign", "title_zh": "暂停活动", "title_en": "Pause the campaign", "expected": e}]}]}  # fmt: skip
    assert "outgrows" in reports.render_html(report)
