"""HTTP endpoints under /api/v1/monitor: rules, alerts (lifecycle), channels, deliveries, scans."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from fastapi import APIRouter, Query, Request

from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.monitor import anomalies, notifications, rules, schemas, service
from liebian.schemas import Int64, to_local

router = APIRouter(prefix="/api/v1/monitor", tags=["monitor"])


@router.get("/rules", response_model=list[schemas.RuleOut])
def list_rules() -> list[dict]:
    with session_scope() as s:
        return rules.list_rules(s)


@router.post("/rules", status_code=201, response_model=schemas.RuleOut)
def create_rule(body: schemas.RuleIn, request: Request) -> dict:
    with session_scope() as s:
        return rules.create_rule(s, body.model_dump(), actor=principal_of(request).name)


@router.post("/rules/defaults", status_code=201, response_model=list[schemas.RuleOut])
def install_defaults(request: Request) -> list[dict]:
    with session_scope() as s:
        return rules.install_default_rules(s, actor=principal_of(request).name)


@router.patch("/rules/{rule_id}", response_model=schemas.RuleOut)
def update_rule(rule_id: Int64, body: schemas.RulePatch, request: Request) -> dict:
    with session_scope() as s:
        return rules.update_rule(
            s, rule_id, body.model_dump(exclude_unset=True), actor=principal_of(request).name
        )


@router.delete("/rules/{rule_id}", response_model=schemas.RuleOut)
def disable_rule(rule_id: Int64, request: Request) -> dict:
    with session_scope() as s:
        return rules.delete_rule(s, rule_id, actor=principal_of(request).name)


@router.post("/rules/evaluate", response_model=list[schemas.AlertOut])
def evaluate(
    day: date | None = Query(None, description="the day to check (YYYY-MM-DD)"),
    hour: datetime | None = Query(
        None, description="or a finished local hour (YYYY-MM-DDTHH:00): rate rules of live campaigns"
    ),
) -> list[dict]:
    with session_scope() as s:
        return rules.evaluate_rules(s, day, hour=to_local(hour) if hour else None)


@router.get("/series", response_model=schemas.SeriesOut)
def series(
    metric: str,
    start: date,
    end: date,
    grain: Literal["day", "hour"] = "day",
    campaign_id: str | None = None,
    channel: str | None = None,
) -> dict:
    """One KPI per local day or hour (Asia/Shanghai); hours not yet finished are left out."""
    values = anomalies.metric_series(
        metric, start, end, grain=grain, campaign_id=campaign_id, channel=channel
    )
    scope = {k: v for k, v in (("campaign_id", campaign_id), ("channel", channel)) if v}
    return {"metric": metric, "grain": grain, "scope": scope, "points": anomalies.series_points(values)}


@router.get("/series/live", response_model=list[schemas.LiveSeriesOut])
def live_series(
    metric: str = "participants", days: int = Query(2, ge=1, le=anomalies.MAX_HOURLY_DAYS)
) -> list[dict]:
    """Hourly series of every live campaign, in total (channel null) and per channel."""
    with session_scope() as s:
        return [
            {"campaign_id": e["campaign_id"], "channel": e["channel"], "since": e["since"].isoformat(),
             "metric": metric, "points": anomalies.series_points(e["frame"][metric])}
            for e in anomalies.live_series(s, days, metrics=[metric])
        ]  # fmt: skip


@router.get("/alerts", response_model=list[schemas.AlertOut | schemas.AlertGroupOut])
def list_alerts(
    status: Literal["open", "acknowledged", "resolved"] | None = None,
    level: Literal["一般", "重要", "紧急"] | None = None,
    group_key: str | None = None,
    grouped: bool = False,
    limit: int = Query(200, ge=1, le=10000),
) -> list[dict]:
    with session_scope() as s:
        if grouped:
            return service.grouped_alerts(s, status)
        return service.list_alerts(s, status, level, group_key, limit)


@router.get("/alerts/{alert_id}", response_model=schemas.AlertOut)
def get_alert(alert_id: Int64) -> dict:
    with session_scope() as s:
        return service.get_alert(s, alert_id)


@router.post("/alerts/{alert_id}/acknowledge", response_model=schemas.AlertOut)
def acknowledge(alert_id: Int64, request: Request) -> dict:
    with session_scope() as s:
        return service.acknowledge(s, alert_id, actor=principal_of(request).name)


@router.post("/alerts/{alert_id}/resolve", response_model=schemas.AlertOut)
def resolve(alert_id: Int64, body: schemas.ResolveIn, request: Request) -> dict:
    with session_scope() as s:
        alert = service.resolve(s, alert_id, body.root_cause, actor=principal_of(request).name)
        notifications.notify_alert(s, alert, "resolved")
        return alert


@router.post("/escalate", response_model=list[schemas.AlertOut])
def escalate() -> list[dict]:
    with session_scope() as s:
        return notifications.escalate_due(s)


@router.get("/channels", response_model=list[schemas.ChannelOut])
def list_channels() -> list[dict]:
    with session_scope() as s:
        return notifications.list_channels(s)


@router.post("/channels", status_code=201, response_model=schemas.ChannelOut)
def add_channel(body: schemas.ChannelIn, request: Request) -> dict:
    with session_scope() as s:
        return notifications.add_channel(
            s,
            body.name,
            body.kind,
            body.target,
            body.secret,
            body.min_level,
            actor=principal_of(request).name,
        )


@router.get("/deliveries", response_model=list[schemas.DeliveryOut])
def list_deliveries(alert_id: Int64 | None = None, limit: int = Query(200, ge=1, le=10000)) -> list[dict]:
    with session_scope() as s:
        return notifications.list_deliveries(s, alert_id, limit)


@router.post("/scan", response_model=schemas.ScanOut)
def scan(body: schemas.ScanIn) -> dict:
    with session_scope() as s:
        return anomalies.scan_series(
            s, body.metric, body.start, body.end, campaign_id=body.campaign_id, channel=body.channel,
            sensitivity=body.sensitivity, min_change=body.min_change, grain=body.grain,
        )  # fmt: skip
