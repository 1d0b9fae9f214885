"""Alert rules: their definitions (checked, audited) and their evaluation per day or per live hour,
with the automatic adjustment a rule may name (raise a campaign's reward tier, pause it)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.analytics import catalogue
from liebian.analytics import service as analytics
from liebian.campaigns import service as campaigns
from liebian.campaigns.common import CampaignError
from liebian.community import service as community
from liebian.db.base import utcnow
from liebian.engine import warehouse
from liebian.fraud import service as fraud
from liebian.lazy import lazy_import
from liebian.monitor.anomalies import kpi_frame, live_campaigns
from liebian.monitor.models import Alert, AlertRule
from liebian.monitor.notifications import notify_alert
from liebian.monitor.service import LEVELS, MonitorError, alert_row, alert_view, audit, invalid, raise_alert
from liebian.quality import service as quality
from liebian.scalars import as_float

if TYPE_CHECKING:
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    pd = lazy_import("pandas")

ACTIONS = ("none", "raise_reward_tier", "pause_campaign", "review_channel", "review_group")


# rule metric → the KPI sheet's metric it watches (names and formulas: analytics/catalogue.py)
RULE_KPIS = {"participation_rate": "participation_rate", "fission_rate": "referred_share_of_new"}
# rule metric → (where it comes from, what scope it is measured on)
RULE_METRICS = {
    **{
        rule: f"analytics.kpis {key} ({catalogue.metric(key).formula}), per campaign and day"
        for rule, key in RULE_KPIS.items()
    },
    "negative_share": "community negative-sentiment share of a group's messages, per group and day",
    "fraud_rate": "fraud.service.fraud_rate (rejected / all referrals), per campaign",
    "dq_error_rate": "quality report error rate (rejected + problem rows / received), per day",
}


DEFAULT_RULES = [
    {"name": "参与率低于15%", "metric": "participation_rate", "op": "<", "threshold": 0.15, "level": "重要",
     "action": "raise_reward_tier"},
    {"name": "裂变率低于10%", "metric": "fission_rate", "op": "<", "threshold": 0.10, "level": "重要",
     "action": "raise_reward_tier"},
    {"name": "社群负面占比超过5%", "metric": "negative_share", "op": ">", "threshold": 0.05, "level": "重要",
     "action": "review_group"},
    {"name": "作弊率突增", "metric": "fraud_rate", "op": ">", "threshold": 0.02, "level": "紧急",
     "action": "pause_campaign"},
    {"name": "数据质量错误率超过0.3%", "metric": "dq_error_rate", "op": ">", "threshold": 0.003, "level": "一般",
     "action": "review_channel"},
]  # fmt: skip


def _check_rule(data: dict) -> dict:
    out = dict(data)
    if out.get("metric") not in RULE_METRICS:
        raise invalid("metric", f"{out.get('metric')!r} is not one of {', '.join(RULE_METRICS)}")
    if out.get("op") not in ("<", ">"):
        raise invalid("op", f"{out.get('op')!r} is not < or >")
    threshold: Any = out.get("threshold")  # any JSON value: float() rejects the wrong kinds
    try:
        out["threshold"] = float(threshold)
    except (TypeError, ValueError):
        raise invalid("threshold", f"{out.get('threshold')!r} is not a number") from None
    if not 0 <= out["threshold"] <= 1:
        raise invalid("threshold", f"{out['threshold']} is a share and must lie in [0, 1]")
    out["level"] = out.get("level") or "一般"
    if out["level"] not in LEVELS:
        raise invalid("level", f"{out['level']!r} is not one of {', '.join(LEVELS)}")
    out["action"] = out.get("action") or "none"
    if out["action"] not in ACTIONS:
        raise invalid("action", f"{out['action']!r} is not one of {', '.join(ACTIONS)}")
    limits = out.get("limits") or {}
    if not isinstance(limits, dict):
        raise invalid("limits", "must be an object")
    for key in ("step_pct", "max_reward_fen", "max_actions_per_day"):
        if key in limits and (not isinstance(limits[key], int | float) or limits[key] <= 0):
            raise invalid(f"limits.{key}", f"must be a positive number, got {limits[key]!r}")
    if out.get("auto_adjust") and out["action"] == "raise_reward_tier" and "max_reward_fen" not in limits:
        raise invalid("limits.max_reward_fen", "auto-adjusting rewards needs a ceiling (max_reward_fen)")
    out["limits"] = limits
    name = (out.get("name") or "").strip()
    if not name or len(name) > 100:
        raise invalid("name", "1–100 characters")
    out["name"] = name
    return out


def rule_view(r: AlertRule) -> dict:
    return {
        "id": r.id,
        "name": r.name,
        "metric": r.metric,
        "op": r.op,
        "threshold": r.threshold,
        "campaign_id": r.campaign_id,
        "channel": r.channel,
        "level": r.level,
        "action": r.action,
        "auto_adjust": r.auto_adjust,
        "limits": json.loads(r.limits or "{}"),
        "enabled": r.enabled,
    }


def create_rule(session: Session, data: dict, *, actor: str) -> dict:
    d = _check_rule(data)
    if session.scalar(select(AlertRule).where(AlertRule.name == d["name"])):
        raise MonitorError(409, "exists", f"name: a rule named {d['name']!r} exists", "name")
    r = AlertRule(
        name=d["name"], metric=d["metric"], op=d["op"], threshold=d["threshold"],
        campaign_id=d.get("campaign_id") or None, channel=d.get("channel") or None, level=d["level"],
        action=d["action"], auto_adjust=bool(d.get("auto_adjust")), limits=json.dumps(d["limits"]),
        enabled=d.get("enabled", True),
    )  # fmt: skip
    session.add(r)
    session.flush()
    audit(session, actor, "monitor.rule.create", f"rule:{r.id}", rule_view(r))
    return rule_view(r)


def _rule(session: Session, rule_id: int) -> AlertRule:
    r = session.get(AlertRule, rule_id)
    if r is None:
        raise MonitorError(404, "not_found", f"rule {rule_id} not found")
    return r


def update_rule(session: Session, rule_id: int, changes: dict, *, actor: str) -> dict:
    r = _rule(session, rule_id)
    d = _check_rule({**rule_view(r), **{k: v for k, v in changes.items() if v is not None}})
    for key in ("name", "metric", "op", "threshold", "campaign_id", "channel", "level", "action", "enabled"):
        setattr(r, key, d.get(key))
    r.auto_adjust = bool(d.get("auto_adjust"))
    r.limits = json.dumps(d["limits"])
    r.updated_at = utcnow()
    session.flush()
    audit(session, actor, "monitor.rule.update", f"rule:{r.id}", changes)
    return rule_view(r)


def delete_rule(session: Session, rule_id: int, *, actor: str) -> dict:
    """Rules are disabled, not deleted: their alerts keep pointing at them."""
    r = _rule(session, rule_id)
    r.enabled = False
    session.flush()
    audit(session, actor, "monitor.rule.disable", f"rule:{r.id}", {})
    return rule_view(r)


def list_rules(session: Session) -> list[dict]:
    return [rule_view(r) for r in session.scalars(select(AlertRule).order_by(AlertRule.id))]


def install_default_rules(session: Session, *, actor: str = "system:monitor") -> list[dict]:
    """The plan's rules (participation < 15%, fission < 10%, negative share > 5%, …), once."""
    have = set(session.scalars(select(AlertRule.name)))
    return [create_rule(session, d, actor=actor) for d in DEFAULT_RULES if d["name"] not in have]


