"""Monitoring's alerts: levels, deadlines and the alert lifecycle, and the error every part raises.
The other parts: `anomalies` (metric series and anomaly scans), `rules` (threshold rules and their
automatic adjustments), `notifications` (channels, deliveries, escalation).

- Metric values come from the analytics service (KPI series per local day or hour and scope,
  `run_kpis` per day for the rules), the community service (negative share per group and day), the
  fraud service (fraud rate per campaign) and the quality service (error rate): nothing is
  re-derived here. Live campaigns are also watched per hour (`live_series`, `scan_live`).
- Alerts: levels 一般 / 重要 / 紧急 with response deadlines of 2 h / 4 h / 8 h, the source document's
  mapping (002 §7.3: 一般级 2 h, 重要级 4 h, 紧急级 8 h; DEADLINE_HOURS). open → acknowledged → resolved (a root-cause note
  is required to resolve). Alerts deduplicate by kind × metric × scope × day (`dedup_key`): a
  repeat of an unresolved alert updates it (occurrences + 1, latest values), and a resolved one
  stays resolved for that day unless a higher level is crossed (`raise_alert`); `group_key` (the
  campaign / channel / group) groups alerts for the list view. An open alert whose deadline passes
  is escalated one level (a 紧急 alert stays 紧急 and is re-notified) with a new deadline
  (`notifications.escalate_due`).
- Every function that depends on the time takes `now` (naive UTC) so tests control the clock.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liebian.auth import service as auth_service
from liebian.db.base import utcnow
from liebian.errors import DomainError
from liebian.monitor.models import Alert

LEVELS = ("一般", "重要", "紧急")
LEVEL_EN = {"一般": "minor", "重要": "major", "紧急": "critical"}
DEADLINE_HOURS = {"一般": 2, "重要": 4, "紧急": 8}
STATUSES = ("open", "acknowledged", "resolved")
CHANNEL_KINDS = ("wecom", "dingtalk", "webhook", "email")


class MonitorError(DomainError):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        errors = None
        if status == 422 or field:  # which field, and why (also on a 404/409 that names one)
            reason = message.partition(": ")[2]
            errors = [{"field": field or "", "reason": reason or message}]
        super().__init__(code, message, status, field=field, errors=errors)


def invalid(field: str, reason: str) -> MonitorError:
    return MonitorError(422, "invalid", f"{field}: {reason}", field)


# ------------------------------------------------------------------ audit


def audit(session: Session, actor: str, action: str, target: str, detail: dict[str, Any]) -> None:

    auth_service.audit(session, actor, action, target, detail)


# ------------------------------------------------------------------ alerts


def _scope_json(scope: dict[str, Any]) -> str:
    return json.dumps({k: v for k, v in sorted(scope.items()) if v is not None}, ensure_ascii=False)


def alert_view(a: Alert) -> dict[str, Any]:
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


def dedup_key(kind: str, metric: str, scope_json: str, period: str) -> str:
    """kind × metric × scope × day: what makes two alerts the same alert."""
    day = period[:10]  # "2026-11-19" or "2026-11-19T10:00" → the day
    return f"{kind}:{metric}:{day}:{scope_json}"[:255]


def _higher(level: str, than: str) -> bool:
    return LEVELS.index(level) > LEVELS.index(than)


def raise_alert(
    session: Session,
    *,
    kind: str,
    metric: str,
    scope: dict[str, Any],
    level: str,
    title: str,
    observed: float | None,
    expected: float | None = None,
    threshold: float | None = None,
    period: str = "",
    suggested_action: str = "none",
    rule_id: int | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, Any], bool]:
    """Open an alert, or update the one of the same subject and day. Returns (alert, is_new).

    The dedup key is kind × metric × scope × day (the day of `period`; an hourly period counts for
    its day), so the daily and hourly checks of a rule, and the rules job re-checking yesterday
    every hour, all land on one alert. While that alert is unresolved a repeat updates it
    (occurrences + 1, the latest values; a higher level raises its level). Once resolved it stays
    resolved for that day unless the new level is higher than the level it was resolved at: then a
    new alert opens (is_new, so it is notified).
    """
    now = now or utcnow()
    if level not in LEVELS:
        raise invalid("level", f"{level!r} is not one of {', '.join(LEVELS)}")
    scope_json = _scope_json(scope)
    key = dedup_key(kind, metric, scope_json, period)
    existing = session.scalar(select(Alert).where(Alert.dedup_key == key).order_by(Alert.id.desc()).limit(1))
    if existing is not None and existing.status == "resolved" and not _higher(level, existing.level):
        return alert_view(existing), False
    if existing is not None and existing.status != "resolved":
        existing.occurrences += 1
        existing.last_seen = now
        existing.observed, existing.expected, existing.period = observed, expected, period
        if _higher(level, existing.level):
            existing.level = level
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


def alert_row(session: Session, alert_id: int) -> Alert:
    """The alert as stored (404 when there is none)."""
    a = session.get(Alert, alert_id)
    if a is None:
        raise MonitorError(404, "not_found", f"alert {alert_id} not found")
    return a


def get_alert(session: Session, alert_id: int) -> dict[str, Any]:
    return alert_view(alert_row(session, alert_id))


def acknowledge(
    session: Session, alert_id: int, *, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    a = alert_row(session, alert_id)
    if a.status != "open":
        raise MonitorError(
            409, "bad_state", f"alert {alert_id} is {a.status}; only an open alert is acknowledged"
        )
    a.status, a.acknowledged_by, a.acknowledged_at = "acknowledged", actor, now or utcnow()
    session.flush()
    audit(session, actor, "monitor.alert.acknowledge", f"alert:{a.id}", {})
    return alert_view(a)


def resolve(
    session: Session, alert_id: int, root_cause: str, *, actor: str, now: datetime | None = None
) -> dict[str, Any]:
    a = alert_row(session, alert_id)
    if a.status == "resolved":
        raise MonitorError(409, "bad_state", f"alert {alert_id} is already resolved")
    note = (root_cause or "").strip()
    if not note:
        raise invalid("root_cause", "resolving an alert needs a root-cause note")
    now = now or utcnow()
    if a.acknowledged_at is None:  # resolving straight away also answers it
        a.acknowledged_by, a.acknowledged_at = actor, now
    a.status, a.resolved_by, a.resolved_at, a.root_cause = "resolved", actor, now, note[:4000]
    session.flush()
    audit(session, actor, "monitor.alert.resolve", f"alert:{a.id}", {"root_cause": a.root_cause})
    return alert_view(a)


def list_alerts(
    session: Session,
    status: str | None = None,
    level: str | None = None,
    group_key: str | None = None,
    limit: int = 200,
) -> list[dict[str, Any]]:
    if status is not None and status not in STATUSES:
        raise invalid("status", f"{status!r} is not one of {', '.join(STATUSES)}")
    if level is not None and level not in LEVELS:
        raise invalid("level", f"{level!r} is not one of {', '.join(LEVELS)}")
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
    out["overdue"] = int(session.execute(overdue).scalar_one())
    return out


def grouped_alerts(session: Session, status: str | None = None) -> list[dict[str, Any]]:
    """Unresolved (or `status`) alerts grouped by campaign / channel / group, worst level first."""
    rows = list_alerts(session, status=status, limit=10000) if status else [
        a for a in list_alerts(session, limit=10000) if a["status"] != "resolved"
    ]  # fmt: skip
    groups: dict[str, dict[str, Any]] = {}
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
