"""Operating reports: weekly and monthly, as HTML (inline SVG charts) and XLSX, delivered by e-mail
or signed webhook; SMART targets with progress.

Every number comes from the analytics service (`run_kpis`, `run_funnel`, `run_retention`,
`run_referral_tree`) and the fraud service (`fraud_rate`) — nothing is re-derived here, so a
report always equals what the API shows for the same period.

Schedule (display zone): the monthly report of the previous month goes out on the first job run
from the 1st to the 5th; the weekly report of the previous Monday–Sunday on Monday. A
(subscription, kind, period) row in report_runs makes each delivery exactly-once; a failed
delivery is retried by later runs on the due days.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import logging
import re
import smtplib
import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from liebian import calendar as holiday_calendar
from liebian import urlguard
from liebian.analytics import service as analytics
from liebian.analytics.common import AnalyticsError
from liebian.cells import safe_row
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.db.session import rowcount, session_scope
from liebian.decisions import options as decision_options
from liebian.engine import warehouse
from liebian.errors import DomainError, code_for
from liebian.fraud import service as fraud
from liebian.lazy import lazy_import
from liebian.monitor import service as monitor
from liebian.privacy import watermark
from liebian.privacy.crypto import decrypt, encrypt
from liebian.reports import render
from liebian.reports.models import ReportDocument, ReportRun, ReportSubscription, ReportTarget

if TYPE_CHECKING:
    import httpx
    import openpyxl
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    httpx = lazy_import("httpx")
    openpyxl = lazy_import("openpyxl")

log = logging.getLogger("liebian.reports")
KINDS = ("weekly", "monthly")
CHANNELS = ("email", "webhook")
# KPI keys a SMART target may name (run_kpis output); retention_dN for any configured N.
TARGET_METRICS = (
    "participation_rate", "invites_per_participant", "invite_conversion", "k_factor", "referral_rate",
    "conversion_rate", "repurchase_rate", "referred_share_of_new", "dau_mau", "reactivation_rate",
    "new_users", "buyers", "revenue_fen", "aov_fen", "ltv_fen", "cac_fen", "roi", "participants",
)  # fmt: skip
# Metrics where lower is better (progress runs the other way automatically via baseline > target).
XLSX_SHEETS = (
    "KPIs", "Targets", "Funnel", "Campaigns", "Cohorts", "Fraud", "Alerts", "Top spreaders", "Recommendations",
    "Options",
)  # fmt: skip
ALERT_COLUMNS = (
    "id", "level", "status", "title", "metric", "observed", "expected", "first_seen", "last_seen",
    "occurrences", "suggested_action",
)  # fmt: skip
FRAUD_RATE_LIMIT = 0.005  # the plan's ceiling (REQUIREMENTS: fraud rate ≤ 0.5%)


class ReportError(DomainError):
    """A refused report request; the body always names the field (as the app's 422s do)."""

    def __init__(self, message: str, status: int = 422, field: str = ""):
        errors = [{"field": field, "reason": message}]
        super().__init__(code_for(status), message, status, field=field, errors=errors)


# ------------------------------------------------------------------ periods and schedule


def today_local(now: datetime | None = None) -> date:
    now = now or utcnow()
    return now.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(get_settings().timezone)).date()


def last_data_day() -> date | None:
    """The local day of the warehouse's latest event or order up to now (None when it holds
    neither); rows stamped in the future (a clock gone wrong, year 9999) do not count."""
    now = utcnow()
    with warehouse.connect(read_only=True) as con:
        row = con.execute(
            "SELECT greatest((SELECT max(ts) FROM events WHERE ts <= ?), (SELECT max(ts) FROM orders WHERE ts <= ?))",
            [now, now],
        ).fetchone()
    last = row[0] if row else None
    return today_local(last) if isinstance(last, datetime) else None


