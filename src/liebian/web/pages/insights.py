"""The insight builder (/insights): a funnel (steps added, removed and reordered, window, order mode,
breakdown, exclusion steps), retention or trends built in a GET form, run through the same analytics
service the HTTP API answers with (analytics/insights.py), saved under a name (/insights/saved,
/insights/{id}) and shown together on dashboards (/dashboards, /dashboards/{id}).

The form works without JavaScript: every edit of the step list is a submit button (`op`) that the
page applies before it validates, so the URL always holds the whole insight.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError

from liebian.analytics import insights
from liebian.analytics.common import AnalyticsError
from liebian.analytics.insights_schemas import (
    MAX_DASHBOARD_ITEMS,
    MAX_STEPS,
    MAX_TREND_EVENTS,
    DashboardIn,
    FunnelParams,
    InsightIn,
    Params,
    RetentionParams,
    TrendsParams,
)
from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.schemas import Int64
from liebian.web.console import (
    Chart,
    Column,
    Table,
    cached,
    filter_options,
    flash_fragment,
    htmx_redirect,
    render,
)
from liebian.web.format import validation_reason
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.analytics.common import PALETTE
from liebian.web.pages.analytics.funnel import (
    _breakdown_chart,
    _funnel_chart,
    _funnel_columns,
    _funnel_rows,
    _named_groups,
    _step_label,
)
from liebian.web.pages.analytics.retention import retention_view

router = APIRouter(include_in_schema=False)

KINDS = ("funnel", "retention", "trends")
MODES = ("ordered", "strict", "unordered")
BREAKDOWNS = ("channel", "campaign")
UNITS = ("day", "week", "month")
DEFAULT_STEPS = ["exposure", "page_view", "join_campaign", "order_paid"]
FILTER_KEYS = ("start", "end", "channel", "campaign")


# A refused parameter is named by its label in the form, with its field for precision.
FIELD_LABELS = {
    "steps": "insights.steps",
    "window_days": "insights.window_days",
    "mode": "insights.mode",
    "breakdown": "funnel.breakdown",
    "exclusions": "insights.exclusions",
    "filters": "insights.period",
    "events": "insights.events",
    "interval": "insights.interval",
    "unit": "retention.unit",
    "cohort_by": "retention.cohort_by",
    "periods": "insights.periods",
    "cohorts": "insights.cohorts",
}


class BuilderError(ValueError):
    """A builder parameter that is not valid: shown on the page (status 422) with the field named."""


# --- the form's state ---------------------------------------------------------------------------


def _ints(values: list[str]) -> list[str]:
    return [v.strip() for v in values]


def _apply_op(op: str, items: list[Any], limit: int) -> list[Any]:
    """The step list after one edit: add, remove-N, up-N, down-N (N 1-based); a bad op is ignored."""
    action, _, number = op.partition("-")
    if action == "add":
        return items + [items[-1] if items else ""] if len(items) < limit else items
    try:
        i = int(number) - 1
    except ValueError:
        return items
    if not 0 <= i < len(items):
        return items
    if action == "remove":
        return items[:i] + items[i + 1 :]
    j = i - 1 if action == "up" else i + 1 if action == "down" else -1
    if 0 <= j < len(items):
        items = list(items)
        items[i], items[j] = items[j], items[i]
    return items


def _filters_raw(q) -> dict[str, Any]:
    return {
        "start": q.get("start") or None,
        "end": q.get("end") or None,
        "channels": [q["channel"]] if q.get("channel") else [],
        "campaigns": [q["campaign"]] if q.get("campaign") else [],
    }


def form_state(request: Request) -> tuple[str, dict[str, Any]]:
    """(kind, raw params) from the query string, with the form's edit (`op`) applied."""
    q = request.query_params
    kind = q.get("kind") or "funnel"
    if kind not in KINDS:
        raise BuilderError(f"kind: {kind[:40]!r} is not one of {', '.join(KINDS)}")
    op = q.get("op", "")
    filters = _filters_raw(q)
    if kind == "funnel":
        steps = _ints(q.getlist("step")) or list(DEFAULT_STEPS)
        if not op.startswith("x"):
            steps = _apply_op(op, steps, MAX_STEPS)
        exclusions = [
            {"event": e.strip(), "from_step": f.strip(), "to_step": t.strip()}
            for e, f, t in zip(q.getlist("ex_event"), q.getlist("ex_from"), q.getlist("ex_to"), strict=False)
        ]
        if op == "xadd":
            exclusions.append({"event": "", "from_step": "1", "to_step": str(len(steps))})
        elif op.startswith("xremove-"):
            exclusions = _apply_op(op[1:], exclusions, MAX_STEPS)
        return kind, {
            "steps": steps,
            "window_days": q.get("window_days") or 14,
            "mode": q.get("mode") or "ordered",
            "breakdown": q.get("breakdown") or None,
            "exclusions": exclusions,
            "filters": filters,
        }
    if kind == "retention":
        return kind, {
            "unit": q.get("unit") or "week",
            "cohort_by": q.get("cohort_by") or "first_event",
            "periods": q.get("periods") or 12,
            "cohorts": q.get("cohorts") or 12,
            "filters": filters,
        }
    events = _ints(q.getlist("event")) or ["page_view"]
    events = _apply_op(op, events, MAX_TREND_EVENTS)
    return kind, {
        "interval": q.get("interval") or "day",
        "events": events,
        "breakdown": q.get("breakdown") or None,
        "filters": filters,
    }


