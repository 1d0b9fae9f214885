"""Monitoring: metric series, anomaly scans, threshold rules, the alert lifecycle, notifications.

- Metric values come from the analytics service (KPI series per local day or hour and scope,
  `run_kpis` per day for the rules), the community service (negative share per group and day), the
  fraud service (fraud rate per campaign) and the quality service (error rate): nothing is
  re-derived here. Live campaigns are also watched per hour (`live_series`, `scan_live`).
- Alerts: levels 一般 / 重要 / 紧急 with response deadlines of 2 h / 4 h / 8 h, the source document's
  mapping (002 §7.3: 一般级 2 h, 重要级 4 h, 紧急级 8 h; DEADLINE_HOURS). open → acknowledged → resolved (a root-cause note
  is required to resolve). An alert with the same dedup key (kind, metric, scope) that is not
  resolved is updated (occurrences + 1, latest values) instead of opened again; `group_key` (the
  campaign / channel / group) groups alerts for the list view. An open alert whose deadline passes
  is escalated one level (a 紧急 alert stays 紧急 and is re-notified) with a new deadline.
- Every function that depends on the time takes `now` (naive UTC) so tests control the clock.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from datetime import date, datetime, timedelta
from typing import Any

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liebian.db.base import utcnow
from liebian.errors import DomainError
from liebian.monitor import detector, notify
from liebian.monitor.models import Alert, AlertRule, Delivery, NotifyChannel

LEVELS = ("一般", "重要", "紧急")
LEVEL_EN = {"一般": "minor", "重要": "major", "紧急": "critical"}
DEADLINE_HOURS = {"一般": 2, "重要": 4, "紧急": 8}
STATUSES = ("open", "acknowledged", "resolved")
ACTIONS = ("none", "raise_reward_tier", "pause_campaign", "review_channel", "review_group")
CHANNEL_KINDS = ("wecom", "dingtalk", "webhook", "email")

# rule metric → (where it comes from, what scope it is measured on)
RULE_METRICS = {
    "participation_rate": "analytics.kpis participation_rate (participants / reached), per campaign and day",
    "fission_rate": "analytics.kpis referred_share_of_new (new referred users / new users), per campaign and day",
    "negative_share": "community negative-sentiment share of a group's messages, per group and day",
    "fraud_rate": "fraud.service.fraud_rate (rejected / all referrals), per campaign",
    "dq_error_rate": "quality report error rate (rejected + problem rows / received), per day",
}
# KPI series the anomaly scan can watch (keys of analytics' KPI sheet)
SERIES_METRICS = (
    "participation_rate",
    "referred_share_of_new",
    "referral_rate",
    "paid_orders",
    "revenue_fen",
    "new_users",
    "active_users",
    "participants",
    "reached",
)

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


class MonitorError(DomainError):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        errors = None
        if status == 422 or field:  # which field, and why (also on a 404/409 that names one)
            reason = message.partition(": ")[2]
            errors = [{"field": field or "", "reason": reason or message}]
        super().__init__(code, message, status, field=field, errors=errors)


def _bad(field: str, reason: str) -> MonitorError:
    return MonitorError(422, "invalid", f"{field}: {reason}", field)


# ------------------------------------------------------------------ rules


def _check_rule(data: dict) -> dict:
    out = dict(data)
    if out.get("metric") not in RULE_METRICS:
        raise _bad("metric", f"{out.get('metric')!r} is not one of {', '.join(RULE_METRICS)}")
    if out.get("op") not in ("<", ">"):
        raise _bad("op", f"{out.get('op')!r} is not < or >")
    try:
        out["threshold"] = float(out.get("threshold"))
    except (TypeError, ValueError):
        raise _bad("threshold", f"{out.get('threshold')!r} is not a number") from None
    if not 0 <= out["threshold"] <= 1:
        raise _bad("threshold", f"{out['threshold']} is a share and must lie in [0, 1]")
    out["level"] = out.get("level") or "一般"
    if out["level"] not in LEVELS:
        raise _bad("level", f"{out['level']!r} is not one of {', '.join(LEVELS)}")
    out["action"] = out.get("action") or "none"
    if out["action"] not in ACTIONS:
        raise _bad("action", f"{out['action']!r} is not one of {', '.join(ACTIONS)}")
    limits = out.get("limits") or {}
    if not isinstance(limits, dict):
        raise _bad("limits", "must be an object")
    for key in ("step_pct", "max_reward_fen", "max_actions_per_day"):
        if key in limits and (not isinstance(limits[key], int | float) or limits[key] <= 0):
            raise _bad(f"limits.{key}", f"must be a positive number, got {limits[key]!r}")
    if out.get("auto_adjust") and out["action"] == "raise_reward_tier" and "max_reward_fen" not in limits:
        raise _bad("limits.max_reward_fen", "auto-adjusting rewards needs a ceiling (max_reward_fen)")
    out["limits"] = limits
    name = (out.get("name") or "").strip()
    if not name or len(name) > 100:
        raise _bad("name", "1–100 characters")
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
    _audit(session, actor, "monitor.rule.create", f"rule:{r.id}", rule_view(r))
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
    _audit(session, actor, "monitor.rule.update", f"rule:{r.id}", changes)
    return rule_view(r)


def delete_rule(session: Session, rule_id: int, *, actor: str) -> dict:
    """Rules are disabled, not deleted: their alerts keep pointing at them."""
    r = _rule(session, rule_id)
    r.enabled = False
    session.flush()
    _audit(session, actor, "monitor.rule.disable", f"rule:{r.id}", {})
    return rule_view(r)


def list_rules(session: Session) -> list[dict]:
    return [rule_view(r) for r in session.scalars(select(AlertRule).order_by(AlertRule.id))]


def install_default_rules(session: Session, *, actor: str = "system:monitor") -> list[dict]:
    """The plan's rules (participation < 15%, fission < 10%, negative share > 5%, …), once."""
    have = set(session.scalars(select(AlertRule.name)))
    return [create_rule(session, d, actor=actor) for d in DEFAULT_RULES if d["name"] not in have]


