"""The console's /reports page (issue #11, operating reports; the journeys are in journeys.py).

It lists the kept reports (weekly, monthly; generated on demand in a background thread, or by
the schedule), opens one as HTML, downloads its XLSX, shows the SMART targets' progress measured by
one of those reports (set and edit targets there), and manages the report subscriptions.

Every number and every rule comes from liebian.reports.service.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.reports import service
from liebian.reports.api import html_response, xlsx_response
from liebian.reports.service import TARGET_METRICS, ReportError
from liebian.schemas import Int64
from liebian.urlguard import UnsafeURL
from liebian.web.console import Chart, Column, Table, flash_fragment, htmx_redirect, render
from liebian.web.i18n import locale_of, translator

router = APIRouter(include_in_schema=False)


def _t(request: Request):
    return translator(locale_of(request))


def _user(request: Request) -> str:

    return principal_of(request).name


RATE_METRICS = {
    "participation_rate", "invite_conversion", "referral_rate", "conversion_rate", "repurchase_rate",
    "referred_share_of_new", "dau_mau", "reactivation_rate", "roi",
}  # fmt: skip


def metric_kind(metric: str) -> str:
    """How a KPI's value is shown: rates as %, money (…_fen) as ¥, counts as integers."""
    if metric in RATE_METRICS or re.fullmatch(r"retention_d\d+", metric):
        return "pct"
    if metric.endswith("_fen"):
        return "fen"
    if metric in ("k_factor", "invites_per_participant"):
        return "float"
    return "int"


def _metric_label(t, metric: str) -> str:
    label = t(f"kpi.{metric}")  # by name only: the code is the option's value
    return metric if label == f"kpi.{metric}" else label


def _metric_choices(t) -> list[tuple[str, str]]:

    metrics = ["retention_d1", "retention_d7", "retention_d30", *TARGET_METRICS]
    return [(m, _metric_label(t, m)) for m in metrics]


def _documents_table(documents: list[dict]) -> Table:
    return Table(
        "reports",
        [
            Column("id", "reports.id", "int"),
            Column("kind", "reports.kind", codes="reports.kind"),
            Column("period_start", "reports.period_start", "date"),
            Column("period_end", "reports.period_end", "date"),
            Column("status", "reports.status", codes="reports.status"),
            Column("requested_by", "reports.requested_by", data=True),
            Column("created_at", "reports.created_at", "utc"),
            Column("finished_at", "reports.finished_at", "utc"),
        ],
        documents,
        title="reports.documents",
    )


def _targets_table(targets: list[dict]) -> Table:
    return Table(
        "targets",
        [
            Column("name", "reports.target_name", data=True),
            Column("metric", "reports.metric", codes="kpi"),
            Column("baseline", "reports.baseline", "float"),
            Column("target", "reports.target_value", "float"),
            Column("current", "reports.current", "float"),
            Column("progress", "reports.progress", "pct"),
            Column("time_elapsed", "reports.time_elapsed", "pct"),
            Column("status", "reports.tstatus", codes="reports.tstatus"),
            Column("start_date", "reports.start_date", "date"),
            Column("due_date", "reports.due_date", "date"),
            Column("owner", "reports.owner", data=True),
        ],
        targets,
        title="reports.targets",
    )


def _progress_chart(t, targets: list[dict]) -> Chart:
    names = [x["name"] for x in targets]
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0},
        "grid": {"left": 140, "right": 40, "top": 36, "bottom": 30},
        "xAxis": {"type": "value", "axisLabel": {"formatter": "{value}%"}},
        "yAxis": {"type": "category", "data": names, "inverse": True},
        "series": [
            {
                "name": t("reports.progress"),
                "type": "bar",
                "itemStyle": {"color": "#b3102a"},
                "data": [None if x["progress"] is None else round(x["progress"] * 100, 1) for x in targets],
                "label": {"show": True, "position": "right", "formatter": "{c}%"},
            },
            {
                "name": t("reports.time_elapsed"),
                "type": "bar",
                "itemStyle": {"color": "#8c959f"},
                "data": [round(x["time_elapsed"] * 100, 1) for x in targets],
            },
        ],
    }
    return Chart("target-progress", option, "reports.progress_chart", height=max(160, 60 + 50 * len(targets)))