def validate(kind: str, raw: dict[str, Any], locale: str, known: list[str]) -> Params:
    """The builder's params, validated by the insight model; the first problem named by its field, in
    the console's language; event names must be ones the warehouse holds."""
    try:
        params = insights.parse_params(kind, raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        label = translator(locale)(
            FIELD_LABELS.get(str(first["loc"][0]) if first["loc"] else "", "insights.heading")
        )
        raise BuilderError(f"{label} ({where}): {validation_reason(first, locale)}") from None
    except ValueError as exc:
        raise BuilderError(str(exc)) from None
    names = params.steps if isinstance(params, FunnelParams) else getattr(params, "events", [])
    if isinstance(params, FunnelParams):
        names = [*names, *(x.event for x in params.exclusions)]
    t = translator(locale)
    for name in names:
        if name not in known:
            raise BuilderError(t("insights.unknown_event").replace("{name}", name[:64]))
    return params


def builder_query(kind: str, params: Params) -> str:
    """The builder's URL query of validated params (a saved insight opens as it was built)."""
    items: list[tuple[str, str]] = [("kind", kind)]
    f = params.filters
    items += [(k, str(v)) for k, v in (("start", f.start), ("end", f.end)) if v]
    items += [("channel", c) for c in f.channels[:1]] + [("campaign", c) for c in f.campaigns[:1]]
    if isinstance(params, FunnelParams):
        items += [("step", s) for s in params.steps]
        items += [("window_days", f"{params.window_days:g}"), ("mode", params.mode)]
        for x in params.exclusions:
            items += [("ex_event", x.event), ("ex_from", str(x.from_step)), ("ex_to", str(x.to_step))]
    elif isinstance(params, RetentionParams):
        items += [("unit", params.unit), ("cohort_by", params.cohort_by), ("periods", str(params.periods)),
                  ("cohorts", str(params.cohorts))]  # fmt: skip
    else:
        items += [("event", e) for e in params.events] + [("interval", params.interval)]
    if not isinstance(params, RetentionParams) and params.breakdown:
        items.append(("breakdown", params.breakdown))
    return urlencode(items)


# --- results --------------------------------------------------------------------------------------


def _event_label(t, event: str) -> str:
    """An event as the picker shows it: its catalogue name beside the tracked name, when it has one."""
    name = _step_label(t, {"event": event, "name": ""})
    return f"{name} · {event}" if name else event


def _event_names() -> list[str]:
    return cached(("insights", "event_names"), insights.run_event_names)


def _result(kind: str, params: Params) -> dict[str, Any]:
    return cached(("insight", kind, params.model_dump_json()), lambda: insights.run(kind, params))


def dropped_url(params: FunnelParams, step: int) -> str:
    """The drop-off list (/funnel/dropped) of this funnel at `step`: who reached step-1 but not it."""
    f = params.filters
    items: list[tuple[str, str]] = [(k, str(v)) for k, v in (("start", f.start), ("end", f.end)) if v]
    items += [("channel", c) for c in f.channels[:1]] + [("campaign", c) for c in f.campaigns[:1]]
    items += [
        ("steps", ",".join(params.steps)),
        ("window_days", f"{params.window_days:g}"),
        ("mode", params.mode),
    ]
    items += [
        (f"exclusion{i}", f"{x.event}:{x.from_step}:{x.to_step}") for i, x in enumerate(params.exclusions)
    ]
    return f"/funnel/dropped?{urlencode(items + [('step', str(step))])}"


def _funnel_view(
    t, params: FunnelParams, result: dict, prefix: str, drill: bool = False
) -> tuple[list[Chart], list[Table]]:
    rows = result["steps"]
    if params.breakdown:
        named = _named_groups(t, params.breakdown, rows)
        table = Table(
            f"{prefix}funnel_by_group",
            _funnel_columns(True),
            _funnel_rows(t, named),
            "funnel.breakdown_table",
        )
        chart = _breakdown_chart(t, named)
    else:
        links = [dropped_url(params, r["step"]) if drill and r["step"] > 1 else None for r in rows]
        table = Table(
            f"{prefix}funnel_steps",
            _funnel_columns(False),
            _funnel_rows(t, rows),
            "funnel.steps" if drill else "funnel.steps_plain",
            link=lambda row: links[row["step"] - 1],
            link_column="dropped",
        )
        chart = _funnel_chart(t, rows, links)
    chart.id = f"{prefix}{chart.id}"
    return [chart], [table]


def _trends_view(t, params: TrendsParams, result: dict, prefix: str) -> tuple[list[Chart], list[Table]]:
    def name(s: dict) -> str:
        label = _step_label(t, {"event": s["event"], "name": s["event"]})
        return f"{label} · {s['breakdown']}" if s["breakdown"] is not None else label

    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "color": PALETTE,
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": result["buckets"]},
        "yAxis": {"type": "value", "minInterval": 1},
        "series": [{"name": name(s), "type": "line", "data": s["counts"]} for s in result["series"]],
    }
    columns = [
        Column("bucket", "insights.bucket", data=True),
        Column("event", "funnel.event", data=True),
        *([Column("breakdown", "funnel.group", data=True)] if params.breakdown else []),
        Column("count", "insights.count", "int"),
        Column("persons", "funnel.persons", "int"),
    ]
    return [Chart(f"{prefix}trends", option, "insights.trends_chart")], [
        Table(f"{prefix}trends_table", columns, result["rows"], "insights.trends_table")
    ]