def default_as_of() -> date:
    """The day a report asked for without a period is counted back from: today, or the day after
    the data's last day when the data ends earlier (an import of last quarter, the demo), so that
    the report covers the last complete period that has data rather than empty weeks."""
    today = today_local()
    last = last_data_day()
    return today if last is None else min(today, last + timedelta(days=1))


def period_of(kind: str, as_of: date) -> tuple[date, date]:
    """The last complete period before `as_of`: the previous Monday–Sunday, or the previous month."""
    if kind == "weekly":
        start = as_of - timedelta(days=as_of.weekday() + 7)
        return start, start + timedelta(days=6)
    if kind == "monthly":
        end = as_of.replace(day=1) - timedelta(days=1)
        return end.replace(day=1), end
    raise ReportError(f"kind: {kind!r} is not weekly or monthly", field="kind")


def due_reports(as_of: date) -> list[tuple[str, date, date]]:
    """Which reports are due on a local day: weekly on Monday, monthly on days 1–5."""
    out = []
    if as_of.weekday() == 0:
        out.append(("weekly", *period_of("weekly", as_of)))
    if as_of.day <= 5:
        out.append(("monthly", *period_of("monthly", as_of)))
    return out


# ------------------------------------------------------------------ SMART targets


def _check_metric(metric: str) -> str:
    if metric in TARGET_METRICS or re.fullmatch(r"retention_d\d+", metric):
        return metric
    raise ReportError(
        f"metric: {metric!r} is not a KPI (one of {', '.join(TARGET_METRICS)}, retention_dN)", field="metric"
    )


def _target_view(t: ReportTarget) -> dict[str, Any]:
    return {
        "id": t.id, "name": t.name, "metric": t.metric, "baseline": t.baseline, "target": t.target,
        "start_date": t.start_date.isoformat(), "due_date": t.due_date.isoformat(), "owner": t.owner,
    }  # fmt: skip


def _check_target(
    session: Session, name: str, metric: str, baseline: float, target: float, start_date: date, due_date: date,
    target_id: int | None = None,
) -> None:  # fmt: skip
    _check_metric(metric)
    if baseline == target:
        raise ReportError("target: must differ from baseline (nothing to measure)", field="target")
    if due_date <= start_date:
        raise ReportError("due_date: must be after start_date (time-bound)", field="due_date")
    same_name = session.scalar(select(ReportTarget.id).where(ReportTarget.name == name))
    if same_name is not None and same_name != target_id:
        raise ReportError(f"name: a target named {name!r} exists", 409, "name")


def create_target(
    session: Session, name: str, metric: str, baseline: float, target: float, start_date: date, due_date: date,
    owner: str = "",
) -> dict[str, Any]:  # fmt: skip
    """A SMART target, e.g. retention_d1 0.32 → 0.41 from 2026-11-01 to 2027-01-31."""
    _check_target(session, name, metric, baseline, target, start_date, due_date)
    t = ReportTarget(
        name=name, metric=metric, baseline=baseline, target=target, start_date=start_date, due_date=due_date,
        owner=owner,
    )  # fmt: skip
    session.add(t)
    session.flush()
    return _target_view(t)


