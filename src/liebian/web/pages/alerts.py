"""The alerts inbox: open, acknowledged and resolved alerts of the monitor with their level (一般 /
重要 / 紧急), response deadline, overdue and escalation state, observed against expected values and
the suggested action; acknowledging and resolving (with a root-cause note) through htmx; the
threshold rules. Everything comes from liebian.monitor.service (docs/monitoring.md)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from markupsafe import Markup, escape

from liebian.auth.deps import principal_of, write_refused
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.monitor import notifications as monitor_notifications
from liebian.monitor import rules as monitor_rules
from liebian.monitor import service as monitor
from liebian.monitor.service import MonitorError
from liebian.schemas import Int64
from liebian.web.console import Column, Table, flash_fragment, htmx_redirect, render
from liebian.web.format import code_name
from liebian.web.i18n import locale_of, translator
from liebian.web.messages import CATALOGUE

router = APIRouter(include_in_schema=False)

STATUS_TABS = ("open", "acknowledged", "resolved", "all")
LEVEL_KEYS = {"一般": "minor", "重要": "major", "紧急": "critical"}

SHOWN = 200  # alerts listed on the page; the export has them all


def _zone() -> ZoneInfo:

    return ZoneInfo(get_settings().timezone)


def _local(value: str | None) -> str:
    """An alert time (ISO, naive UTC) as local time of the brand's zone."""
    if not value:
        return ""
    at = datetime.fromisoformat(value).replace(tzinfo=UTC).astimezone(_zone())
    return at.strftime("%Y-%m-%d %H:%M")


def _scope_text(t, scope: dict) -> Markup:
    """An alert's or rule's scope by name (活动 c_invite · 渠道 企业微信); ids marked as data."""
    parts = []
    for key, value in scope.items():
        if not value:
            continue
        name = code_name(t, "alerts.scopekey", key)
        if key == "channel":
            parts.append(Markup("{} {}").format(name, code_name(t, "channel", value)))
        else:
            parts.append(Markup('{} <span translate="no">{}</span>').format(name, value))
    return Markup(" · ").join(parts) if parts else Markup(escape(t("alerts.scope_all")))


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
        "scope_text": _scope_text(t, scope),
        "metric_label": _metric_label(alert["metric"], t),
        "reference": alert["expected"] if alert["expected"] is not None else alert["threshold"],
        "action_label": t(f"alerts.action.{alert['suggested_action']}"),
    }


def _metric_label(metric: str, t) -> str:
    """A rule metric or an analytics KPI by its name in the page's language; else as stored."""
    for key in (f"alerts.metric.{metric}", f"kpi.{metric}"):
        if key in CATALOGUE:
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
            "condition": f"{_metric_label(r['metric'], t)} {r['op']} {r['threshold']:.2%}",
            "level_name": t(f"alerts.level.{LEVEL_KEYS[r['level']]}"),
            "scope_text": _scope_text(t, {k: r.get(k) for k in ("campaign_id", "channel")}),
            "action_label": t(f"alerts.action.{r['action']}"),
            "auto": t("alerts.yes") if r["auto_adjust"] else t("alerts.no"),
            "on": t("alerts.yes") if r["enabled"] else t("alerts.no"),
        }
        for r in rules
    ]
    return Table(
        "rules",
        [
            Column("name", "alerts.rule.name", data=True),
            Column("condition", "alerts.rule.condition"),
            Column("scope_text", "alerts.scope"),
            Column("level_name", "alerts.level"),
            Column("action_label", "alerts.action"),
            Column("auto", "alerts.rule.auto"),
            Column("on", "alerts.rule.enabled"),
        ],
        rows,
        title="alerts.rules",
    )


@router.get("/alerts")
def inbox(request: Request) -> Response:

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

    return principal_of(request).can("campaign:write")


def _row(request: Request, alert: dict, message: str) -> Response:
    t = translator(locale_of(request))
    context = {"a": _decorate(alert, t, _now()), "value": _value, "can_write": _can_write(request),
               "message": message}  # fmt: skip
    return render(request, "alerts/_row.html", context)


def _act(request: Request, alert_id: int, do) -> Response:

    actor = principal_of(request).name
    try:
        with session_scope() as s:
            alert = do(s, actor)
    except MonitorError as exc:  # shown above the list (htmx swaps only 2xx answers)
        write_refused(request)  # nothing changed: no http.* audit entry
        return flash_fragment(exc.message, ok=False, retarget="#flash")
    return alert


@router.post("/alerts/{alert_id}/acknowledge")
def acknowledge(request: Request, alert_id: Int64) -> Response:

    t = translator(locale_of(request))
    result = _act(request, alert_id, lambda s, actor: monitor.acknowledge(s, alert_id, actor=actor))
    if isinstance(result, Response):
        return result
    return _row(request, result, f"{t('alerts.acknowledged_done')} #{alert_id}")


@router.post("/alerts/{alert_id}/resolve")
def resolve(request: Request, alert_id: Int64, root_cause: str = Form("")) -> Response:

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

    with session_scope() as s:
        monitor_rules.install_default_rules(s, actor=principal_of(request).name)
    return htmx_redirect("/alerts")  # the page again, with the rules listed