def result_view(
    t, kind: str, params: Params, result: dict, prefix: str = "", drill: bool = False
) -> tuple[list[Chart], list[Table]]:
    """Charts and tables of a result; `drill` links a funnel's drop-offs to the persons (/funnel/dropped)."""
    if isinstance(params, FunnelParams):
        return _funnel_view(t, params, result, prefix, drill)
    if isinstance(params, TrendsParams):
        return _trends_view(t, params, result, prefix)
    view = retention_view(t, params.unit, result)
    if view is None:
        return [], []
    chart, table = view
    chart.id, table.id = f"{prefix}{chart.id}", f"{prefix}{table.id}"
    return [chart], [table]


# --- pages ----------------------------------------------------------------------------------------


def _base_context(request: Request) -> dict[str, Any]:
    return {
        "options": filter_options(),
        "error": None,
        "kinds": KINDS,
        "modes": MODES,
        "breakdowns": BREAKDOWNS,
        "units": UNITS,
        "can_save": principal_of(request).can("models:write"),
    }


def _builder(request: Request, title: str | None = None, insight_id: int | None = None) -> Response:
    locale = locale_of(request)
    t = translator(locale)
    context = _base_context(request) | {"title": title, "insight_id": insight_id}
    try:
        known = _event_names()
        context |= {"events": known, "event_labels": {e: _event_label(t, e) for e in known}}
        kind, raw = form_state(request)
        for x in raw.get("exclusions", []):  # a row just added: the first event that is not a step
            if not x["event"]:
                x["event"] = next((e for e in known if e not in raw["steps"]), "")
        context |= {"kind": kind, "raw": raw}
        params = validate(kind, raw, locale, known)
        result = _result(kind, params)
    except (BuilderError, DomainError, AnalyticsError) as exc:
        context.setdefault("kind", "funnel")
        context.setdefault("raw", {"steps": DEFAULT_STEPS, "filters": {}, "exclusions": []})
        message = exc.message_zh if isinstance(exc, DomainError) and locale.startswith("zh") else str(exc)
        return render(request, "insights/builder.html", context | {"error": message}, status_code=422)
    drill = principal_of(request).can("identity:read")  # the drop-off lists persons, as its API
    charts, tables = result_view(t, kind, params, result, drill=drill)
    context |= {
        "charts": charts,
        "tables": tables,
        "query": builder_query(kind, params),
        "params_json": params.model_dump_json(),
        "api_url": _api_url(kind, params),
    }
    return render(request, "insights/builder.html", context, tables=tables)


