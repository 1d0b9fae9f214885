"""The /funnel page (the fission funnel, by step, with a breakdown) and its drop-off drill-down /funnel/dropped."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.analytics import funnel as funnel_mod
from liebian.analytics.common import AnalyticsError, MetricConfig, zone_offset_seconds
from liebian.auth.deps import principal_of
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached_analytics,
    render,
)
from liebian.web.pages.analytics.common import PALETTE, PageError, choice, failed_page, page_start, selects

router = APIRouter(include_in_schema=False)

DROPPED_SHOWN = 100  # dropped persons listed on the page; the export has them all


BREAKDOWNS = ("channel", "campaign")


def _to_local():
    """A function turning a warehouse time (naive UTC) into local time of the display zone (the
    zone of the analytics' days); the zone's offset is looked up once."""

    shift = timedelta(seconds=zone_offset_seconds(MetricConfig().zone))
    return lambda ts: ts + shift if isinstance(ts, datetime) else ts


def _step_label(t, step: dict) -> str:
    key = f"funnel.step.{step['event']}"
    translated = t(key)
    return translated if translated != key else step["name"]


def _dropped_link(request: Request, filters: ConsoleFilters, step: int) -> str | None:
    """The drill-down to the persons who dropped at `step`: it lists persons, so (like its API) it
    needs identity:read; without it the funnel shows the counts only."""

    if step < 2 or not principal_of(request).can("identity:read"):
        return None
    return f"/funnel/dropped{filters.query(step=str(step))}"


def _funnel_chart(t, steps: list[dict], links: list[str | None]) -> Chart:
    data = [{"name": _step_label(t, s), "value": s["persons"]} for s in steps]
    option = {
        "animation": False,
        "tooltip": {"trigger": "item", "formatter": "{b}: {c}"},
        "color": PALETTE,
        "series": [
            {
                "name": t("funnel.heading"),
                "type": "funnel",
                "sort": "none",  # the steps' order, not by size
                "left": "15%",
                "width": "70%",
                "top": 20,
                "bottom": 20,
                "minSize": "12%",
                "gap": 3,
                "label": {"show": True, "position": "inside", "formatter": "{b}\n{c}", "color": "#fff"},
                "data": data,
            }
        ],
        "liebianLinks": [links],
    }
    return Chart("funnel", option, "funnel.chart" if any(links) else "funnel.heading", height=300)


def _breakdown_chart(t, rows: list[dict]) -> Chart:
    groups: dict[str, list[dict]] = {}
    for r in rows:
        groups.setdefault(str(r["breakdown"]), []).append(r)
    names = [_step_label(t, r) for r in next(iter(groups.values()))] if groups else []
    option = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 0, "type": "scroll"},
        "color": PALETTE,
        "grid": {"left": 50, "right": 20, "top": 40, "bottom": 30},
        "xAxis": {"type": "category", "data": names},
        "yAxis": {"type": "value", "name": "%"},
        "series": [
            {
                "name": t(f"channel.{g}") if t(f"channel.{g}") != f"channel.{g}" else g,
                "type": "bar",
                "data": [round(100 * (r["conversion_from_start"] or 0), 2) for r in sub],
            }
            for g, sub in groups.items()
        ],
    }
    return Chart("funnel_breakdown", option, "funnel.breakdown_chart", height=320)


def _funnel_columns(breakdown: bool) -> list[Column]:
    return ([Column("breakdown", "funnel.group")] if breakdown else []) + [
        Column("step", "funnel.step", "int"),
        Column("label", "funnel.name"),
        Column("event", "funnel.event"),
        Column("persons", "funnel.persons", "int"),
        Column("conversion_from_prev", "funnel.conversion_from_prev", "pct"),
        Column("conversion_from_start", "funnel.conversion_from_start", "pct"),
        Column("dropped", "funnel.dropped", "int"),
        Column("drop_off_rate", "funnel.drop_off_rate", "pct"),
        Column("median_hours_from_prev", "funnel.median_hours", "float"),
    ]


def _funnel_rows(t, steps: list[dict]) -> list[dict]:
    return [
        s | {"label": _step_label(t, s),
             "median_hours_from_prev": None if s["median_seconds_from_prev"] is None
             else s["median_seconds_from_prev"] / 3600}
        for s in steps
    ]  # fmt: skip


def warm_default_view() -> None:
    """The funnel and its drop-off as first opened (no filters, default choices)."""
    af = ConsoleFilters().to_analytics()
    cached_analytics("run_funnel", af)
    cached_analytics("run_dropped", af, 2)


@router.get("/funnel")
def funnel_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/funnel.html"
    try:
        breakdown = choice(request, "breakdown", ("", *BREAKDOWNS), "")
        context["selects"] = selects(
            t,
            {"breakdown": breakdown},
            ("breakdown", "funnel.breakdown",
             [("", "funnel.breakdown_none")] + [(b, f"funnel.breakdown.{b}") for b in BREAKDOWNS]),
        )  # fmt: skip
        context["keep"] = {"breakdown": breakdown} if breakdown else {}
        af = filters.to_analytics()
        result = cached_analytics("run_funnel", af)
        by_group = cached_analytics("run_funnel", af, breakdown=breakdown) if breakdown else None
    except (FilterError, PageError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    steps = result["steps"]
    if not steps or not steps[0]["persons"]:
        return render(request, template, context)
    links = [_dropped_link(request, filters, s["step"]) for s in steps]
    overall = Table(
        "funnel_steps",
        _funnel_columns(False),
        _funnel_rows(t, steps),
        title="funnel.steps" if any(links) else "funnel.steps_plain",
        link=lambda row: links[row["step"] - 1],
        link_column="dropped",
    )
    tables, charts = [overall], [_funnel_chart(t, steps, links)]
    if by_group is not None:
        tables.append(
            Table(
                "funnel_by_group",
                _funnel_columns(True),
                _funnel_rows(t, by_group["steps"]),
                "funnel.breakdown_table",
            )
        )
        charts.append(_breakdown_chart(t, by_group["steps"]))
    context |= {
        "has_data": True,
        "charts": charts,
        "tables": tables,
        "entered": steps[0]["persons"],
        "converted": steps[-1]["persons"],
        "conversion": steps[-1]["conversion_from_start"],
    }
    return render(request, template, context, tables=tables)


@router.get("/funnel/dropped")
def dropped_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/dropped.html"
    steps = [{"step": i, "name": s.name, "event": s.event} for i, s in enumerate(funnel_mod.DEFAULT_STEPS, 1)]
    try:
        raw = request.query_params.get("step", "2")
        try:
            step = int(raw)
        except ValueError:
            raise PageError(f"step: {raw!r} is not a whole number") from None
        if not 2 <= step <= len(steps):
            raise PageError(f"step: must be between 2 and {len(steps)}; got {step}")
        context |= {
            "step": step,
            "steps": [
                (s["step"], f"{_step_label(t, p)} → {_step_label(t, s)}")
                for p, s in zip(steps, steps[1:], strict=False)
            ],
            "from_label": _step_label(t, steps[step - 2]),
            "to_label": _step_label(t, steps[step - 1]),
            "keep": {"step": str(step)},
        }
        rows = cached_analytics("run_dropped", filters.to_analytics(), step)
    except (FilterError, PageError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    last, local = context["from_label"], _to_local()
    table = Table(
        "dropped",
        [
            Column("person_id", "dropped.person_id"),
            Column("entered_at", "dropped.entered_at", "datetime"),
            Column("last_step", "dropped.last_step"),
            Column("last_step_at", "dropped.last_step_at", "datetime"),
        ],
        [
            {
                "person_id": str(r["person_id"]),
                "entered_at": local(r["entered_at"]),
                "last_step": last,
                "last_step_at": local(r["last_step_ts"]),
            }
            for r in rows
        ],  # fmt: skip
        title="dropped.table",
    )
    context |= {"has_data": True, "count": len(rows), "table": table, "shown": DROPPED_SHOWN}
    return render(request, template, context, tables=[table])
