"""Alert lifecycle, dedup, grouping and escalation with a controlled clock; rules and auto-adjust."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from liebian.auth.models import AuditEntry
from liebian.campaigns import service as campaigns
from liebian.monitor import notifications, rules, service
from liebian.monitor.models import AlertRule
from liebian.monitor.service import MonitorError

T0 = datetime(2026, 11, 20, 9, 0)

INVITE_RULES = {
    "type": "invite_task",
    "title": "老带新·邀请有礼",
    "rules_text": "每邀请一位新朋友完成首单，即可获得奖励；每人最多邀请3位，奖励在退款期结束后发放。",
    "per_inviter_cap": 3,
    "budget_fen": 1_000_000,
    "hold_days": 7,
    "collects": ["phone"],
    "consent_step": True,
    "tiers": [
        {"threshold": 1, "reward": {"code": "T1", "value_fen": 500}},
        {"threshold": 3, "reward": {"code": "T3", "value_fen": 3000}},
    ],
}


def _raise(
    session, level="一般", scope=None, now=T0, metric="participation_rate", observed=0.1, rule_id=None
):
    return service.raise_alert(
        session, kind="threshold", metric=metric, scope=scope or {"campaign_id": "c1"}, level=level,
        title="参与率低", observed=observed, threshold=0.15, period="2026-11-19", now=now, rule_id=rule_id,
    )  # fmt: skip


def _no_notify(*args, **kwargs):
    return []


def test_deadlines_follow_the_levels(session) -> None:
    for level, hours in (("一般", 2), ("重要", 4), ("紧急", 8)):
        a, new = _raise(session, level, scope={"campaign_id": f"c-{level}"})
        assert new and a["status"] == "open"
        assert datetime.fromisoformat(a["due_at"]) - datetime.fromisoformat(a["first_seen"]) == timedelta(
            hours=hours
        )


def test_lifecycle_open_acknowledged_resolved(session) -> None:
    a, _ = _raise(session)
    acked = service.acknowledge(session, a["id"], actor="ops1", now=T0 + timedelta(minutes=30))
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "ops1"
    with pytest.raises(MonitorError, match="only an open alert"):
        service.acknowledge(session, a["id"], actor="ops1")
    with pytest.raises(MonitorError, match="root-cause"):
        service.resolve(session, a["id"], "  ", actor="ops1")
    done = service.resolve(
        session, a["id"], "分享卡片失效，已修复", actor="ops1", now=T0 + timedelta(hours=1)
    )
    assert done["status"] == "resolved" and done["root_cause"] == "分享卡片失效，已修复"
    assert done["resolved_at"] == (T0 + timedelta(hours=1)).isoformat()
    with pytest.raises(MonitorError, match="already resolved"):
        service.resolve(session, a["id"], "again", actor="ops1")
    actions = [e.action for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq))]
    assert actions[-2:] == ["monitor.alert.acknowledge", "monitor.alert.resolve"]


def test_dedup_updates_the_unresolved_alert_and_a_resolved_one_stays_resolved_that_day(session) -> None:
    a, new = _raise(session, observed=0.10)
    b, again = _raise(session, observed=0.08, now=T0 + timedelta(hours=1))
    assert new and not again and b["id"] == a["id"]
    assert b["occurrences"] == 2 and b["observed"] == 0.08
    assert b["due_at"] == a["due_at"]  # a repeat does not push the deadline out
    other, new_scope = _raise(session, scope={"campaign_id": "c2"})
    assert new_scope and other["id"] != a["id"]
    service.resolve(session, a["id"], "fixed", actor="ops")
    c, reopened = _raise(session, now=T0 + timedelta(hours=3))
    assert not reopened and c["id"] == a["id"] and c["status"] == "resolved"
    d, worse = _raise(session, "紧急", now=T0 + timedelta(hours=3))  # a higher level opens a new one
    assert worse and d["id"] not in (a["id"], other["id"])


def test_grouping_by_campaign_worst_level_first(session) -> None:
    _raise(session, "一般", {"campaign_id": "c1"}, metric="participation_rate")
    _raise(session, "紧急", {"campaign_id": "c1"}, metric="fraud_rate")
    _raise(session, "重要", {"group_id": "wrG1"}, metric="negative_share")
    groups = service.grouped_alerts(session)
    assert [(g["group_key"], g["alerts"], g["worst_level"]) for g in groups] == [
        ("campaign_id:c1", 2, "紧急"),
        ("group_id:wrG1", 1, "重要"),
    ]
    assert groups[0]["metrics"] == ["fraud_rate", "participation_rate"]


def test_escalation_when_the_deadline_passes(session) -> None:
    sent = []
    a, _ = _raise(session, "一般")
    ack, _ = _raise(session, "一般", scope={"campaign_id": "c-acked"})
    service.acknowledge(session, ack["id"], actor="ops", now=T0 + timedelta(minutes=5))
    notify = lambda s, alert, event: sent.append((alert["id"], event))  # noqa: E731
    # one minute before the 2 h deadline nothing happens
    assert (
        notifications.escalate_due(session, T0 + timedelta(hours=2) - timedelta(minutes=1), notify_fn=notify)
        == []
    )
    (e,) = notifications.escalate_due(session, T0 + timedelta(hours=2), notify_fn=notify)
    assert e["id"] == a["id"] and e["level"] == "重要" and e["escalations"] == 1
    assert e["due_at"] == (T0 + timedelta(hours=6)).isoformat()  # 重要: 4 h from the escalation
    assert sent == [(a["id"], "escalated")]  # the acknowledged one is answered: not escalated
    (e2,) = notifications.escalate_due(session, T0 + timedelta(hours=6), notify_fn=notify)
    assert e2["level"] == "紧急" and e2["escalations"] == 2
    (e3,) = notifications.escalate_due(session, T0 + timedelta(hours=14), notify_fn=notify)
    assert e3["level"] == "紧急" and e3["escalations"] == 3  # stays at the top, notified again
    assert notifications.escalate_due(session, T0 + timedelta(hours=15), notify_fn=notify) == []


def test_rules_are_validated_and_managed(session) -> None:
    with pytest.raises(MonitorError, match="metric"):
        rules.create_rule(session, {"name": "x", "metric": "nope", "op": "<", "threshold": 0.1}, actor="t")
    with pytest.raises(MonitorError, match="threshold"):
        rules.create_rule(
            session, {"name": "x", "metric": "fraud_rate", "op": ">", "threshold": 5}, actor="t"
        )
    with pytest.raises(MonitorError, match="max_reward_fen"):
        rules.create_rule(session, {"name": "x", "metric": "participation_rate", "op": "<", "threshold": 0.15,
                                      "action": "raise_reward_tier", "auto_adjust": True}, actor="t")  # fmt: skip
    installed = rules.install_default_rules(session)
    assert {(r["metric"], r["op"], r["threshold"]) for r in installed} == {
        ("participation_rate", "<", 0.15), ("fission_rate", "<", 0.10), ("negative_share", ">", 0.05),
        ("fraud_rate", ">", 0.02), ("dq_error_rate", ">", 0.003),
    }  # fmt: skip
    assert rules.install_default_rules(session) == []  # once
    r = rules.update_rule(session, installed[0]["id"], {"threshold": 0.2}, actor="t")
    assert r["threshold"] == 0.2
    assert rules.delete_rule(session, r["id"], actor="t")["enabled"] is False


def _rule(session, **kw) -> AlertRule:
    view = rules.create_rule(session, {"name": "参与率低", "metric": "participation_rate", "op": "<",
                                         "threshold": 0.15, "campaign_id": "c_auto", "level": "重要", **kw},
                               actor="t")  # fmt: skip
    return session.get(AlertRule, view["id"])


def test_auto_adjust_raises_rewards_within_the_ceiling_and_audits(session) -> None:
    campaigns.create_campaign(session, INVITE_RULES, campaign_id="c_auto")
    campaigns.launch(session, "c_auto")
    rule = _rule(session, action="raise_reward_tier", auto_adjust=True,
                 limits={"max_reward_fen": 3200, "step_pct": 0.2, "max_actions_per_day": 1})  # fmt: skip
    alert, _ = _raise(session, "重要", {"campaign_id": "c_auto"}, rule_id=rule.id)
    done = rules.auto_adjust(session, rule, alert, now=T0)
    assert done["auto_action"] == "applied: raised rewards tier 1: 500→600 fen, tier 2: 3000→3200 fen"
    tiers = campaigns.get_campaign(session, "c_auto")["rules"]["tiers"]
    assert [t["reward"]["value_fen"] for t in tiers] == [600, 3200]  # 3600 capped at the ceiling
    entries = session.scalars(select(AuditEntry).where(AuditEntry.action == "monitor.auto_adjust")).all()
    assert len(entries) == 1 and json.loads(entries[0].detail)["campaign_id"] == "c_auto"
    # the daily limit: a second alert the same day does not adjust again
    service.resolve(session, alert["id"], "raised", actor="t")
    again, _ = _raise(
        session, "重要", {"campaign_id": "c_auto"}, now=T0 + timedelta(hours=1), rule_id=rule.id
    )
    skipped = rules.auto_adjust(session, rule, again, now=T0 + timedelta(hours=1))
    assert skipped["auto_action"].startswith("skipped: limit")
    assert [
        t["reward"]["value_fen"] for t in campaigns.get_campaign(session, "c_auto")["rules"]["tiers"]
    ] == [600, 3200]


def test_auto_adjust_pauses_a_campaign(session) -> None:
    campaigns.create_campaign(session, INVITE_RULES, campaign_id="c_auto")
    campaigns.launch(session, "c_auto")
    rule = _rule(session, action="pause_campaign", auto_adjust=True)
    alert, _ = _raise(session, "紧急", {"campaign_id": "c_auto"})
    assert rules.auto_adjust(session, rule, alert, now=T0)["auto_action"] == "applied: paused campaign c_auto"
    assert campaigns.get_campaign(session, "c_auto")["status"] == "paused"
