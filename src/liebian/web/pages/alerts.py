"""The alerts inbox: open, acknowledged and resolved alerts of the monitor with their level (一般 /
重要 / 紧急), response deadline, overdue and escalation state, observed against expected values and
the suggested action; acknowledging and resolving (with a root-cause note) through htmx; the
threshold rules. Everything comes from liebian.monitor.service (docs/monitoring.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from liebian.web.console import Column, Table, flash_fragment, htmx_redirect, render
from liebian.web.i18n import locale_of, register, translator

router = APIRouter(include_in_schema=False)

STATUS_TABS = ("open", "acknowledged", "resolved", "all")
LEVEL_KEYS = {"一般": "minor", "重要": "major", "紧急": "critical"}

register(
    {
        "alerts.heading": ("告警收件箱", "Alerts inbox"),
        "alerts.intro": (
            "响应时限：一般 2 小时、重要 4 小时、紧急 8 小时；未在时限内确认的告警自动升级一级。",
            "Response deadlines: minor 2 h, major 4 h, critical 8 h; an alert not acknowledged in time "
            "goes up one level.",
        ),
        "alerts.tabs": ("按状态查看", "By status"),
        "alerts.status.open": ("待处理", "Open"),
        "alerts.status.acknowledged": ("已确认", "Acknowledged"),
        "alerts.status.resolved": ("已解决", "Resolved"),
        "alerts.status.all": ("全部", "All"),
        "alerts.level": ("级别", "Level"),
        "alerts.level.minor": ("一般", "Minor"),
        "alerts.level.major": ("重要", "Major"),
        "alerts.level.critical": ("紧急", "Critical"),
        "alerts.all_levels": ("全部级别", "All levels"),
        "alerts.title": ("告警", "Alert"),
        "alerts.scope": ("范围", "Scope"),
        "alerts.scope_all": ("全部", "Everything"),
        "alerts.period": ("时段", "Period"),
        "alerts.threshold": ("阈值", "Threshold"),
        "alerts.vs": ("实际 / 预期", "Observed / expected"),
        "alerts.action": ("建议动作", "Suggested action"),
        "alerts.auto_action": ("自动调整", "Auto-adjust"),
        "alerts.due": ("响应截止", "Respond by"),
        "alerts.state": ("状态", "State"),
        "alerts.overdue": ("已超时", "Overdue"),
        "alerts.escalated": ("已升级", "Escalated"),
        "alerts.occurrences": ("次数", "Occurrences"),
        "alerts.first_seen": ("首次出现", "First seen"),
        "alerts.operate": ("操作", "Actions"),
        "alerts.acknowledge": ("确认", "Acknowledge"),
        "alerts.resolve": ("解决", "Resolve"),
        "alerts.root_cause": ("根因说明", "Root cause"),
        "alerts.root_cause_hint": ("例如：渠道接口故障，已恢复", "e.g. channel API outage, fixed"),
        "alerts.acknowledged_by": ("确认人", "Acknowledged by"),
        "alerts.resolved_by": ("解决人", "Resolved by"),
        "alerts.acknowledged_done": ("已确认告警", "Acknowledged alert"),
        "alerts.resolved_done": ("已解决告警", "Resolved alert"),
        "alerts.none": ("没有此状态的告警。", "No alerts in this state."),
        "alerts.counts": ("告警数量", "Alert counts"),
        "alerts.list": ("告警列表", "Alerts"),
        "alerts.kind.threshold": ("阈值", "Threshold"),
        "alerts.kind.anomaly": ("异常检测", "Anomaly"),
        "alerts.rules": ("阈值规则", "Threshold rules"),
        "alerts.rule.name": ("规则", "Rule"),
        "alerts.rule.condition": ("条件", "Condition"),
        "alerts.rule.auto": ("自动调整", "Auto-adjust"),
        "alerts.rule.enabled": ("启用", "Enabled"),
        "alerts.rules_defaults": ("安装默认规则", "Install the default rules"),
        "alerts.rules_none": (
            "还没有阈值规则。可安装默认规则（参与率、裂变率、社群负面、作弊率、数据质量）。",
            "No threshold rules yet. Install the defaults (participation, fission rate, negative "
            "sentiment, fraud rate, data quality).",
        ),
        "alerts.yes": ("是", "yes"),
        "alerts.no": ("否", "no"),
        "alerts.more": (
            "仅显示最新 200 条（请导出查看全部）。",
            "Showing the latest 200 (export to see all).",
        ),
        "alerts.action.none": ("无", "None"),
        "alerts.action.raise_reward_tier": ("提高奖励档位", "Raise the reward tier"),
        "alerts.action.pause_campaign": ("暂停活动", "Pause the campaign"),
        "alerts.action.review_channel": ("检查渠道", "Review the channel"),
        "alerts.action.review_group": ("检查社群", "Review the group"),
        "alerts.metric.participation_rate": ("参与率", "Participation rate"),
        "alerts.metric.fission_rate": ("裂变率", "Fission rate"),
        "alerts.metric.negative_share": ("社群负面占比", "Negative share"),
        "alerts.metric.fraud_rate": ("作弊率", "Fraud rate"),
        "alerts.metric.dq_error_rate": ("数据质量错误率", "Data-quality error rate"),
    }
)

SHOWN = 200  # alerts listed on the page; the export has them all


def _zone() -> ZoneInfo:
    from liebian.config import get_settings

    return ZoneInfo(get_settings().timezone)


def _local(value: str | None) -> str:
    """An alert time (ISO, naive UTC) as local time of the brand's zone."""
    if not value:
        return ""
    at = datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(_zone())
    return at.strftime("%Y-%m-%d %H:%M")