def _documents_context(request: Request) -> dict[str, Any]:

    with session_scope() as s:
        documents = service.list_documents(s)
    working = any(d["status"] in ("pending", "running") for d in documents)
    return {"documents": documents, "working": working}


@router.get("/reports")
def reports_page(request: Request) -> Response:

    t = _t(request)
    can_write = principal_of(request).can("reports:write")
    context = _documents_context(request)
    done = [d for d in context["documents"] if d["status"] == "done"]
    chosen = request.query_params.get("report", "")
    measured = next((d for d in done if str(d["id"]) == chosen), done[0] if done else None)
    error = None
    with session_scope() as s:
        targets = service.list_targets(s)
        if measured is not None:
            try:
                report = service.get_document(s, measured["id"])["report"]
            except ReportError as exc:
                error, report = exc.message, None
            if report is not None:
                as_of = date.fromisoformat(report["period_end"])
                targets = service.targets_progress(targets, report["kpis"], as_of)
        subscriptions = service.list_subscriptions(s) if can_write else []
        runs = service.list_runs(s, 20) if can_write else []
    edit_id = request.query_params.get("edit", "")
    editing = next((x for x in targets if str(x["id"]) == edit_id), None) if can_write else None
    measured_targets = bool(targets) and "progress" in targets[0]
    for x in targets:
        for key in ("current", "progress", "time_elapsed", "status"):
            x.setdefault(key, None)  # not measured yet: no report to measure by
        x["kind"] = metric_kind(x["metric"])
        x["metric_label"] = _metric_label(t, x["metric"])
    charts = [_progress_chart(t, targets)] if measured_targets else []
    documents = _documents_table(context["documents"])
    tables = [documents, _targets_table(targets)]
    context |= {
        "can_write": can_write,
        "measured": measured,
        "done": done,
        "targets": targets,
        "editing": editing,
        "metric_choices": _metric_choices(t),
        "charts": charts,
        "subscriptions": subscriptions,
        "runs": runs,
        "error": error,
        "today": date.today().isoformat(),
        "saved": request.query_params.get("saved", ""),
    }
    return render(request, "reports/index.html", context, tables=tables)


@router.get("/reports/documents")
def reports_documents(request: Request) -> Response:
    """The list of generated reports alone (htmx refreshes it while a report is being built)."""
    return render(request, "reports/_documents.html", _documents_context(request))


def _parse_date(t, field: str, value: str, required: bool = False) -> date | None:
    value = (value or "").strip()
    if not value:
        if required:
            raise ValueError(t("reports.required").format(field=field))
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(t("reports.bad_date").format(field=field, value=value)) from None


def _parse_number(t, field: str, value: str) -> float:
    text = (value or "").strip().replace(",", "")
    if not text:
        raise ValueError(t("reports.required").format(field=field))
    try:
        return float(text[:-1]) / 100 if text.endswith("%") else float(text)
    except ValueError:
        raise ValueError(t("reports.bad_number").format(field=field, value=value)) from None


@router.post("/reports/generate")
def reports_generate(
    request: Request, kind: str = Form("weekly"), start: str = Form(""), end: str = Form("")
) -> Response:

    t = _t(request)
    try:
        first, last = _parse_date(t, "start", start), _parse_date(t, "end", end)
        with session_scope() as s:
            doc = service.request_document(s, kind, first, last, requested_by=_user(request))
    except ValueError as exc:
        return flash_fragment(str(exc), ok=False)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    service.produce_later(doc["id"])
    response = flash_fragment(
        t("reports.queued").format(id=doc["id"], start=doc["period_start"], end=doc["period_end"])
    )
    response.headers["HX-Trigger"] = "reports-changed"
    return response


