"""Monitoring jobs: rules, escalation and the KPI anomaly scans (`liebian job run NAME` for cron)."""

from __future__ import annotations

from datetime import timedelta

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.monitor import anomalies, detector, notifications, rules
from liebian.ports import Job

SCAN_DAYS = 56  # eight weeks of history for the weekly fit


def check_rules() -> dict:
    """Threshold rules for yesterday (local), and the rate rules on the last finished hour of live campaigns."""
    now = utcnow()
    day = anomalies.local_time(now).date() - timedelta(days=1)
    hour = anomalies.last_hour(now)
    with session_scope() as s:
        daily = rules.evaluate_rules(s, day, now=now)
        hourly = rules.evaluate_rules(s, hour=hour, now=now)
        return {
            "day": day.isoformat(),
            "alerts": len(daily),
            "hour": hour.isoformat(),
            "hourly_alerts": len(hourly),
        }


def escalate() -> dict:
    """Escalate open alerts past their response deadline."""
    with session_scope() as s:
        return {"escalated": len(notifications.escalate_due(s))}


def scan_anomalies() -> dict:
    """STL + 3σ scan of participants per live campaign and of paid orders; alerts for yesterday."""
    end = anomalies.local_time().date() - timedelta(days=1)
    start = end - timedelta(days=SCAN_DAYS - 1)
    found = 0
    with session_scope() as s:
        live = [c["campaign_id"] for c in anomalies.live_campaigns(s)]
        # participants, not the rate: at small scale the per-day rate hides a collapse (docs/monitoring.md)
        targets = [("participants", cid, None) for cid in live] + [("paid_orders", None, None)]
        for metric, cid, channel in targets:
            try:
                r = anomalies.scan_series(
                    s, metric, start, end, campaign_id=cid, channel=channel, raise_alerts_since=end
                )
            except detector.DetectorError:
                continue  # too little history yet
            for alert in r["alerts"]:
                if alert["occurrences"] == 1:
                    notifications.notify_alert(s, alert, "opened")
            found += len(r["alerts"])
    return {"end": end.isoformat(), "series": len(targets), "alerts": found}


def scan_live() -> dict:
    """Hourly series of live campaigns (total and per channel), daily-cycle STL + 3σ; alerts for the last hour."""
    with session_scope() as s:
        return anomalies.scan_live(s)


JOBS = (
    Job("monitor-rules", check_rules, every_seconds=3600),
    Job("monitor-escalate", escalate, every_seconds=300),
    Job("monitor-anomalies", scan_anomalies, every_seconds=86400),
    Job("monitor-live", scan_live, every_seconds=3600),
)