def _api_url(kind: str, params: Params) -> str:
    """The analytics API route that answers the same question (shown for developers, and tested)."""
    f = params.filters
    items: list[tuple[str, str]] = [(k, str(v)) for k, v in (("start", f.start), ("end", f.end)) if v]
    items += [("channel", c) for c in f.channels] + [("campaign", c) for c in f.campaigns]
    if isinstance(params, FunnelParams):
        items += [
            ("steps", ",".join(params.steps)),
            ("window_days", f"{params.window_days:g}"),
            ("mode", params.mode),
        ]
        items += [("exclusion", f"{x.event}:{x.from_step}:{x.to_step}") for x in params.exclusions]
        path = "funnel"
    elif isinstance(params, RetentionParams):
        items += [("unit", params.unit), ("cohort_by", params.cohort_by), ("periods", str(params.periods)),
                  ("cohorts", str(params.cohorts))]  # fmt: skip
        path = "retention"
    else:
        items += [("event", e) for e in params.events] + [("interval", params.interval)]
        path = "trends"
    if not isinstance(params, RetentionParams) and params.breakdown:
        items.append(("breakdown", params.breakdown))
    return f"/api/v1/analytics/{path}?{urlencode(items)}"


@router.get("/insights")
def builder_page(request: Request) -> Response:
    return _builder(request)


def _message(exc: DomainError, locale: str) -> str:
    return exc.message_zh if locale.startswith("zh") else exc.message


@router.post("/insights/save")
def save(request: Request, name: str = Form(""), kind: str = Form(""), params: str = Form("")) -> Response:
    locale = locale_of(request)
    try:
        body = InsightIn.model_validate(
            {"name": name.strip(), "kind": kind, "params": json.loads(params or "{}")}
        )
    except (ValidationError, ValueError) as exc:
        if isinstance(exc, ValidationError):
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            return flash_fragment(f"{where}: {validation_reason(first, locale)}", ok=False)
        return flash_fragment(f"params: {exc}", ok=False)
    try:
        with session_scope() as s:
            saved = insights.save_insight(s, **body.model_dump(), actor=principal_of(request).name)
    except DomainError as exc:
        return flash_fragment(_message(exc, locale), ok=False)
    return htmx_redirect(f"/insights/{saved['id']}")


@router.get("/insights/saved")
def saved_page(request: Request) -> Response:
    with session_scope() as s:
        items = insights.list_insights(s)
    return render(request, "insights/saved.html", _base_context(request) | {"items": items})