# ------------------------------------------------------------------ audit


def _audit(session: Session, actor: str, action: str, target: str, detail: dict) -> None:
    from liebian.auth import service as auth_service

    auth_service.audit(session, actor, action, target, detail)


# ------------------------------------------------------------------ alerts


def _scope_json(scope: dict) -> str:
    return json.dumps({k: v for k, v in sorted(scope.items()) if v is not None}, ensure_ascii=False)


def alert_view(a: Alert) -> dict:
    return {
        "id": a.id,
        "kind": a.kind,
        "rule_id": a.rule_id,
        "metric": a.metric,
        "scope": json.loads(a.scope or "{}"),
        "group_key": a.group_key,
        "level": a.level,
        "level_en": LEVEL_EN[a.level],
        "status": a.status,
        "title": a.title,
        "observed": a.observed,
        "expected": a.expected,
        "threshold": a.threshold,
        "period": a.period,
        "suggested_action": a.suggested_action,
        "auto_action": a.auto_action,
        "occurrences": a.occurrences,
        "first_seen": a.first_seen.isoformat(),
        "last_seen": a.last_seen.isoformat(),
        "due_at": a.due_at.isoformat(),
        "escalations": a.escalations,
        "acknowledged_by": a.acknowledged_by,
        "acknowledged_at": a.acknowledged_at.isoformat() if a.acknowledged_at else None,
        "resolved_by": a.resolved_by,
        "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
        "root_cause": a.root_cause,
    }


def raise_alert(
    session: Session,
    *,
    kind: str,
    metric: str,
    scope: dict,
    level: str,
    title: str,
    observed: float | None,
    expected: float | None = None,
    threshold: float | None = None,
    period: str = "",
    suggested_action: str = "none",
    rule_id: int | None = None,
    now: datetime | None = None,
) -> tuple[dict, bool]:
    """Open an alert, or update the unresolved one with the same key. Returns (alert, is_new)."""
    now = now or utcnow()
    if level not in LEVELS:
        raise _bad("level", f"{level!r} is not one of {', '.join(LEVELS)}")
    scope_json = _scope_json(scope)
    key = f"{kind}:{metric}:{scope_json}"[:255]
    existing = session.scalar(
        select(Alert)
        .where(Alert.dedup_key == key, Alert.status != "resolved")
        .order_by(Alert.id.desc())
        .limit(1)
    )
    if existing is not None:
        existing.occurrences += 1
        existing.last_seen = now
        existing.observed, existing.expected, existing.period = observed, expected, period
        session.flush()
        return alert_view(existing), False
    group = next((f"{k}:{scope[k]}" for k in ("campaign_id", "group_id", "channel") if scope.get(k)), "all")
    a = Alert(
        dedup_key=key, group_key=group, kind=kind, rule_id=rule_id, metric=metric, scope=scope_json,
        level=level, status="open", title=title[:255], observed=observed, expected=expected,
        threshold=threshold, period=period, suggested_action=suggested_action, occurrences=1,
        first_seen=now, last_seen=now, due_at=now + timedelta(hours=DEADLINE_HOURS[level]),
    )  # fmt: skip
    session.add(a)
    session.flush()
    return alert_view(a), True


