"""Monitoring jobs: rules, escalation and the KPI anomaly scan (`liebian job run NAME` for cron)."""

from __future__ import annotations

from datetime import timedelta

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.jobs import job
from liebian.monitor import service

SCAN_DAYS = 56  # eight weeks of history for the weekly fit


@job("monitor-rules", every_seconds=3600)
def check_rules() -> dict:
    """Check the threshold rules for yesterday (UTC) and open/notify alerts."""
    day = (utcnow() - timedelta(days=1)).date()
    with session_scope() as s:
        return {"day": day.isoformat(), "alerts": len(service.evaluate_rules(s, day))}


@job("monitor-escalate", every_seconds=300)
def escalate() -> dict:
    """Escalate open alerts past their response deadline."""
    with session_scope() as s:
        return {"escalated": len(service.escalate_due(s))}


@job("monitor-anomalies", every_seconds=86400)
def scan_anomalies() -> dict:
    """STL + 3σ scan of participants per live campaign and of paid orders; alerts for yesterday."""
    from liebian.campaigns import service as campaigns

    end = (utcnow() - timedelta(days=1)).date()
    start = end - timedelta(days=SCAN_DAYS - 1)
    found = 0
    with session_scope() as s:
        live = [c["id"] for c in campaigns.list_campaigns(s) if c["status"] == "live"]
        # participants, not the rate: at small scale the per-day rate hides a collapse (docs/monitoring.md)
        targets = [("participants", cid, None) for cid in live] + [("paid_orders", None, None)]
        for metric, cid, channel in targets:
            try:
                r = service.scan_series(
                    s, metric, start, end, campaign_id=cid, channel=channel, raise_alerts_since=end
                )
            except service.detector.DetectorError:
                continue  # too little history yet
            for alert in r["alerts"]:
                if alert["occurrences"] == 1:
                    service.notify_alert(s, alert, "opened")
            found += len(r["alerts"])
    return {"end": end.isoformat(), "series": len(targets), "alerts": found}