def _document_report(document_id: int) -> dict | Response:

    try:
        with session_scope() as s:
            return service.get_document(s, document_id)["report"]
    except ReportError as exc:
        return Response(exc.message, status_code=exc.status, media_type="text/plain; charset=utf-8")


@router.get("/reports/{document_id}/report.html")
def report_html(request: Request, document_id: Int64) -> Response:

    report = _document_report(document_id)
    if isinstance(report, Response):
        return report
    return html_response(report, request, locale_of(request))


@router.get("/reports/{document_id}/report.xlsx")
def report_xlsx(document_id: Int64, request: Request) -> Response:

    report = _document_report(document_id)
    if isinstance(report, Response):
        return report
    return xlsx_response(report, request)


def _target_fields(t, form: dict[str, str]) -> dict[str, Any]:
    name = form["name"].strip()
    if not name:
        raise ValueError(t("reports.required").format(field="name"))
    return {
        "name": name,
        "metric": form["metric"].strip(),
        "baseline": _parse_number(t, "baseline", form["baseline"]),
        "target": _parse_number(t, "target", form["target"]),
        "start_date": _parse_date(t, "start_date", form["start_date"], required=True),
        "due_date": _parse_date(t, "due_date", form["due_date"], required=True),
        "owner": form["owner"].strip(),
    }


def _save_target(request: Request, form: dict[str, str], target_id: int | None) -> Response:

    t = _t(request)
    try:
        fields = _target_fields(t, form)
        with session_scope() as s:
            if target_id is None:
                saved = service.create_target(s, **fields)
            else:
                saved = service.update_target(s, target_id, **fields)
    except ValueError as exc:
        return flash_fragment(str(exc), ok=False)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    # a query that names the saved target: a URL differing only by its #fragment would not reload
    return htmx_redirect(f"/reports?saved={saved['id']}#target-{saved['id']}")


def _reload() -> Response:
    """After an htmx write that changes the page the user is on: reload it."""
    return Response(status_code=204, headers={"HX-Refresh": "true"})


@router.post("/reports/targets")
def target_create(
    request: Request, name: str = Form(""), metric: str = Form(""), baseline: str = Form(""),
    target: str = Form(""), start_date: str = Form(""), due_date: str = Form(""), owner: str = Form(""),
) -> Response:  # fmt: skip
    form = {"name": name, "metric": metric, "baseline": baseline, "target": target,
            "start_date": start_date, "due_date": due_date, "owner": owner}  # fmt: skip
    return _save_target(request, form, None)


@router.put("/reports/targets/{target_id}")
def target_update(
    request: Request, target_id: Int64, name: str = Form(""), metric: str = Form(""), baseline: str = Form(""),
    target: str = Form(""), start_date: str = Form(""), due_date: str = Form(""), owner: str = Form(""),
) -> Response:  # fmt: skip
    form = {"name": name, "metric": metric, "baseline": baseline, "target": target,
            "start_date": start_date, "due_date": due_date, "owner": owner}  # fmt: skip
    return _save_target(request, form, target_id)


@router.delete("/reports/targets/{target_id}")
def target_delete(target_id: Int64) -> Response:

    try:
        with session_scope() as s:
            service.delete_target(s, target_id)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    return _reload()


@router.post("/reports/subscriptions")
def subscription_create(
    request: Request, kind: str = Form("weekly"), channel: str = Form("email"), address: str = Form(""),
    secret: str = Form(""),
) -> Response:  # fmt: skip

    try:
        with session_scope() as s:
            service.subscribe(s, kind, channel, address.strip(), secret or None)
    except (ReportError, UnsafeURL) as exc:
        return flash_fragment(exc.message, ok=False)
    return _reload()


@router.delete("/reports/subscriptions/{subscription_id}")
def subscription_delete(subscription_id: Int64) -> Response:

    try:
        with session_scope() as s:
            service.unsubscribe(s, subscription_id)
    except ReportError as exc:
        return flash_fragment(exc.message, ok=False)
    return _reload()