def _alert(session: Session, alert_id: int) -> Alert:
    a = session.get(Alert, alert_id)
    if a is None:
        raise MonitorError(404, "not_found", f"alert {alert_id} not found")
    return a


def get_alert(session: Session, alert_id: int) -> dict:
    return alert_view(_alert(session, alert_id))


def acknowledge(session: Session, alert_id: int, *, actor: str, now: datetime | None = None) -> dict:
    a = _alert(session, alert_id)
    if a.status != "open":
        raise MonitorError(
            409, "bad_state", f"alert {alert_id} is {a.status}; only an open alert is acknowledged"
        )
    a.status, a.acknowledged_by, a.acknowledged_at = "acknowledged", actor, now or utcnow()
    session.flush()
    _audit(session, actor, "monitor.alert.acknowledge", f"alert:{a.id}", {})
    return alert_view(a)


def resolve(
    session: Session, alert_id: int, root_cause: str, *, actor: str, now: datetime | None = None
) -> dict:
    a = _alert(session, alert_id)
    if a.status == "resolved":
        raise MonitorError(409, "bad_state", f"alert {alert_id} is already resolved")
    note = (root_cause or "").strip()
    if not note:
        raise _bad("root_cause", "resolving an alert needs a root-cause note")
    now = now or utcnow()
    if a.acknowledged_at is None:  # resolving straight away also answers it
        a.acknowledged_by, a.acknowledged_at = actor, now
    a.status, a.resolved_by, a.resolved_at, a.root_cause = "resolved", actor, now, note[:4000]
    session.flush()
    _audit(session, actor, "monitor.alert.resolve", f"alert:{a.id}", {"root_cause": a.root_cause})
    return alert_view(a)


def list_alerts(
    session: Session,
    status: str | None = None,
    level: str | None = None,
    group_key: str | None = None,
    limit: int = 200,
) -> list[dict]:
    if status is not None and status not in STATUSES:
        raise _bad("status", f"{status!r} is not one of {', '.join(STATUSES)}")
    if level is not None and level not in LEVELS:
        raise _bad("level", f"{level!r} is not one of {', '.join(LEVELS)}")
    q = select(Alert)
    if status:
        q = q.where(Alert.status == status)
    if level:
        q = q.where(Alert.level == level)
    if group_key:
        q = q.where(Alert.group_key == group_key)
    return [alert_view(a) for a in session.scalars(q.order_by(Alert.id.desc()).limit(limit))]


def alert_counts(session: Session, now: datetime | None = None) -> dict[str, int]:
    """Alerts per status, and the open ones past their response deadline (an inbox's header)."""
    now = now or utcnow()
    by_status = dict(session.execute(select(Alert.status, func.count()).group_by(Alert.status)).all())
    out = {status: int(by_status.get(status, 0)) for status in STATUSES}
    overdue = select(func.count()).select_from(Alert).where(Alert.status == "open", Alert.due_at <= now)
    out["overdue"] = int(session.scalar(overdue))
    return out


def grouped_alerts(session: Session, status: str | None = None) -> list[dict]:
    """Unresolved (or `status`) alerts grouped by campaign / channel / group, worst level first."""
    rows = list_alerts(session, status=status, limit=10000) if status else [
        a for a in list_alerts(session, limit=10000) if a["status"] != "resolved"
    ]  # fmt: skip
    groups: dict[str, dict] = {}
    for a in rows:
        g = groups.setdefault(a["group_key"], {"group_key": a["group_key"], "alerts": 0, "worst_level": "一般",
                                               "metrics": set(), "alert_ids": []})  # fmt: skip
        g["alerts"] += 1
        g["alert_ids"].append(a["id"])
        g["metrics"].add(a["metric"])
        if LEVELS.index(a["level"]) > LEVELS.index(g["worst_level"]):
            g["worst_level"] = a["level"]
    out = [{**g, "metrics": sorted(g["metrics"])} for g in groups.values()]
    return sorted(out, key=lambda g: (-LEVELS.index(g["worst_level"]), -g["alerts"], g["group_key"]))


