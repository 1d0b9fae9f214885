"""The /scorecard page: a period compared with the one before, and the sector benchmarks."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from liebian.web.console import (
    Chart,
    Column,
    ConsoleFilters,
    FilterError,
    Table,
    cached_analytics,
    format_cell,
    render,
    warmer,
)
from liebian.web.i18n import register
from liebian.web.pages.analytics.common import PageError, choice, failed_page, page_start, selects

router = APIRouter(include_in_schema=False)

register(
    {
        # scorecard and benchmarks
        "score.heading": ("综合评分卡与行业基准", "Scorecard and sector benchmarks"),
        "score.stage": ("业务阶段", "Business stage"),
        "score.stage.launch": ("启动期", "Launch"),
        "score.stage.growth": ("成长期", "Growth"),
        "score.stage.mature": ("成熟期", "Mature"),
        "score.sector": ("行业", "Sector"),
        "score.period": ("评估区间", "Period"),
        "score.previous": ("对比上一期", "Compared with"),
        "score.default_period": (
            "未选择日期：使用最近 30 天的数据。",
            "No dates chosen: the last 30 days of data are used.",
        ),
        "score.total": ("综合得分（1–10）", "Score (1–10)"),
        "score.gauge": ("综合得分", "Overall score"),
        "score.first_level": ("一级指标得分", "First-level scores"),
        "score.weights": ("维度权重", "Dimension weights"),
        "score.indicators": ("二级指标", "Indicators"),
        "score.indicator": ("指标", "Indicator"),
        "score.parent": ("一级指标", "First-level"),
        "score.dimension": ("维度", "Dimension"),
        "score.value": ("数值", "Value"),
        "score.score": ("得分", "Score"),
        "score.weight": ("权重", "Weight"),
        "score.contribution": ("贡献", "Contribution"),
        "score.dim.scale": ("规模", "Scale"),
        "score.dim.activity": ("活跃", "Activity"),
        "score.dim.conversion": ("转化", "Conversion"),
        "score.first.user_growth": ("用户增长", "User growth"),
        "score.first.brand_voice": ("品牌声量", "Brand voice"),
        "score.first.aov_lift": ("客单价提升", "AOV lift"),
        "score.first.repurchase_change": ("复购变化", "Repurchase change"),
        "score.ind.new_user_growth": ("新增用户环比", "New-user growth"),
        "score.ind.referred_share_of_new": ("裂变新客占比", "Referred share of new users"),
        "score.ind.k_factor": ("K 因子", "K-factor"),
        "score.ind.referral_rate": ("推荐率", "Referral rate"),
        "score.ind.reach_growth": ("触达人数环比", "Reach growth"),
        "score.ind.shares_per_active": ("人均分享", "Shares per active user"),
        "score.ind.participation_rate": ("参与率", "Participation rate"),
        "score.ind.invites_per_participant": ("人均邀请", "Invites per participant"),
        "score.ind.retention_d7": ("7 日留存", "D7 retention"),
        "score.ind.dau_mau": ("DAU/MAU", "DAU/MAU"),
        "score.ind.aov_change": ("客单价环比", "AOV change"),
        "score.ind.conversion_rate": ("转化率", "Conversion rate"),
        "score.ind.invite_conversion": ("邀请转化率", "Invite conversion"),
        "score.ind.repurchase_rate": ("复购率", "Repurchase rate"),
        "score.ind.repurchase_change": ("复购率变化（百分点）", "Repurchase change (points)"),
        "bench.chart": ("与行业基准对比（基准 = 100%）", "Against the sector reference (reference = 100 %)"),
        "bench.table": ("行业基准对比", "Sector benchmark comparison"),
        "bench.indicator": ("指标", "Indicator"),
        "bench.value": ("本品牌", "This brand"),
        "bench.reference": ("行业基准", "Reference"),
        "bench.ratio": ("相对基准", "Of reference"),
        "bench.verdict": ("结论", "Verdict"),
        "bench.verdict.above": ("高于基准", "above"),
        "bench.verdict.on par": ("持平", "on par"),
        "bench.verdict.below": ("低于基准", "below"),
        "bench.verdict.n/a": ("无数据", "n/a"),
        "bench.note": (
            "默认基准值仅为示意（非统计数据），请替换为贵司的参考值后再据此评判。",
            "The default references are placeholders, not statistics: replace them with your own before judging by them.",
        ),
        "bench.sector.food_service": ("餐饮", "Food service"),
        "bench.sector.education": ("教育", "Education"),
        "bench.sector.ecommerce": ("电商", "E-commerce"),
        "bench.sector.beauty": ("美妆", "Beauty"),
        "bench.sector.fmcg": ("快消", "FMCG"),
        "bench.sector.maternal_baby": ("母婴", "Maternal & baby"),
    }
)


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


# Display kind of an indicator's value (the scorecard's and the benchmarks'); the rest are rates.
VALUE_KINDS = {"k_factor": "float", "shares_per_active": "float", "invites_per_participant": "float",
               "ltv_fen": "fen"}  # fmt: skip


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


@warmer
def _warm_default_view() -> None:
    """The scorecard as first opened (no filters, the default stage)."""
    period = _scorecard_period(ConsoleFilters().to_analytics())
    if period is not None:
        cached_analytics("run_scorecard", period, "mature")


@router.get("/scorecard")
def scorecard_page(request: Request) -> Response:
    from liebian.analytics import benchmarks as bench
    from liebian.analytics.common import AnalyticsError

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
                "label": t(f"score.ind.{r['key']}"),
                "parent": t(f"score.first.{r['parent']}"),
                "dimension": t(f"score.dim.{r['dimension']}"),
                "kind": VALUE_KINDS.get(r["key"], "pct"),
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
              "kind": VALUE_KINDS.get(r["indicator"], "pct")}
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
