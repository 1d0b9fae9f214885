"""The /scorecard page: a period compared with the one before, and the sector benchmarks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.analytics import benchmarks as bench
from liebian.analytics.catalogue import display_kind
from liebian.analytics.common import AnalyticsError
from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached_analytics,
    format_cell,
    render,
)
from liebian.web.pages.analytics.common import PageError, choice, failed_page, page_start, selects

router = APIRouter(include_in_schema=False)

STAGES = ("mature", "growth", "launch")


SCORECARD_DAYS = 30  # the scorecard's period when the filters give none: the last 30 days of data


class RowKindTable(Table):
    """A table whose `row_kinds` columns take their display kind from the row (`kind`): one column
    of mixed indicators (rates, ratios, money) shown each in its own way; exports stay raw."""

    row_kinds: tuple[str, ...] = ("value", "reference")

    def cells(self, row: dict[str, Any], locale: str) -> list[str]:
        return [
            format_cell(row.get(c.key), row["kind"] if c.key in self.row_kinds else c.kind, locale)
            for c in self.columns
        ]


def _score_charts(t, card: dict, comparison: list[dict]) -> list[Chart]:
    gauge = {
        "animation": False,
        "series": [
            {
                "name": t("score.gauge"),
                "type": "gauge",
                "min": 1,
                "max": 10,
                "splitNumber": 9,
                "progress": {"show": True, "width": 14, "itemStyle": {"color": "#b3102a"}},
                "axisLine": {"lineStyle": {"width": 14}},
                "axisLabel": {"color": "#4d5560"},
                "radius": "95%",
                "center": ["50%", "58%"],
                "title": {"offsetCenter": [0, "78%"], "color": "#4d5560"},
                "detail": {"valueAnimation": False, "formatter": "{value}", "color": "#1f2328", "fontSize": 30,
                           "offsetCenter": [0, "40%"]},
                "data": [{"value": round(card["score"], 2) if card["score"] is not None else 1,
                          "name": t("score.total")}],
            }
        ],
    }  # fmt: skip
    first = card["first_level"]
    bars = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 110, "right": 30, "top": 10, "bottom": 30},
        "xAxis": {"type": "value", "min": 0, "max": 10},
        "yAxis": {"type": "category", "data": [t(f"score.first.{r['key']}") for r in first], "inverse": True},
        "series": [
            {
                "name": t("score.score"),
                "type": "bar",
                "itemStyle": {"color": "#0a58ca"},
                "label": {"show": True, "position": "right", "color": "#1f2328"},
                "data": [None if r["score"] is None else round(r["score"], 2) for r in first],
            }
        ],
    }
    bench = {
        "animation": False,
        "tooltip": {"trigger": "axis"},
        "grid": {"left": 110, "right": 40, "top": 10, "bottom": 30},
        "xAxis": {"type": "value", "name": "%"},
        "yAxis": {"type": "category", "data": [t(f"kpi.{r['indicator']}") for r in comparison], "inverse": True},
        "series": [
            {
                "name": t("bench.ratio"),
                "type": "bar",
                "data": [
                    {"value": None if r["ratio"] is None else round(100 * r["ratio"], 1),
                     "itemStyle": {"color": {"above": "#116329", "below": "#b3102a"}.get(r["verdict"], "#6e7781")}}
                    for r in comparison
                ],
                "label": {"show": True, "position": "right", "color": "#1f2328"},
                "markLine": {"symbol": "none", "data": [{"xAxis": 100}], "lineStyle": {"color": "#1f2328"}},
            }
        ],
    }  # fmt: skip
    return [
        Chart("score_gauge", gauge, "score.gauge", height=280),
        Chart("score_first_level", bars, "score.first_level", height=280),
        Chart("benchmarks", bench, "bench.chart", height=300),
    ]


def _scorecard_period(af: Any) -> Any:
    """The scorecard compares a period with the one before: without dates, the last 30 days of data
    (None when there is no data)."""
    if af.start is not None and af.end is not None:
        return af
    span = cached_analytics("run_data_span", af)
    if span is None:
        return None
    end = af.end or span[1]
    return replace(af, start=af.start or max(span[0], end - timedelta(days=SCORECARD_DAYS - 1)), end=end)


def warm_default_view() -> None:
    """The scorecard as first opened (no filters, the default stage)."""
    period = _scorecard_period(ConsoleFilters().to_analytics())
    if period is not None:
        cached_analytics("run_scorecard", period, "mature")


@router.get("/scorecard")
def scorecard_page(request: Request) -> Response:

    t, filters, context = page_start(request)
    template = "analytics/scorecard.html"
    sectors = tuple(bench.DEFAULT_REFERENCE)
    try:
        stage = choice(request, "stage", STAGES, "mature")
        sector = choice(request, "sector", sectors, "ecommerce" if "ecommerce" in sectors else sectors[0])
        context["selects"] = selects(
            t,
            {"stage": stage, "sector": sector},
            ("stage", "score.stage", [(s, f"score.stage.{s}") for s in STAGES]),
            ("sector", "score.sector", [(s, f"bench.sector.{s}") for s in sectors]),
        )
        context["keep"] = {"stage": stage, "sector": sector}
        af = filters.to_analytics()
        context["default_period"] = af.start is None or af.end is None
        af = _scorecard_period(af)
        if af is None:
            return render(request, template, context)
        card = cached_analytics("run_scorecard", af, stage)
        comparison = bench.compare(card["kpis"], sector)
    except (FilterError, PageError, AnalyticsError) as exc:
        return failed_page(request, template, context, exc)
    indicators = RowKindTable(
        "indicators",
        [
            Column("label", "score.indicator"),
            Column("parent", "score.parent"),
            Column("dimension", "score.dimension"),
            Column("value", "score.value", "float"),
            Column("score", "score.score", "float"),
            Column("weight", "score.weight", "pct"),
            Column("contribution", "score.contribution", "float"),
        ],
        [
            r
            | {
                "label": t(f"kpi.{r['key']}"),
                "parent": t(f"score.first.{r['parent']}"),
                "dimension": t(f"score.dim.{r['dimension']}"),
                "kind": display_kind(r["key"]),
            }
            for r in card["indicators"]
        ],  # fmt: skip
        title="score.indicators",
    )
    benchmarks = RowKindTable(
        "benchmarks",
        [
            Column("label", "bench.indicator"),
            Column("value", "bench.value", "float"),
            Column("reference", "bench.reference", "float"),
            Column("ratio", "bench.ratio", "pct"),
            Column("verdict_label", "bench.verdict"),
        ],
        [r | {"label": t(f"kpi.{r['indicator']}"), "verdict_label": t(f"bench.verdict.{r['verdict']}"),
              "kind": display_kind(r["indicator"])}
         for r in comparison],
        title="bench.table",
    )  # fmt: skip
    total_weight = sum(card["weights"].values())
    context |= {
        "has_data": True,
        "card": card,
        "period": (af.start.isoformat(), af.end.isoformat()),
        "weights": [(t(f"score.dim.{d}"), w / total_weight) for d, w in card["weights"].items()],
        "charts": _score_charts(t, card, comparison),
        "tables": [indicators, benchmarks],
    }
    return render(request, template, context, tables=[indicators, benchmarks])