def escalate_due(
    session: Session, now: datetime | None = None, *, notify_fn: Callable[..., Any] | None = None
) -> list[dict]:
    """Escalate every open alert whose response deadline has passed (one level up, new deadline)."""
    now = now or utcnow()
    out = []
    for a in session.scalars(
        select(Alert).where(Alert.status == "open", Alert.due_at <= now).order_by(Alert.id)
    ):
        before = a.level
        a.level = LEVELS[min(LEVELS.index(a.level) + 1, len(LEVELS) - 1)]
        a.escalations += 1
        a.escalated_at = now
        a.due_at = now + timedelta(hours=DEADLINE_HOURS[a.level])
        session.flush()
        _audit(
            session,
            "system:monitor",
            "monitor.alert.escalate",
            f"alert:{a.id}",
            {"from": before, "to": a.level},
        )
        view = alert_view(a)
        out.append(view)
        (notify_fn or notify_alert)(session, view, "escalated")
    return out


# ------------------------------------------------------------------ notification channels


def _crypto():
    from liebian.privacy import crypto

    return crypto


def add_channel(
    session: Session,
    name: str,
    kind: str,
    target: str,
    secret: str = "",
    min_level: str = "一般",
    *,
    actor: str,
) -> dict:
    if kind not in CHANNEL_KINDS:
        raise _bad("kind", f"{kind!r} is not one of {', '.join(CHANNEL_KINDS)}")
    if min_level not in LEVELS:
        raise _bad("min_level", f"{min_level!r} is not one of {', '.join(LEVELS)}")
    target = (target or "").strip()
    if kind == "email":
        addrs = [x.strip() for x in target.split(",") if x.strip()]
        bad = [x for x in addrs if "@" not in x]
        if not addrs or bad:
            raise _bad("target", f"e-mail channels need comma-separated addresses; bad: {bad or target!r}")
    elif not target.startswith(("http://", "https://")):
        raise _bad("target", f"{kind} channels need an http(s) URL")
    if kind == "dingtalk" and secret and not secret.startswith("SEC"):
        raise _bad("secret", "a DingTalk 加签 secret starts with SEC")
    if session.scalar(select(NotifyChannel).where(NotifyChannel.name == name)):
        raise MonitorError(409, "exists", f"name: a channel named {name!r} exists", "name")
    c = NotifyChannel(
        name=name, kind=kind, target_encrypted=_crypto().encrypt(target),
        secret_encrypted=_crypto().encrypt(secret) if secret else "", min_level=min_level,
    )  # fmt: skip
    session.add(c)
    session.flush()
    _audit(session, actor, "monitor.channel.create", f"channel:{c.id}", {"name": name, "kind": kind})
    return channel_view(c)


def channel_view(c: NotifyChannel) -> dict:
    target = _crypto().decrypt(c.target_encrypted)
    # the URL's query (robot access_token / key) is a credential: show host and path only
    shown = target if c.kind == "email" else target.split("?", 1)[0] + ("?…" if "?" in target else "")
    return {"id": c.id, "name": c.name, "kind": c.kind, "target": shown, "signed": bool(c.secret_encrypted),
            "min_level": c.min_level, "enabled": c.enabled}  # fmt: skip


def list_channels(session: Session) -> list[dict]:
    return [channel_view(c) for c in session.scalars(select(NotifyChannel).order_by(NotifyChannel.id))]


def _channel(session: Session, channel_id: int) -> NotifyChannel:
    c = session.get(NotifyChannel, channel_id)
    if c is None:
        raise MonitorError(404, "not_found", f"channel {channel_id} not found")
    return c


def remove_channel(session: Session, channel_id: int, *, actor: str) -> dict:
    """Stop notifying a channel. It is disabled, not deleted: its deliveries keep their log."""
    c = _channel(session, channel_id)
    c.enabled = False
    session.flush()
    _audit(session, actor, "monitor.channel.remove", f"channel:{c.id}", {"name": c.name})
    return channel_view(c)


def test_channel(session: Session, channel_id: int, *, actor: str, now: datetime | None = None) -> dict:
    """Send a test message (event "test", no alert behind it) through one channel; the delivery is
    logged like any other and returned."""
    c = _channel(session, channel_id)
    if not c.enabled:
        raise MonitorError(409, "bad_state", f"channel {channel_id} is removed")
    now = now or utcnow()
    probe = {"id": None, "kind": "test", "metric": "test", "scope": {}, "level": "紧急", "title": "liebian 测试消息 / test message",
             "observed": None, "expected": None, "threshold": None, "period": now.strftime("%Y-%m-%d %H:%M"),
             "suggested_action": "none", "due_at": now.isoformat(), "auto_action": "", "root_cause": ""}  # fmt: skip
    _audit(session, actor, "monitor.channel.test", f"channel:{c.id}", {"name": c.name})
    return notify_alert(session, probe, "test", channel_ids=[c.id])[0]