def _decorate(alert: dict, t, now: datetime) -> dict:
    """What the inbox shows besides the service's fields: local times, overdue, labels."""
    due = datetime.fromisoformat(alert["due_at"])
    scope = alert["scope"] or {}
    return alert | {
        "level_key": LEVEL_KEYS[alert["level"]],
        "overdue": alert["status"] == "open" and due <= now,
        "due_local": _local(alert["due_at"]),
        "first_seen_local": _local(alert["first_seen"]),
        "acknowledged_local": _local(alert["acknowledged_at"]),
        "resolved_local": _local(alert["resolved_at"]),
        "scope_text": ", ".join(f"{k}={v}" for k, v in scope.items()) or t("alerts.scope_all"),
        "metric_label": _metric_label(alert["metric"], t),
        "reference": alert["expected"] if alert["expected"] is not None else alert["threshold"],
        "action_label": t(f"alerts.action.{alert['suggested_action']}"),
    }


def _metric_label(metric: str, t) -> str:
    """A rule metric or an analytics KPI by its name in the page's language; else as stored."""
    from liebian.web.i18n import MESSAGES

    for key in (f"alerts.metric.{metric}", f"kpi.{metric}"):
        if key in MESSAGES:
            return t(key)
    return metric


def _value(v: float | None, metric: str) -> str:
    """Rates as percentages, counts and amounts as numbers (the monitor's units)."""
    if v is None:
        return "—"
    rate = metric.endswith(("_rate", "_share")) or metric in ("participation_rate", "referred_share_of_new")
    return f"{v:.2%}" if rate else f"{v:,.4g}"


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _rules_table(rules: list[dict], t) -> Table:
    rows = [
        r
        | {
            "condition": f"{r['metric']} {r['op']} {r['threshold']:.2%}",
            "scope_text": ", ".join(f"{k}={r[k]}" for k in ("campaign_id", "channel") if r.get(k))
            or t("alerts.scope_all"),
            "action_label": t(f"alerts.action.{r['action']}"),
            "auto": t("alerts.yes") if r["auto_adjust"] else t("alerts.no"),
            "on": t("alerts.yes") if r["enabled"] else t("alerts.no"),
        }
        for r in rules
    ]
    return Table(
        "rules",
        [
            Column("name", "alerts.rule.name"),
            Column("condition", "alerts.rule.condition"),
            Column("scope_text", "alerts.scope"),
            Column("level", "alerts.level"),
            Column("action_label", "alerts.action"),
            Column("auto", "alerts.rule.auto"),
            Column("on", "alerts.rule.enabled"),
        ],
        rows,
        title="alerts.rules",
    )


