"""The /attribution page: multi-touch attribution, computed in the background when no stored report matches."""

from __future__ import annotations

import hashlib
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.predict import results
from liebian.predict import service as predict
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    filter_options,
    flash_fragment,
    is_htmx,
    render,
)
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.models.common import bar_option, channel_label, fitted
from liebian.web.pages.models.tasks import Stage, current_task, start_task, task_context

router = APIRouter(include_in_schema=False)

ATTR_MODELS = ("first", "last", "linear", "time_decay", "position", "markov")


def _attr_settings(request: Request) -> tuple[str, int, float]:
    q = request.query_params
    by = q.get("by") or "channel"
    if by not in ("channel", "campaign"):
        raise FilterError(f"by: must be channel or campaign (got {by!r})")
    try:
        lookback = int(q.get("lookback_days") or 30)
    except ValueError as exc:
        raise FilterError(f"lookback_days: not a whole number ({q.get('lookback_days')!r})") from exc
    try:
        half_life = float(q.get("half_life_hours") or 72)
    except ValueError as exc:
        raise FilterError(f"half_life_hours: not a number ({q.get('half_life_hours')!r})") from exc
    if not 1 <= lookback <= 365:
        raise FilterError(f"lookback_days: must be between 1 and 365 (got {lookback})")
    if not 0 < half_life <= 24 * 365:
        raise FilterError(f"half_life_hours: must be above 0 and at most 8760 (got {half_life:g})")
    return by, lookback, half_life


def _attr_request(request: Request):
    """Everything that defines one attribution report: settings, period, segment (by its members)."""
    filters = ConsoleFilters.from_request(request)
    by, lookback, half_life = _attr_settings(request)
    af = filters.to_analytics()
    members = sorted(af.segment) if af.segment is not None else None
    key_params = {
        "by": by,
        "lookback_days": lookback,
        "half_life_hours": half_life,
        "start": af.start.isoformat() if af.start else None,
        "end": af.end.isoformat() if af.end else None,
        "segment": filters.segment or None,
        "members": hashlib.sha256(",".join(map(str, members)).encode()).hexdigest()[:16] if members is not None else None,
    }  # fmt: skip
    return filters, af, members, key_params


def _attr_stage(af, members, key_params) -> list[Stage]:

    def work(_report) -> None:
        predict.attribution_report(
            key_params["by"], key_params["lookback_days"], key_params["half_life_hours"], af.start, af.end,
            members, store_params={"segment": key_params["segment"], "members": key_params["members"]},
        )  # fmt: skip

    return [("attribution", 1, work)]


def _attr_key(key_params: dict) -> str:
    return "attribution:" + ",".join(f"{k}={v}" for k, v in sorted(key_params.items()))


def _attr_view(t, report: dict, by: str) -> tuple[list[Table], list[Chart]]:
    rows = report["rows"]
    label = (lambda v: channel_label(t, v)) if by == "channel" else (lambda v: v)
    rows = [r | {"label": label(r["touchpoint"])} for r in rows]
    labels = [r["label"] for r in rows]
    charts, tables = [], []
    for metric, chart_title, scale in (
        ("conversions", "attr.chart_conversions", 1),
        ("revenue_fen", "attr.chart_revenue", 100),
    ):
        series = [
            {
                "name": t(f"attr.model.{m}"),
                "type": "bar",
                "data": [round(r[f"{m}_{metric}"] / scale, 2) for r in rows],
            }
            for m in ATTR_MODELS
        ]
        charts.append(
            Chart(
                f"attr_{metric}",
                bar_option(labels, series, "¥" if scale == 100 else ""),
                chart_title,
                height=360,
            )
        )
    tables.append(
        Table(
            "attr_conversions",
            [Column("label", "attr.touchpoint")]
            + [Column(f"{m}_conversions", f"attr.model.{m}", "float") for m in ATTR_MODELS]
            + [Column("removal_effect", "attr.removal", "pct")],
            rows,
            title="attr.table_conversions",
        )
    )
    tables.append(
        Table(
            "attr_revenue",
            [Column("label", "attr.touchpoint")] + [Column(f"{m}_revenue_fen", f"attr.model.{m}", "fen") for m in ATTR_MODELS],
            rows,
            title="attr.table_revenue",
        )
    )  # fmt: skip
    return tables, charts


@router.get("/attribution")
def attribution_page(request: Request) -> Response:

    t = translator(locale_of(request))
    q = request.query_params
    context: dict[str, Any] = {
        "filters": ConsoleFilters.from_request(request),
        "options": filter_options(),
        "error": None,
        "report": None,
        "by": q.get("by") or "channel",
        "lookback_days": q.get("lookback_days") or "30",
        "half_life_hours": q.get("half_life_hours") or "72",
    }
    try:
        filters, af, members, key_params = _attr_request(request)
    except FilterError as exc:
        return render(request, "models/attribution.html", context | {"error": str(exc)}, status_code=422)
    snapshot = results.current_snapshot()
    entry = results.latest("attribution", key_params)
    current = entry is not None and results.is_current(entry, snapshot)
    task = None
    if not current:
        key = _attr_key(key_params)
        task = current_task(key)
        failed_on_this_data = (
            task is not None and not task.running and task.errors and task.snapshot_hash == snapshot["hash"]
        )
        if not failed_on_this_data:
            task, _ = start_task(key, _attr_stage(af, members, key_params), snapshot["hash"])
    tables: list[Table] = []
    if entry is not None:
        report = entry["metrics"]
        tables, charts = _attr_view(t, report, key_params["by"])
        context |= {"report": report, "charts": charts, "fitted": fitted(entry, snapshot)}
    context |= {
        "tables": tables,
        "task": task_context(task, t),
        "poll_url": f"/attribution/status{request.url.query and '?' + request.url.query}",
        "by": key_params["by"],
        "updating": entry is not None and not current,
    }
    return render(request, "models/attribution.html", context, tables=tables)


@router.get("/attribution/status")
def attribution_status(request: Request) -> Response:
    t = translator(locale_of(request))
    try:
        _, _, _, key_params = _attr_request(request)
    except FilterError as exc:
        return flash_fragment(str(exc), ok=False)
    task = current_task(_attr_key(key_params))
    poll_url = f"/attribution/status{request.url.query and '?' + request.url.query}"
    response = render(
        request,
        "models/_task.html",
        {"task": task_context(task, t), "poll_url": poll_url, "box_id": "attr-status"},
    )
    if task is not None and not task.running and not task.errors and is_htmx(request):
        response.headers["HX-Refresh"] = "true"
    return response