def _compare(op: str, value: float, threshold: float) -> bool:
    return value < threshold if op == "<" else value > threshold


# rule metric → (series KPI, the count it divides by); checked per hour for live campaigns
HOURLY_RULES = {rule: (key, str(catalogue.metric(key).denominator)) for rule, key in RULE_KPIS.items()}


MIN_HOURLY_BASE = 30  # persons in the hour's base: a rate over fewer is noise, not a signal


def _measure_hour(
    session: Session, rule: AlertRule, hour: datetime, engine: str | None, now: datetime
) -> list[tuple[dict, float]]:
    """(scope, value) pairs of a rate rule in one finished local hour, for each live campaign."""
    key, base = HOURLY_RULES[rule.metric]
    live = [c["campaign_id"] for c in live_campaigns(session)]
    out = []
    for cid in [rule.campaign_id] if rule.campaign_id in live else [] if rule.campaign_id else live:
        frame = kpi_frame(hour.date(), hour.date(), grain="hour", campaign_id=cid, channel=rule.channel,
                          engine=engine, now=now)  # fmt: skip
        at = pd.Timestamp(hour)
        if at in frame.index and as_float(frame.at[at, base]) >= MIN_HOURLY_BASE:
            out.append(({"campaign_id": cid, "channel": rule.channel}, as_float(frame.at[at, key])))
    return out