# Tests shorten the backoff; production waits 1 s, 2 s between the three attempts.
SEND_OPTIONS: dict[str, Any] = {"attempts": 3, "backoff": 1.0}


def notify_alert(
    session: Session, alert: dict, event: str, channel_ids: Iterable[int] | None = None
) -> list[dict]:
    """Send `alert` to every enabled channel whose min_level it reaches; log each delivery."""
    q = select(NotifyChannel).where(NotifyChannel.enabled.is_(True))
    if channel_ids is not None:
        q = q.where(NotifyChannel.id.in_(list(channel_ids)))
    view = notify.public_view(alert, event)
    out = []
    for c in session.scalars(q.order_by(NotifyChannel.id)):
        if LEVELS.index(alert["level"]) < LEVELS.index(c.min_level):
            continue
        crypto = _crypto()
        secret = crypto.decrypt(c.secret_encrypted) if c.secret_encrypted else ""
        result = notify.send(c.kind, crypto.decrypt(c.target_encrypted), secret, view, **SEND_OPTIONS)
        d = Delivery(
            alert_id=alert.get("id"), channel_id=c.id, event=event, status=result.status,
            attempts=result.attempts, http_status=result.http_status, error=result.error[:2000],
        )  # fmt: skip
        session.add(d)
        session.flush()
        out.append(delivery_view(d, c.name))
    return out


def delivery_view(d: Delivery, channel: str | None = None) -> dict:
    return {
        "id": d.id, "alert_id": d.alert_id, "channel_id": d.channel_id, "channel": channel, "event": d.event,
        "status": d.status, "attempts": d.attempts, "http_status": d.http_status, "error": d.error,
        "created_at": d.created_at.isoformat() if d.created_at else None,
    }  # fmt: skip


def list_deliveries(session: Session, alert_id: int | None = None, limit: int = 200) -> list[dict]:
    names = dict(session.execute(select(NotifyChannel.id, NotifyChannel.name)).all())
    q = select(Delivery)
    if alert_id is not None:
        q = q.where(Delivery.alert_id == alert_id)
    return [
        delivery_view(d, names.get(d.channel_id))
        for d in session.scalars(q.order_by(Delivery.id.desc()).limit(limit))
    ]


# ------------------------------------------------------------------ metric series and anomalies


GRAINS = ("day", "hour")
# the detector's period per grain: a weekly cycle of days, a daily cycle of hours
SEASON = {"day": 7, "hour": 24}
STEP = {"day": timedelta(days=1), "hour": timedelta(hours=1)}
MAX_HOURLY_DAYS = 31  # an hourly series is for watching a live campaign, not for a season
# series metrics that are counts (Poisson noise: the detector's square-root transform for hours)
COUNT_METRICS = frozenset(SERIES_METRICS) - {"participation_rate", "referred_share_of_new", "referral_rate"}


def local_time(now: datetime | None = None) -> datetime:
    """`now` (naive UTC) as naive local time of analytics' display zone (Asia/Shanghai)."""
    from liebian.analytics.common import MetricConfig, zone_offset_seconds

    return (now or utcnow()) + timedelta(seconds=zone_offset_seconds(MetricConfig().zone))


def _check_metric(metric: str) -> None:
    if metric not in SERIES_METRICS:
        raise _bad("metric", f"{metric!r} is not one of {', '.join(SERIES_METRICS)}")


def _check_series(metric: str | None, start: date, end: date, grain: str) -> None:
    if metric is not None:
        _check_metric(metric)
    if grain not in GRAINS:
        raise _bad("grain", f"{grain!r} is not one of {', '.join(GRAINS)}")
    if start > end:
        raise _bad("start", f"{start} is after end {end}")
    if grain == "hour" and (end - start).days + 1 > MAX_HOURLY_DAYS:
        raise _bad("end", f"an hourly series covers at most {MAX_HOURLY_DAYS} days")