@router.get("/insights/{insight_id}")
def open_insight(request: Request, insight_id: Int64) -> Response:
    """A saved insight: its builder state in the URL (so editing it starts from it), and its name."""
    locale = locale_of(request)
    try:
        with session_scope() as s:
            insight = insights.get_insight(s, insight_id)
    except DomainError as exc:
        return render(
            request,
            "insights/saved.html",
            _base_context(request) | {"items": [], "error": _message(exc, locale)},
            status_code=404,
        )
    if "kind" not in request.query_params:
        query = builder_query(insight["kind"], insights.params_of(insight))
        return RedirectResponse(f"/insights/{insight_id}?{query}", status_code=303)
    return _builder(request, title=insight["name"], insight_id=insight_id)


@router.post("/insights/{insight_id}/delete")
def delete_insight(request: Request, insight_id: Int64) -> Response:
    try:
        with session_scope() as s:
            insights.delete_insight(s, insight_id)
    except DomainError as exc:
        return flash_fragment(_message(exc, locale_of(request)), ok=False)
    return htmx_redirect("/insights/saved")


@router.get("/dashboards")
def dashboards_page(request: Request) -> Response:
    with session_scope() as s:
        boards, items = insights.list_dashboards(s), insights.list_insights(s)
    names = {i["id"]: i["name"] for i in items}
    context = _base_context(request) | {
        "boards": boards,
        "items": items,
        "names": names,
        "max_items": MAX_DASHBOARD_ITEMS,
    }
    return render(request, "insights/dashboards.html", context)


@router.post("/dashboards")
def create_dashboard(request: Request, name: str = Form(""), insight: list[str] = Form([])) -> Response:  # noqa: B008
    locale = locale_of(request)
    try:
        body = DashboardIn.model_validate({"name": name.strip(), "insight_ids": insight})
        with session_scope() as s:
            board = insights.create_dashboard(s, **body.model_dump(), actor=principal_of(request).name)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        return flash_fragment(f"{where}: {validation_reason(first, locale)}", ok=False)
    except DomainError as exc:
        return flash_fragment(_message(exc, locale), ok=False)
    return htmx_redirect(f"/dashboards/{board['id']}")


@router.get("/dashboards/{dashboard_id}")
def dashboard_page(request: Request, dashboard_id: Int64) -> Response:
    locale = locale_of(request)
    t = translator(locale)
    context = _base_context(request)
    try:
        with session_scope() as s:
            board = insights.get_dashboard(s, dashboard_id)
            members = [insights.get_insight(s, i) for i in board["insight_ids"]]
    except DomainError as exc:
        return render(
            request,
            "insights/dashboard.html",
            context | {"board": None, "panels": [], "error": _message(exc, locale)},
            status_code=404,
        )
    panels, all_tables = [], []
    for n, insight in enumerate(members, 1):
        panel: dict[str, Any] = {"insight": insight, "charts": [], "tables": [], "error": None}
        try:
            params = insights.params_of(insight)
            charts, tables = result_view(
                t, insight["kind"], params, _result(insight["kind"], params), prefix=f"p{n}_"
            )
            panel |= {"charts": charts, "tables": tables, "query": builder_query(insight["kind"], params)}
            all_tables += tables
        except (ValidationError, DomainError, AnalyticsError) as exc:
            panel["error"] = _message(exc, locale) if isinstance(exc, DomainError) else str(exc)
        panels.append(panel)
    return render(
        request, "insights/dashboard.html", context | {"board": board, "panels": panels}, tables=all_tables
    )


@router.post("/dashboards/{dashboard_id}/delete")
def delete_dashboard(request: Request, dashboard_id: Int64) -> Response:
    try:
        with session_scope() as s:
            insights.delete_dashboard(s, dashboard_id)
    except DomainError as exc:
        return flash_fragment(_message(exc, locale_of(request)), ok=False)
    return htmx_redirect("/dashboards")