def _measure(session: Session, rule: AlertRule, day: date, engine: str | None) -> list[tuple[dict, float]]:
    """(scope, value) pairs a rule is checked on for `day`."""
    if rule.metric in RULE_KPIS:
        key = RULE_KPIS[rule.metric]
        ids = [rule.campaign_id] if rule.campaign_id else [c["campaign_id"] for c in live_campaigns(session)]
        out = []
        for cid in ids:
            f = analytics.make_filters(
                day, day, channels=[rule.channel] if rule.channel else (), campaigns=[cid]
            )
            v = analytics.run_kpis(f, engine=engine, reward_cost_fen=0).get(key)
            if v is not None:
                out.append(({"campaign_id": cid, "channel": rule.channel}, float(v)))
        return out
    if rule.metric == "negative_share":
        with warehouse.connect() as con:
            rows = community.negative_share(con, day, day)
        return [
            ({"group_id": r["group_id"]}, r["negative_share"])
            for r in rows
            if r["messages"] >= community.MIN_MESSAGES
        ]
    if rule.metric == "fraud_rate":
        rows = fraud.fraud_rate(session)
        return [({"campaign_id": r["campaign_id"]}, r["fraud_rate"]) for r in rows
                if not rule.campaign_id or r["campaign_id"] == rule.campaign_id]  # fmt: skip
    if rule.metric == "dq_error_rate":
        start = datetime.combine(day, datetime.min.time())
        with warehouse.connect() as con:
            report = quality.quality_report(con, start=start, end=start + timedelta(days=1))
        if report.error_rate.rows_received == 0:
            return []
        return [({"channel": rule.channel}, report.error_rate.error_rate)]
    raise invalid("metric", f"unknown metric {rule.metric!r}")