def _as_frame(rows: list[dict], grain: str, now: datetime | None) -> pd.DataFrame:
    """Analytics' series rows as a frame indexed by local bucket start, without unfinished buckets."""
    frame = pd.DataFrame(rows)
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop("start")), name="ts")
    frame = frame.astype("float64")  # rates without a base (None) become gaps (NaN)
    if grain == "hour" or now is not None:  # the hour (or day) in progress would read as a drop
        frame = frame[frame.index + STEP[grain] <= local_time(now)]
    return frame


def kpi_frame(
    start: date,
    end: date,
    *,
    grain: str = "day",
    campaign_id: str | None = None,
    channel: str | None = None,
    engine: str | None = None,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every series KPI per local day or hour (columns: SERIES_METRICS and the counts behind them).

    One analytics query (`run_kpi_series`: the KPI sheet's definitions counted per bucket of the
    display zone). Buckets that have not ended by `now` are left out: always for hours (default
    now), for days only when `now` is given.
    """
    from liebian.analytics import service as analytics

    _check_series(None, start, end, grain)
    filters = analytics.make_filters(start, end, channels=[channel] if channel else (), campaigns=[campaign_id] if campaign_id else ())  # fmt: skip
    return _as_frame(analytics.run_kpi_series(filters, grain, engine=engine), grain, now)


def metric_series(
    metric: str,
    start: date,
    end: date,
    *,
    grain: str = "day",
    campaign_id: str | None = None,
    channel: str | None = None,
    engine: str | None = None,
    now: datetime | None = None,
) -> pd.Series:
    """Values of one KPI per local day, or per local hour (`grain="hour"`), see `kpi_frame`."""
    _check_series(metric, start, end, grain)
    frame = kpi_frame(start, end, grain=grain, campaign_id=campaign_id, channel=channel, engine=engine, now=now)  # fmt: skip
    return frame[metric].rename(metric)


def series_points(series: pd.Series) -> list[dict]:
    """[{ts, value}] for JSON: local ISO times, gaps as None."""
    return [{"ts": ts.isoformat(), "value": None if pd.isna(v) else float(v)} for ts, v in series.items()]


def live_campaigns(session: Session) -> list[dict]:
    """Campaigns that are live now (launched and inside their window), with the local hour their
    window began (the later of launch and start_at): their hourly series start there."""
    from liebian.campaigns import service as campaigns

    out = []
    for c in campaigns.list_campaigns(session, status="live"):
        start_at = campaigns.get_campaign(session, c["id"])["rules"].get("start_at")
        began = max(x for x in (c["launched_at"], start_at and datetime.fromisoformat(start_at).replace(tzinfo=None)) if x)  # fmt: skip
        out.append({"campaign_id": c["id"], "title": c["title"],
                    "since": local_time(began).replace(minute=0, second=0, microsecond=0)})  # fmt: skip
    return out


def live_series(
    session: Session,
    days: int = 7,
    *,
    metrics: Iterable[str] | None = None,
    now: datetime | None = None,
    engine: str | None = None,
) -> list[dict]:
    """Hourly series of every live campaign, in total and per channel, over the last `days` local
    days up to the last finished hour (and from the campaign's window start): one entry per
    (campaign, channel) with a frame of the KPIs (`frame`) — campaigns that are not live are not
    watched hourly (their daily series are)."""
    from liebian.analytics import service as analytics

    if not 1 <= days <= MAX_HOURLY_DAYS:
        raise _bad("days", f"must lie in 1–{MAX_HOURLY_DAYS}, got {days}")
    wanted = list(metrics or SERIES_METRICS)
    for m in wanted:
        _check_metric(m)
    end = local_time(now).date()
    start = end - timedelta(days=days - 1)
    out = []
    for c in live_campaigns(session):
        f = analytics.make_filters(start, end, campaigns=[c["campaign_id"]])
        scopes = {None: analytics.run_kpi_series(f, "hour", engine=engine)}
        scopes.update(analytics.run_kpi_series_by_channel(f, "hour", engine=engine))
        for channel, rows in scopes.items():
            frame = _as_frame(rows, "hour", now)
            frame = frame[frame.index >= pd.Timestamp(c["since"])][wanted]
            out.append(
                {"campaign_id": c["campaign_id"], "channel": channel, "since": c["since"], "frame": frame}
            )
    return out


def calendar_for(session: Session | None, years: Iterable[int]) -> list[detector.CalendarEffect]:
    """The default calendar plus every campaign launch known to the campaign service."""
    effects = detector.default_calendar(years)
    if session is not None:
        from liebian.campaigns import service as campaigns

        launches = []
        for c in campaigns.list_campaigns(session):
            launched = c.get("launched_at")
            if launched:
                launches.append((c["id"], launched.date() if isinstance(launched, datetime) else date.fromisoformat(str(launched)[:10])))  # fmt: skip
        effects += detector.launch_effects(launches)
    return effects


def scan_series(
    session: Session | None,
    metric: str,
    start: date,
    end: date,
    *,
    campaign_id: str | None = None,
    channel: str | None = None,
    sensitivity: float = detector.DEFAULT_SENSITIVITY,
    min_change: float = detector.DEFAULT_MIN_CHANGE,
    extra_calendar: Iterable[detector.CalendarEffect] = (),
    raise_alerts_since: date | datetime | None = None,
    level: str = "重要",
    now: datetime | None = None,
    engine: str | None = None,
    grain: str = "day",
    series: pd.Series | None = None,
) -> dict:
    """Detect anomalies in one KPI series (daily: weekly cycle; hourly: daily cycle); open alerts
    for new episodes from `raise_alerts_since` (a day, or a local hour) on. `series` skips the
    query when the caller has the values already (the live scan reads one frame per scope)."""
    if series is None:
        series = metric_series(metric, start, end, grain=grain, campaign_id=campaign_id, channel=channel,
                               engine=engine, now=now)  # fmt: skip
    else:
        _check_series(metric, start, end, grain)
    cal = calendar_for(session, range(start.year, end.year + 1)) + list(extra_calendar)
    # buckets without a defined value (no one reached yet) are gaps, not zeros
    found = detector.detect(
        series, period=SEASON[grain], sensitivity=sensitivity, min_change=min_change, calendar=cal,
        counts=grain == "hour" and metric in COUNT_METRICS,
    )  # fmt: skip
    alerts = []
    scope = {"campaign_id": campaign_id, "channel": channel}
    if session is not None and raise_alerts_since is not None:
        since = pd.Timestamp(raise_alerts_since)
        for a in found:
            if a.alert and a.ts >= since:
                direction = "突增" if a.direction == "spike" else "骤降"
                when = a.ts.date().isoformat() if grain == "day" else a.ts.strftime("%Y-%m-%dT%H:00")
                view, _ = raise_alert(
                    session, kind="anomaly", metric=metric, scope=scope, level=level,
                    title=f"{metric} {direction}（{when}）：实际 {a.observed:.4g}，预期 {a.expected:.4g}",
                    observed=a.observed, expected=a.expected, period=when,
                    suggested_action="review_channel" if channel else "raise_reward_tier" if a.direction == "drop" else "none",
                    now=now,
                )  # fmt: skip
                alerts.append(view)
    return {
        "metric": metric,
        "grain": grain,
        "scope": {k: v for k, v in scope.items() if v},
        "points": int(series.notna().sum()),
        "anomalies": [a.as_dict() for a in found],
        "alerts": alerts,
    }


LIVE_DAYS = 8  # hours of the last eight days: the detector's window of daily cycles
LIVE_METRICS = ("participants", "paid_orders")  # counts: a rate per hour swings on tiny bases


def last_hour(now: datetime | None = None) -> datetime:
    """The last finished local hour (its start)."""
    return local_time(now).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)


def scan_live(
    session: Session,
    *,
    now: datetime | None = None,
    days: int = LIVE_DAYS,
    metrics: Iterable[str] = LIVE_METRICS,
    engine: str | None = None,
    notify_new: bool = True,
) -> dict:
    """The hourly watch of live campaigns: each one's hourly series (in total and per channel),
    STL + 3σ over the daily cycle, alerts (and notifications) for anomalies of the last finished hour."""
    now = now or utcnow()
    since = last_hour(now)
    metrics = list(metrics)
    series = alerts = 0
    skipped = []
    for entry in live_series(session, days, metrics=metrics, now=now, engine=engine):
        frame = entry["frame"]
        for metric in metrics:
            scope = {"campaign_id": entry["campaign_id"], "channel": entry["channel"]}
            if frame.empty:
                skipped.append({**scope, "metric": metric, "reason": "no finished hour yet"})
                continue
            try:
                r = scan_series(
                    session, metric, frame.index[0].date(), frame.index[-1].date(), **scope, grain="hour",
                    series=frame[metric], raise_alerts_since=since, now=now, engine=engine,
                )  # fmt: skip
            except detector.DetectorError as exc:  # a campaign younger than a day and an hour
                skipped.append({**scope, "metric": metric, "reason": str(exc)})
                continue
            series += 1
            for alert in r["alerts"]:
                if notify_new and alert["occurrences"] == 1:
                    notify_alert(session, alert, "opened")
            alerts += len(r["alerts"])
    return {"hour": since.isoformat(), "series": series, "alerts": alerts, "skipped": skipped}


# ------------------------------------------------------------------ threshold rules


def _compare(op: str, value: float, threshold: float) -> bool:
    return value < threshold if op == "<" else value > threshold


# rule metric → (series KPI, the count it divides by); checked per hour for live campaigns
HOURLY_RULES = {"participation_rate": ("participation_rate", "reached"),
                "fission_rate": ("referred_share_of_new", "new_users")}  # fmt: skip
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
        if at in frame.index and frame.at[at, base] >= MIN_HOURLY_BASE:
            out.append(({"campaign_id": cid, "channel": rule.channel}, float(frame.at[at, key])))
    return out


def _measure(session: Session, rule: AlertRule, day: date, engine: str | None) -> list[tuple[dict, float]]:
    """(scope, value) pairs a rule is checked on for `day`."""
    if rule.metric in ("participation_rate", "fission_rate"):
        from liebian.analytics import service as analytics

        key = HOURLY_RULES[rule.metric][0]
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
        from liebian.community import service as community
        from liebian.engine import warehouse

        with warehouse.connect() as con:
            rows = community.negative_share(con, day, day)
        return [
            ({"group_id": r["group_id"]}, r["negative_share"])
            for r in rows
            if r["messages"] >= community.MIN_MESSAGES
        ]
    if rule.metric == "fraud_rate":
        from liebian.fraud import service as fraud

        rows = fraud.fraud_rate(session)
        return [({"campaign_id": r["campaign_id"]}, r["fraud_rate"]) for r in rows
                if not rule.campaign_id or r["campaign_id"] == rule.campaign_id]  # fmt: skip
    if rule.metric == "dq_error_rate":
        from liebian.engine import warehouse
        from liebian.quality import service as quality

        start = datetime.combine(day, datetime.min.time())
        with warehouse.connect() as con:
            report = quality.quality_report(con, start=start, end=start + timedelta(days=1))
        if report.error_rate.rows_received == 0:
            return []
        return [({"channel": rule.channel}, report.error_rate.error_rate)]
    raise _bad("metric", f"unknown metric {rule.metric!r}")


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
        raise _bad("day", "give a day or an hour (not both)")
    if hour is not None:
        hour = hour.replace(minute=0, second=0, microsecond=0)
    now = now or utcnow()
    out = []
    q = select(AlertRule).where(AlertRule.enabled.is_(True))
    if rule_ids is not None:
        q = q.where(AlertRule.id.in_(list(rule_ids)))
    if hour is not None:
        q = q.where(AlertRule.metric.in_(list(HOURLY_RULES)))
    period = hour.strftime("%Y-%m-%dT%H:00") if hour is not None else day.isoformat()
    for rule in session.scalars(q.order_by(AlertRule.id)):
        measured = _measure_hour(session, rule, hour, engine, now) if hour is not None else _measure(session, rule, day, engine)  # fmt: skip
        for scope, value in measured:
            if not _compare(rule.op, value, rule.threshold):
                continue
            view, new = raise_alert(
                session, kind="threshold", metric=rule.metric, scope=scope, level=rule.level,
                title=f"{rule.name}（{period}）：实际 {value:.2%}，阈值 {rule.op} {rule.threshold:.2%}",
                observed=value, threshold=rule.threshold, period=period,
                suggested_action=rule.action, rule_id=rule.id, now=now,
            )  # fmt: skip
            if new and rule.auto_adjust:
                view = auto_adjust(session, rule, view, now=now)
            if new and notify_new:
                notify_alert(session, view, "opened")
            out.append(view)
    return out


def auto_adjust(session: Session, rule: AlertRule, alert: dict, *, now: datetime | None = None) -> dict:
    """Apply the rule's action within its limits; audit it; record what was done on the alert."""
    from liebian.campaigns import service as campaigns

    now = now or utcnow()
    limits = json.loads(rule.limits or "{}")
    a = _alert(session, alert["id"])
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
        except campaigns.CampaignError as exc:
            a.auto_action = f"failed: {exc}"
    session.flush()
    _audit(session, actor, "monitor.auto_adjust", f"alert:{a.id}", {"rule": rule.id, "campaign_id": cid,
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
