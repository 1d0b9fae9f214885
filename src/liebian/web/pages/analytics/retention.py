"""The /retention page: the cohort retention heatmap by first event or by referral."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.analytics.common import AnalyticsError
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached_analytics,
    render,
)
from liebian.web.pages.analytics.common import PageError, choice, failed_page, page_start, selects

router = APIRouter(include_in_schema=False)

UNITS = ("day", "week", "month")


COHORT_BY = ("first_event", "referral")


def warm_default_view() -> None:
    """The retention heatmap as first opened (no filters, default choices)."""
    af = ConsoleFilters().to_analytics()
    cached_analytics("run_retention", af, "week", "first_event")


@router.get("/retention")
def retention_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/retention.html"
    try:
        unit = choice(request, "unit", UNITS, "week")
        cohort_by = choice(request, "cohort_by", COHORT_BY, "first_event")
        context["selects"] = selects(
            t,
            {"unit": unit, "cohort_by": cohort_by},
            ("unit", "retention.unit", [(u, f"retention.unit.{u}") for u in UNITS]),
            ("cohort_by", "retention.cohort_by", [(c, f"retention.cohort_by.{c}") for c in COHORT_BY]),
        )
        context["keep"] = {"unit": unit, "cohort_by": cohort_by}
        result = cached_analytics("run_retention", filters.to_analytics(), unit, cohort_by)
    except (FilterError, PageError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    view = retention_view(t, unit, result)
    if view is None:
        return render(request, template, context)
    chart, table = view
    context |= {"has_data": True, "charts": [chart], "tables": [table]}
    return render(request, template, context, tables=[table])


def retention_view(t, unit: str, result: dict) -> tuple[Chart, Table] | None:
    """The heatmap and the matrix table of a retention result (None: no cohort); the insight
    builder shows the same."""
    matrix = result["matrix"]
    if not matrix:
        return None
    prefix = unit[0]
    offsets = sorted({int(k[1:]) for row in matrix for k in row if k[0] == prefix and k[1:].isdigit()})
    names = [t(f"retention.offset.{unit}").replace("{n}", str(k)) for k in offsets]
    cohorts = [f"{row['cohort']} ({row['size']})" for row in matrix]
    cells = [
        [x, y, round(100 * row[f"{prefix}{k}"], 1)]
        for y, row in enumerate(matrix)
        for x, k in enumerate(offsets)
        if row.get(f"{prefix}{k}") is not None
    ]
    later = [c[2] for c in cells if c[0] > 0]
    option = {
        "animation": False,
        "tooltip": {"position": "top"},
        "grid": {"left": 150, "right": 30, "top": 10, "bottom": 80},
        "xAxis": {"type": "category", "data": names, "splitArea": {"show": True}},
        "yAxis": {"type": "category", "data": cohorts, "inverse": True, "splitArea": {"show": True}},
        "visualMap": {
            "min": 0,
            "max": max(later) if later else 100,
            "calculable": True,
            "orient": "horizontal",
            "left": "center",
            "bottom": 0,
            "inRange": {"color": ["#fff5f0", "#fcae91", "#fb6a4a", "#cb181d", "#67000d"]},
        },
        "series": [
            {
                "name": t("retention.heading"),
                "type": "heatmap",
                "data": cells,
                "label": {"show": True, "fontSize": 10},
                "emphasis": {"itemStyle": {"borderColor": "#1f2328", "borderWidth": 1}},
            }
        ],
    }
    chart = Chart("retention", option, "retention.chart", height=max(260, 34 * len(matrix) + 100))
    table = Table(
        "retention_matrix",
        [Column("cohort", "retention.cohort"), Column("size", "retention.size", "int")]
        + [Column(f"{prefix}{k}", name, "pct") for k, name in zip(offsets, names, strict=True)],
        matrix,
        title="retention.table",
    )
    return chart, table