@router.get("/alerts")
def inbox(request: Request) -> Response:
    from liebian.db.session import session_scope
    from liebian.monitor import rules as monitor_rules
    from liebian.monitor import service as monitor

    t = translator(locale_of(request))
    status = request.query_params.get("status") or "open"
    level = request.query_params.get("level") or ""
    error = None
    if status not in STATUS_TABS:
        error, status = f"status: {status!r} is not one of {', '.join(STATUS_TABS)}", "open"
    if level and level not in monitor.LEVELS:
        error, level = f"level: {level!r} is not one of {', '.join(monitor.LEVELS)}", ""
    now = _now()
    exporting = bool(request.query_params.get("export"))
    with session_scope() as s:
        counts = monitor.alert_counts(s, now)
        # the page shows the latest SHOWN; an export has every alert of the view
        rows = monitor.list_alerts(s, None if status == "all" else status, level or None,
                                   limit=10_000 if exporting else SHOWN + 1)  # fmt: skip
        rules = monitor_rules.list_rules(s)
    counts["all"] = sum(counts[st] for st in monitor.STATUSES)
    overdue = counts["overdue"]
    chosen = [_decorate(a, t, now) for a in rows]
    table = Table(
        "alerts",
        [
            Column("id", "#", "int"),
            Column("level", "alerts.level"),
            Column("status", "alerts.state"),
            Column("title", "alerts.title"),
            Column("metric", "alerts.metric"),
            Column("scope_text", "alerts.scope"),
            Column("period", "alerts.period"),
            Column("observed", "alerts.observed", "float"),
            Column("reference", "alerts.expected", "float"),
            Column("suggested_action", "alerts.action"),
            Column("due_local", "alerts.due"),
            Column("escalations", "alerts.escalated", "int"),
            Column("occurrences", "alerts.occurrences", "int"),
            Column("acknowledged_by", "alerts.acknowledged_by"),
            Column("resolved_by", "alerts.resolved_by"),
            Column("root_cause", "alerts.root_cause"),
        ],
        chosen,
        title="alerts.list",
    )
    rules_table = _rules_table(rules, t)
    context = {
        "error": error,
        "status": status,
        "level": level,
        "levels": [(lv, LEVEL_KEYS[lv]) for lv in monitor.LEVELS],
        "tabs": STATUS_TABS,
        "counts": counts,
        "overdue": overdue,
        "alerts": chosen[:SHOWN],
        "more": len(chosen) > SHOWN,
        "table": table,
        "rules": rules_table,
        "value": _value,
        "can_write": _can_write(request),
    }
    return render(
        request, "alerts/inbox.html", context, tables=[table, rules_table], status_code=422 if error else 200
    )


def _can_write(request: Request) -> bool:
    from liebian.auth.deps import principal_of

    return principal_of(request).can("campaign:write")


def _row(request: Request, alert: dict, message: str) -> Response:
    t = translator(locale_of(request))
    context = {"a": _decorate(alert, t, _now()), "value": _value, "can_write": _can_write(request),
               "message": message}  # fmt: skip
    return render(request, "alerts/_row.html", context)


def _act(request: Request, alert_id: int, do) -> Response:
    from liebian.auth.deps import principal_of, write_refused
    from liebian.db.session import session_scope
    from liebian.monitor.service import MonitorError

    actor = principal_of(request).name
    try:
        with session_scope() as s:
            alert = do(s, actor)
    except MonitorError as exc:  # shown above the list (htmx swaps only 2xx answers)
        write_refused(request)  # nothing changed: no http.* audit entry
        return flash_fragment(exc.message, ok=False, retarget="#flash")
    return alert


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: int) -> Response:
    from liebian.monitor import service as monitor

    t = translator(locale_of(request))
    result = _act(request, alert_id, lambda s, actor: monitor.acknowledge(s, alert_id, actor=actor))
    if isinstance(result, Response):
        return result
    return _row(request, result, f"{t('alerts.acknowledged_done')} #{alert_id}")


@router.post("/alerts/{alert_id}/resolve")
def resolve(request: Request, alert_id: int, root_cause: str = Form("")) -> Response:
    from liebian.monitor import notifications as monitor_notifications
    from liebian.monitor import service as monitor

    t = translator(locale_of(request))

    def do(s, actor: str) -> dict:
        alert = monitor.resolve(s, alert_id, root_cause, actor=actor)
        monitor_notifications.notify_alert(
            s, alert, "resolved"
        )  # as the API does: the channels hear it is over
        return alert

    result = _act(request, alert_id, do)
    if isinstance(result, Response):
        return result
    return _row(request, result, f"{t('alerts.resolved_done')} #{alert_id}")


@router.post("/alerts/rules/defaults")
def install_defaults(request: Request) -> Response:
    from liebian.auth.deps import principal_of
    from liebian.db.session import session_scope
    from liebian.monitor import rules as monitor_rules

    with session_scope() as s:
        monitor_rules.install_default_rules(s, actor=principal_of(request).name)
    return htmx_redirect("/alerts")  # the page again, with the rules listed