def evaluate_rules(
    session: Session,
    day: date | None = None,
    *,
    hour: datetime | None = None,
    now: datetime | None = None,
    engine: str | None = None,
    notify_new: bool = True,
    rule_ids: Iterable[int] | None = None,
) -> list[dict]:
    """Check every enabled rule (or those of `rule_ids`) for `day`; open (or update) alerts; apply
    auto-adjust policies; notify new alerts. With `hour` (a finished local hour) instead, the rate
    rules (HOURLY_RULES) are checked on that hour of every live campaign whose base reaches
    MIN_HOURLY_BASE; the other rules are daily."""
    if (day is None) == (hour is None):
        raise invalid("day", "give a day or an hour (not both)")
    if hour is not None:
        hour = hour.replace(minute=0, second=0, microsecond=0)
        period = hour.strftime("%Y-%m-%dT%H:00")
    else:
        assert day is not None  # exactly one of day and hour, checked above
        period = day.isoformat()
    now = now or utcnow()
    out = []
    q = select(AlertRule).where(AlertRule.enabled.is_(True))
    if rule_ids is not None:
        q = q.where(AlertRule.id.in_(list(rule_ids)))
    if hour is not None:
        q = q.where(AlertRule.metric.in_(list(HOURLY_RULES)))
    for rule in session.scalars(q.order_by(AlertRule.id)):
        if hour is not None:
            measured = _measure_hour(session, rule, hour, engine, now)
        else:
            assert day is not None  # as above
            measured = _measure(session, rule, day, engine)
        for scope, value in measured:
            if not _compare(rule.op, value, rule.threshold):
                continue
            view, new = raise_alert(
                session, kind="threshold", metric=rule.metric, scope=scope, level=rule.level,
                title=f"{rule.name}（{period}）：实际 {value:.2%}，阈值 {rule.op} {rule.threshold:.2%}",
                observed=value, threshold=rule.threshold, period=period,
                suggested_action=rule.action, rule_id=rule.id, now=now,
            )  # fmt: skip
            if not new and view["status"] == "resolved":
                continue  # resolved for this subject and day, and no higher level crossed
            if new and rule.auto_adjust:
                view = auto_adjust(session, rule, view, now=now)
            if new and notify_new:
                notify_alert(session, view, "opened")
            out.append(view)
    return out


def auto_adjust(session: Session, rule: AlertRule, alert: dict, *, now: datetime | None = None) -> dict:
    """Apply the rule's action within its limits; audit it; record what was done on the alert."""

    now = now or utcnow()
    limits = json.loads(rule.limits or "{}")
    a = alert_row(session, alert["id"])
    cid = alert["scope"].get("campaign_id")
    actor = f"system:monitor-rule:{rule.id}"
    day_start = now.replace(hour=0, minute=0, second=0, microsecond=0)
    done_today = sum(
        1 for x in session.scalars(select(Alert).where(Alert.rule_id == rule.id, Alert.first_seen >= day_start))
        if x.auto_action.startswith("applied")
    )  # fmt: skip
    if done_today >= int(limits.get("max_actions_per_day", 1)):
        a.auto_action = (
            f"skipped: limit of {int(limits.get('max_actions_per_day', 1))} action(s) a day reached"
        )
    elif not cid:
        a.auto_action = "skipped: the alert names no campaign"
    else:
        try:
            if rule.action == "pause_campaign":
                campaigns.pause(session, cid, actor=actor)
                a.auto_action = f"applied: paused campaign {cid}"
            elif rule.action == "raise_reward_tier":
                a.auto_action = _raise_rewards(session, campaigns, cid, limits, actor)
            else:
                a.auto_action = f"skipped: {rule.action} needs a person"
        except CampaignError as exc:
            a.auto_action = f"failed: {exc}"
    session.flush()
    audit(session, actor, "monitor.auto_adjust", f"alert:{a.id}", {"rule": rule.id, "campaign_id": cid,
                                                                      "result": a.auto_action})  # fmt: skip
    return alert_view(a)


def _raise_rewards(session: Session, campaigns: Any, cid: str, limits: dict, actor: str) -> str:
    """Raise every tier's reward by step_pct (default 20%), never above max_reward_fen."""
    view = campaigns.get_campaign(session, cid)
    rules = view["rules"]
    step = float(limits.get("step_pct", 0.2))
    ceiling = int(limits["max_reward_fen"])
    changed = []
    for i, tier in enumerate(rules.get("tiers") or []):
        old = int(tier["reward"]["value_fen"])
        new = min(ceiling, int(round(old * (1 + step))))
        if new > old:
            tier["reward"]["value_fen"] = new
            changed.append(f"tier {i + 1}: {old}→{new} fen")
    if not changed:
        return f"skipped: every tier is at the ceiling of {ceiling} fen"
    campaigns.edit_campaign(session, cid, rules, note="auto-adjust by monitor", actor=actor)
    return "applied: raised rewards " + ", ".join(changed)