def update_target(
    session: Session, target_id: int, name: str, metric: str, baseline: float, target: float, start_date: date,
    due_date: date, owner: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Edit a target (same checks as when it was set)."""
    t = session.get(ReportTarget, target_id)
    if t is None:
        raise ReportError(f"target_id: target {target_id} does not exist", 404, "target_id")
    _check_target(session, name, metric, baseline, target, start_date, due_date, target_id)
    t.name, t.metric, t.baseline, t.target = name, metric, baseline, target
    t.start_date, t.due_date, t.owner = start_date, due_date, owner
    session.flush()
    return _target_view(t)


def list_targets(session: Session) -> list[dict[str, Any]]:
    return [_target_view(t) for t in session.scalars(select(ReportTarget).order_by(ReportTarget.id))]


def delete_target(session: Session, target_id: int) -> None:
    t = session.get(ReportTarget, target_id)
    if t is None:
        raise ReportError(f"target_id: target {target_id} does not exist", 404, "target_id")
    session.delete(t)


def progress(target: dict[str, Any], current: float | None, as_of: date) -> dict[str, Any]:
    """Share of the way from baseline to target, against the share of time elapsed."""
    start, due = date.fromisoformat(target["start_date"]), date.fromisoformat(target["due_date"])
    elapsed = min(max((as_of - start).days / (due - start).days, 0.0), 1.0)
    done = (
        None if current is None else (current - target["baseline"]) / (target["target"] - target["baseline"])
    )
    if done is None:
        status = "no data"
    elif done >= 1:
        status = "achieved"
    elif done >= elapsed:
        status = "on track"
    else:
        status = "behind"
    return {**target, "current": current, "progress": done, "time_elapsed": elapsed, "status": status}


def targets_progress(
    targets: list[dict[str, Any]], kpis: dict[str, Any], as_of: date
) -> list[dict[str, Any]]:
    """Every target's progress with `current` taken from one period's KPIs (a report's)."""
    return [progress(t, kpis.get(t["metric"]), as_of) for t in targets]


# ------------------------------------------------------------------ the report data


def build_report(kind: str, start: date, end: date, engine: str | None = None) -> dict[str, Any]:
    """All sections of one period's report, as plain data (numbers straight from the services)."""

    if end < start:
        raise ReportError("end: before start", field="end")
    filters = analytics.make_filters(start, end)
    length = (end - start).days + 1
    prev = analytics.make_filters(start - timedelta(days=length), start - timedelta(days=1))
    kpis = analytics.run_kpis(filters, engine)
    prev_kpis = analytics.run_kpis(prev, engine)
    funnel = analytics.run_funnel(filters, engine=engine)
    campaigns = analytics.run_funnel(filters, breakdown="campaign", engine=engine)
    cohorts = analytics.run_retention(filters, unit="week", periods=6, cohorts=8, engine=engine)
    tree = analytics.run_referral_tree(filters, top=10, max_graph_nodes=1, engine=engine)
    with session_scope() as s:
        fraud_rows = fraud.fraud_rate(s, "campaign")
        targets = targets_progress(list_targets(s), kpis, end)
        alerts = period_alerts(s, start, end)
    report = {
        "kind": kind,
        "period_start": start.isoformat(),
        "period_end": end.isoformat(),
        "generated_at": utcnow().isoformat(),
        "kpis": kpis,
        "previous_kpis": prev_kpis,
        "targets": targets,
        "funnel": funnel["steps"],
        "campaigns": campaigns["steps"],
        "cohorts": cohorts["matrix"],
        "fraud": fraud_rows,
        "alerts": alerts,
        "top_spreaders": tree["top_spreaders"],
        "tree_summary": tree["summary"],
        # holidays, 调休, promotions and brand dates of the period: they explain unusual figures
        "calendar": [w.as_dict() for w in holiday_calendar.current().effects(start, end)],
    }
    report["recommendations"] = recommend(report)
    report["options"] = decision_options.report_options(report)  # options with expected effects
    return report


def utc_bounds(start: date, end: date) -> tuple[datetime, datetime]:
    """[start 00:00, end+1 00:00) in the display zone, as naive UTC."""
    zone, utc = ZoneInfo(get_settings().timezone), ZoneInfo("UTC")

    def at(d: date) -> datetime:
        return datetime(d.year, d.month, d.day, tzinfo=zone).astimezone(utc).replace(tzinfo=None)

    return at(start), at(end + timedelta(days=1))


def period_alerts(session: Session, start: date, end: date) -> list[dict[str, Any]]:
    """Alerts (monitor service) seen during the period: first seen before its end, last seen after its start."""

    lo, hi = utc_bounds(start, end)
    rows = []
    for a in monitor.list_alerts(session, limit=10000):
        if datetime.fromisoformat(a["first_seen"]) < hi and datetime.fromisoformat(a["last_seen"]) >= lo:
            rows.append({k: a[k] for k in ALERT_COLUMNS})
    return rows


def recommend(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Rule-based next steps from the report's own numbers (each names the number that fired it)."""
    k = report["kpis"]
    out: list[dict[str, Any]] = []

    def add(rule: str, text: str, **params: Any) -> None:
        # params: the numbers and names in the text, so that the HTML says it in the reader's language
        out.append({"rule": rule, "recommendation": text, "params": params})

    if k.get("k_factor") is not None and k["k_factor"] < 1:
        add("k_factor<1", f"K 因子 {k['k_factor']:.2f} < 1：裂变不能自我维持，提高被邀请人奖励或简化分享步骤。"
            " K-factor below 1: raise the invitee reward or shorten the share step.", k_factor=k["k_factor"])  # fmt: skip
    steps = [s for s in report["funnel"] if s.get("drop_off_rate") is not None]
    if steps:
        worst = max(steps, key=lambda s: s["drop_off_rate"])
        add("funnel_drop", f"最大流失在「{worst['name']}」（流失率 {worst['drop_off_rate']:.0%}）：优先优化这一步。"
            f" Largest drop-off at step {worst['step']} ({worst['event']}).", step=worst["name"], event=worst["event"],
            drop_off_rate=worst["drop_off_rate"])  # fmt: skip
    for row in report["fraud"]:
        if row["fraud_rate"] > FRAUD_RATE_LIMIT:
            name = row.get("title") or row["campaign_id"]  # campaigns by title (engine and imported)
            add("fraud_rate", f"活动 {name} 作弊率 {row['fraud_rate']:.2%} 超过 0.5%：收紧风控规则并复核待发奖励。"
                " Fraud rate above 0.5%: tighten rules, review pending rewards.", campaign=name,
                fraud_rate=row["fraud_rate"])  # fmt: skip
    for t in report["targets"]:
        if t["status"] == "behind":
            add("target_behind", f"目标「{t['name']}」落后：完成 {t['progress']:.0%}，时间已过 {t['time_elapsed']:.0%}。"
                f" Target {t['metric']} behind schedule.", target=t["name"], progress_rate=t["progress"],
                elapsed_rate=t["time_elapsed"])  # fmt: skip
    open_urgent = [a for a in report.get("alerts", []) if a["level"] == "紧急" and a["status"] != "resolved"]
    if open_urgent:
        add("urgent_alerts", f"{len(open_urgent)} 条紧急告警未解决（{open_urgent[0]['title']}…）：先处理告警再扩大投放。"
            " Urgent alerts are still open.", alerts=len(open_urgent), title=open_urgent[0]["title"])  # fmt: skip
    if k.get("silent_users") and (k.get("reactivation_rate") or 0) < 0.1:
        add("wake_up", f"沉默用户 {k['silent_users']} 人、唤醒率 {(k.get('reactivation_rate') or 0):.0%}：启动沉默用户唤醒旅程（silence 触发）。"
            " Start a silent-user wake-up journey.", silent_users=k["silent_users"],
            reactivation_rate=k.get("reactivation_rate") or 0)  # fmt: skip
    if k.get("repurchase_rate") is not None and k["repurchase_rate"] < 0.2:
        add("repurchase", f"复购率 {k['repurchase_rate']:.0%} 偏低：对高流失风险客户启动挽留旅程（churn_risk 触发）。"
            " Low repurchase: start a churn-intervention journey.", repurchase_rate=k["repurchase_rate"])  # fmt: skip
    return out


# ------------------------------------------------------------------ rendering

# the HTML document in one language (zh-CN or en), its KPI table by the metric catalogue: reports/render.py
KPI_ROWS = render.KPI_ROWS
render_html = render.render_html


def _sheet(
    wb: openpyxl.Workbook, title: str, rows: list[dict[str, Any]], columns: list[str] | None = None
) -> None:
    ws = wb.create_sheet(title)
    columns = columns or list(dict.fromkeys(c for r in rows for c in r))
    ws.append(columns)
    for r in rows:
        ws.append(safe_row(_cell(r.get(c)) for c in columns))


def _cell(value: object) -> object:
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, default=str)
    return value


def render_xlsx(report: dict[str, Any]) -> bytes:
    """One sheet per section; cells hold the services' raw numbers (rates as fractions, money in fen)."""
    wb = openpyxl.Workbook()
    if wb.active is not None:  # the blank first sheet
        wb.remove(wb.active)
    k, p = report["kpis"], report["previous_kpis"]
    metrics = [m for m, v in k.items() if isinstance(v, int | float) or v is None]
    metrics = [m for m in metrics if m not in ("segment_size",)]
    _sheet(wb, "KPIs", [{"metric": m, "value": k[m], "previous": p.get(m)} for m in metrics])
    _sheet(
        wb, "Targets", report["targets"],
        ["name", "metric", "baseline", "target", "current", "progress", "time_elapsed", "status", "start_date",
         "due_date", "owner"],
    )  # fmt: skip
    _sheet(wb, "Funnel", report["funnel"])
    _sheet(wb, "Campaigns", report["campaigns"])
    _sheet(wb, "Cohorts", report["cohorts"])
    _sheet(wb, "Fraud", report["fraud"], ["campaign_id", "title", "referrals", "rejected", "fraud_rate"])
    _sheet(wb, "Alerts", report["alerts"], list(ALERT_COLUMNS))
    _sheet(wb, "Top spreaders", report["top_spreaders"])
    _sheet(wb, "Recommendations", report["recommendations"], ["rule", "recommendation"])
    _sheet(wb, "Options", decision_options.option_rows(report.get("options") or []))
    meta = wb.create_sheet("About", 0)
    for row in (
        ("report", report["kind"]), ("period_start", report["period_start"]),
        ("period_end", report["period_end"]), ("generated_at", report["generated_at"]),
        ("timezone", get_settings().timezone), ("money", "fen (分)"), ("rates", "fractions (0.41 = 41%)"),
        ("calendar", "; ".join(f"{w['name']} {w['start']}–{w['end']}" for w in report.get("calendar", []))),
    ):  # fmt: skip
        meta.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def generate(
    kind: str, start: date | None = None, end: date | None = None, as_of: date | None = None
) -> dict[str, Any]:
    """On demand: the report of [start, end], or of the last complete `kind` period before as_of."""
    if kind not in KINDS:
        raise ReportError(f"kind: {kind!r} is not weekly or monthly", field="kind")
    if start is None or end is None:
        start, end = period_of(kind, as_of or default_as_of())
    return build_report(kind, start, end)


# ------------------------------------------------------------------ generated reports (kept)

# A document still pending or running this long after it was asked for was cut off (the server
# stopped); it is shown as failed so that it can be generated again.
STALE_AFTER = timedelta(hours=1)


def _document_view(d: ReportDocument, now: datetime | None = None) -> dict[str, Any]:
    status, detail = d.status, d.detail
    if status in ("pending", "running") and d.created_at < (now or utcnow()) - STALE_AFTER:
        status, detail = "failed", "interrupted: the server stopped before the report was finished"
    return {
        "id": d.id, "kind": d.kind, "period_start": d.period_start.isoformat(),
        "period_end": d.period_end.isoformat(), "status": status, "detail": detail,
        "requested_by": d.requested_by, "created_at": d.created_at.isoformat(),
        "finished_at": d.finished_at.isoformat() if d.finished_at else None,
    }  # fmt: skip


def request_document(
    session: Session, kind: str, start: date | None = None, end: date | None = None, requested_by: str = "",
    as_of: date | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Ask for a report to be generated and kept (status pending); `produce_document` builds it."""
    if kind not in KINDS:
        raise ReportError(f"kind: {kind!r} is not weekly or monthly", field="kind")
    if (start is None) != (end is None):
        raise ReportError("start, end: give both or neither", field="start")
    if start is None or end is None:
        start, end = period_of(kind, as_of or default_as_of())
    if end < start:
        raise ReportError("end: before start", field="end")
    d = ReportDocument(kind=kind, period_start=start, period_end=end, status="pending", detail="", data="",
                       requested_by=requested_by[:128], created_at=utcnow())  # fmt: skip
    session.add(d)
    session.flush()
    return _document_view(d)


def produce_document(document_id: int) -> dict[str, Any]:
    """Build a pending document's report and keep it (done), or record why it could not be (failed).
    Claimed by a conditional UPDATE, so two workers never build the same document."""

    with session_scope() as s:
        claimed = rowcount(
            s.execute(
                update(ReportDocument)
                .where(ReportDocument.id == document_id, ReportDocument.status == "pending")
                .values(status="running")
            )
        )
        d = s.get(ReportDocument, document_id)
        if d is None:
            raise ReportError(f"document_id: report {document_id} does not exist", 404, "document_id")
        if claimed != 1:
            return _document_view(d)
        kind, start, end = d.kind, d.period_start, d.period_end
    data, status, detail = "", "done", ""
    try:
        data = json.dumps(build_report(kind, start, end), ensure_ascii=False, default=str)
    except (ReportError, AnalyticsError) as exc:
        status, detail = "failed", str(exc)
    except Exception as exc:  # recorded on the document (and logged), never lost in a thread
        log.exception("report document %s failed", document_id)
        status, detail = "failed", f"{type(exc).__name__}: {exc}"
    with session_scope() as s:
        d = s.get(ReportDocument, document_id)
        if d is None:  # deleted while it was built
            raise ReportError(f"document_id: report {document_id} does not exist", 404, "document_id")
        d.status, d.detail, d.data, d.finished_at = status, detail[:2000], data, utcnow()
        s.flush()
        return _document_view(d)


_producing = threading.Lock()


def produce_later(document_id: int) -> None:
    """Build a requested document in a background thread of this process, one report at a time
    (each holds the warehouse for seconds). A server stopped meanwhile leaves it pending; it then
    reads as failed ("interrupted") after STALE_AFTER."""

    def work() -> None:
        with _producing:
            try:
                produce_document(document_id)
            except ReportError as exc:  # the document was deleted before or while it was built
                log.info("report document %s not built: %s", document_id, exc)

    threading.Thread(target=work, name=f"report-document-{document_id}", daemon=True).start()


def save_document(report: dict[str, Any], requested_by: str) -> int:
    """Keep a report that was already built (the schedule's), as a done document."""
    with session_scope() as s:
        d = ReportDocument(
            kind=report["kind"], period_start=date.fromisoformat(report["period_start"]),
            period_end=date.fromisoformat(report["period_end"]), status="done", detail="",
            data=json.dumps(report, ensure_ascii=False, default=str), requested_by=requested_by,
            created_at=utcnow(), finished_at=utcnow(),
        )  # fmt: skip
        s.add(d)
        s.flush()
        return d.id


def list_documents(session: Session, limit: int = 50) -> list[dict[str, Any]]:
    """The newest kept reports first (without their data)."""
    now = utcnow()
    rows = session.scalars(select(ReportDocument).order_by(ReportDocument.id.desc()).limit(limit))
    return [_document_view(d, now) for d in rows]


def get_document(session: Session, document_id: int) -> dict[str, Any]:
    """A kept report: its view plus `report` (the data) once it is done."""
    d = session.get(ReportDocument, document_id)
    if d is None:
        raise ReportError(f"document_id: report {document_id} does not exist", 404, "document_id")
    view = _document_view(d)
    if view["status"] != "done":
        raise ReportError(
            f"document_id: report {document_id} is {view['status']}, not ready", 409, "document_id"
        )
    return view | {"report": json.loads(d.data)}


# ------------------------------------------------------------------ subscriptions and delivery


def _sub_view(s: ReportSubscription) -> dict[str, Any]:
    return {"id": s.id, "kind": s.kind, "channel": s.channel, "address": s.address, "active": s.active}


def subscribe(
    session: Session, kind: str, channel: str, address: str, secret: str | None = None
) -> dict[str, Any]:

    if kind not in KINDS:
        raise ReportError(f"kind: {kind!r} is not weekly or monthly", field="kind")
    if channel not in CHANNELS:
        raise ReportError(f"channel: {channel!r} is not email or webhook", field="channel")
    if channel == "email" and not re.fullmatch(r"[^@\s]+@[^@\s]+", address):
        raise ReportError(f"address: {address!r} is not an e-mail address", field="address")
    if channel == "webhook":
        if not re.match(r"https?://", address):
            raise ReportError(f"address: {address!r} is not an http(s) URL", field="address")
        urlguard.check_url(address, "address")
        if not secret or len(secret) < 16:
            raise ReportError("secret: a webhook needs a signing secret of 16+ characters", field="secret")
    sub = ReportSubscription(
        kind=kind,
        channel=channel,
        address=address,
        secret_encrypted=encrypt(secret) if secret else "",
        active=True,
    )
    session.add(sub)
    session.flush()
    return _sub_view(sub)


def list_subscriptions(session: Session) -> list[dict[str, Any]]:
    return [_sub_view(s) for s in session.scalars(select(ReportSubscription).order_by(ReportSubscription.id))]


def unsubscribe(session: Session, subscription_id: int) -> dict[str, Any]:
    sub = session.get(ReportSubscription, subscription_id)
    if sub is None:
        raise ReportError(f"subscription_id: {subscription_id} does not exist", 404, "subscription_id")
    sub.active = False
    return _sub_view(sub)


def _title(report: dict[str, Any]) -> str:
    name = {"weekly": "周报 Weekly report", "monthly": "月报 Monthly report"}.get(
        report["kind"], "报告 Report"
    )
    return f"liebian {name} {report['period_start']} – {report['period_end']}"


def send_email(address: str, report: dict[str, Any], html: str, xlsx: bytes) -> None:
    settings = get_settings()
    msg = EmailMessage()
    msg["Subject"] = _title(report)
    msg["From"] = settings.smtp_from
    msg["To"] = address
    msg.set_content(f"{_title(report)}\n\nThe report is attached (HTML and XLSX).")
    msg.add_alternative(html, subtype="html")
    name = f"liebian-{report['kind']}-{report['period_start']}"
    msg.add_attachment(xlsx, maintype="application", subtype="vnd.openxmlformats-officedocument.spreadsheetml.sheet",
                       filename=f"{name}.xlsx")  # fmt: skip
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=30) as smtp:
        if settings.smtp_starttls:
            smtp.starttls()
        if settings.smtp_user:
            smtp.login(
                settings.smtp_user,
                settings.smtp_password.get_secret_value() if settings.smtp_password else "",
            )
        smtp.send_message(msg)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def send_webhook(url: str, secret: str, report: dict[str, Any], html: str, xlsx: bytes) -> None:
    body = json.dumps(
        {
            "kind": report["kind"], "period_start": report["period_start"], "period_end": report["period_end"],
            "title": _title(report), "kpis": report["kpis"], "targets": report["targets"],
            "recommendations": report["recommendations"], "html": html,
            "xlsx_base64": base64.b64encode(xlsx).decode("ascii"),
        },
        ensure_ascii=False, default=str,
    ).encode()  # fmt: skip
    ts = str(int(time.time()))
    urlguard.check_before_send(url, "address")  # again: the name may point elsewhere now
    r = httpx.post(
        url, content=body, timeout=30,
        headers={"Content-Type": "application/json", "X-Liebian-Timestamp": ts,
                 "X-Liebian-Signature": "sha256=" + sign(secret, ts, body)},
    )  # fmt: skip
    r.raise_for_status()


def deliver(
    sub: dict[str, Any],
    secret: str,
    report: dict[str, Any],
    html: str | None = None,
    xlsx: bytes | None = None,
) -> None:
    mark = watermark.issue_now(  # each delivery is an export: its own mark and audit entry
        actor="system:reports", what=f"report {report['kind']} to subscription {sub['id']}",
        filter_text=f"period {report['period_start']}..{report['period_end']}",
    )  # fmt: skip
    html = watermark.mark_html(html if html is not None else render_html(report), mark)
    xlsx = watermark.mark_xlsx(xlsx if xlsx is not None else render_xlsx(report), mark)
    if sub["channel"] == "email":
        send_email(sub["address"], report, html, xlsx)
    else:
        send_webhook(sub["address"], secret, report, html, xlsx)


def _insert(session: Session) -> Callable[[type[ReportRun]], postgresql.Insert | sqlite.Insert]:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def _claim(session: Session, sub_id: int, kind: str, start: date, end: date) -> int | None:
    """Take the (subscription, kind, period) delivery: new, or a failed one to retry; else None."""
    stmt = (
        _insert(session)(ReportRun)
        .values(subscription_id=sub_id, kind=kind, period_start=start, period_end=end, status="sending",
                detail="", created_at=utcnow())
        .on_conflict_do_nothing(index_elements=["subscription_id", "kind", "period_start"])
        .returning(ReportRun.id)
    )  # fmt: skip
    new_id: int | None = session.execute(stmt).scalar()  # RETURNING: rowcount is -1 on psycopg
    if new_id is not None:
        return new_id
    run = session.scalar(
        select(ReportRun).where(
            ReportRun.subscription_id == sub_id, ReportRun.kind == kind, ReportRun.period_start == start
        )
    )
    if run is None:  # the conflicting row was deleted in between
        return None
    retried = session.execute(
        update(ReportRun).where(ReportRun.id == run.id, ReportRun.status == "failed").values(status="sending")
    )
    return run.id if rowcount(retried) == 1 else None


def run_scheduled(now: datetime | None = None) -> list[dict[str, Any]]:
    """The job: send every due report to every active subscription of its kind, once."""

    out = []
    for kind, start, end in due_reports(today_local(now)):
        cache: dict[str, Any] | None = None
        with session_scope() as s:
            subs = list(
                s.scalars(
                    select(ReportSubscription).where(
                        ReportSubscription.kind == kind, ReportSubscription.active
                    )
                )
            )
            views = [(_sub_view(x), x.secret_encrypted) for x in subs]
        for sub, sealed in views:
            with session_scope() as s:
                run_id = _claim(s, sub["id"], kind, start, end)
            if run_id is None:
                continue
            try:
                if cache is None:
                    report = build_report(kind, start, end)
                    cache = {"report": report, "html": render_html(report), "xlsx": render_xlsx(report)}
                    save_document(report, "schedule")
                deliver(sub, decrypt(sealed) if sealed else "", cache["report"], cache["html"], cache["xlsx"])
                status, detail = "sent", ""
            except Exception as exc:  # delivery failures are recorded and retried, never lost
                status, detail = "failed", f"{type(exc).__name__}: {exc}"
            with session_scope() as s:
                s.execute(
                    update(ReportRun)
                    .where(ReportRun.id == run_id)
                    .values(
                        status=status, detail=detail[:2000], sent_at=utcnow() if status == "sent" else None
                    )
                )
            out.append({"subscription_id": sub["id"], "kind": kind, "period_start": start.isoformat(),
                        "status": status, "detail": detail})  # fmt: skip
    return out


def list_runs(session: Session, limit: int = 100) -> list[dict[str, Any]]:
    rows = session.scalars(select(ReportRun).order_by(ReportRun.id.desc()).limit(limit))
    return [
        {
            "id": r.id, "subscription_id": r.subscription_id, "kind": r.kind,
            "period_start": r.period_start.isoformat(), "period_end": r.period_end.isoformat(),
            "status": r.status, "detail": r.detail, "sent_at": r.sent_at.isoformat() if r.sent_at else None,
        }
        for r in rows
    ]  # fmt: skip
