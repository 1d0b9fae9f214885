"""The growth-insight pages after the overview: the fission funnel with its drop-off drill-down, the
retention heatmap, the referral graph, the channel radar, and the scorecard with the sector benchmarks.

Every figure comes from the analytics service (liebian/analytics/service.py); this module only turns
its results into tables (exportable) and ECharts options, and checks the page's own selectors.
"""

from __future__ import annotations

import math
from dataclasses import replace
from datetime import datetime, timedelta
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
    filter_options,
    format_cell,
    render,
    warmer,
)
from liebian.web.i18n import locale_of, register, translator

router = APIRouter(include_in_schema=False)

GRAPH_NODES = 300  # persons drawn in the referral graph (the largest whole trees that fit)
DROPPED_SHOWN = 100  # dropped persons listed on the page; the export has them all
TOP_SPREADERS = 20
BREAKDOWNS = ("channel", "campaign")
UNITS = ("day", "week", "month")
COHORT_BY = ("first_event", "referral")
STAGES = ("mature", "growth", "launch")
SCORECARD_DAYS = 30  # the scorecard's period when the filters give none: the last 30 days of data
PALETTE = ["#b3102a", "#0a58ca", "#116329", "#8250df", "#bc4c00", "#1b7c83", "#6e7781", "#cf222e"]

register(
    {
        "analytics.apply": ("更新", "Update"),
        "analytics.options": ("本页选项", "Page options"),
        "analytics.empty": ("所选范围内没有数据。", "No data in the chosen range."),
        # funnel
        "funnel.heading": ("裂变漏斗", "Fission funnel"),
        "funnel.chart": (
            "漏斗（点击某一步查看在该步流失的人）",
            "Funnel (click a step to see who dropped there)",
        ),
        "funnel.breakdown": ("拆分维度", "Breakdown"),
        "funnel.breakdown_none": ("不拆分", "None"),
        "funnel.breakdown.channel": ("按渠道", "By channel"),
        "funnel.breakdown.campaign": ("按活动", "By campaign"),
        "funnel.breakdown_chart": ("各分组的累计转化率（%）", "Conversion from the first step by group (%)"),
        "funnel.steps": ("漏斗各步骤（点击流失人数下钻）", "Funnel steps (click a drop-off to drill down)"),
        "funnel.steps_plain": ("漏斗各步骤", "Funnel steps"),
        "funnel.breakdown_table": ("分组漏斗", "Funnel by group"),
        "funnel.step": ("步骤", "Step"),
        "funnel.name": ("名称", "Name"),
        "funnel.event": ("事件", "Event"),
        "funnel.persons": ("人数", "Persons"),
        "funnel.conversion_from_prev": ("较上一步转化", "From previous step"),
        "funnel.conversion_from_start": ("累计转化", "From first step"),
        "funnel.dropped": ("流失人数", "Dropped"),
        "funnel.drop_off_rate": ("流失率", "Drop-off rate"),
        "funnel.median_hours": ("较上一步中位耗时（小时）", "Median hours from previous step"),
        "funnel.group": ("分组", "Group"),
        "funnel.window": ("转化窗口：进入后 14 天内。", "Conversion window: 14 days from entry."),
        "funnel.total": ("进入漏斗", "Entered the funnel"),
        "funnel.converted": ("完成最后一步", "Reached the last step"),
        "funnel.step.exposure": ("触达", "Reach"),
        "funnel.step.page_view": ("兴趣", "Interest"),
        "funnel.step.join_campaign": ("参与", "Participate"),
        "funnel.step.order_paid": ("转化", "Convert"),
        # drop-off drill-down
        "dropped.heading": ("漏斗流失人群", "Who dropped out of the funnel"),
        "dropped.summary": (
            "到达了上一步但没有到达这一步的人数：",
            "Persons who reached the previous step but not this one:",
        ),
        "dropped.between": ("流失环节", "Drop-off"),
        "dropped.table": ("流失的人（匿名人员 ID）", "Persons who dropped (pseudonymous person ids)"),
        "dropped.person_id": ("人员 ID", "Person id"),
        "dropped.entered_at": ("进入漏斗时间", "Entered the funnel"),
        "dropped.last_step": ("最后到达的步骤", "Last step reached"),
        "dropped.last_step_at": ("到达时间", "Reached at"),
        "dropped.back": ("返回漏斗", "Back to the funnel"),
        "dropped.step": ("步骤", "Step"),
        "dropped.times": ("时间为展示时区的当地时间。", "Times are local times of the display zone."),
        # retention
        "retention.heading": ("留存热力图", "Retention heatmap"),
        "retention.unit": ("同期群粒度", "Cohort by"),
        "retention.unit.day": ("按天", "Day"),
        "retention.unit.week": ("按周", "Week"),
        "retention.unit.month": ("按月", "Month"),
        "retention.cohort_by": ("同期群起点", "Cohort start"),
        "retention.cohort_by.first_event": ("首次出现", "First event"),
        "retention.cohort_by.referral": ("被邀请加入", "Joined through a referral"),
        "retention.chart": (
            "各同期群在之后各期的留存率（%）",
            "Share of each cohort active in later periods (%)",
        ),
        "retention.table": ("留存矩阵", "Retention matrix"),
        "retention.cohort": ("同期群", "Cohort"),
        "retention.size": ("人数", "Size"),
        "retention.offset.day": ("第{n}天", "Day {n}"),
        "retention.offset.week": ("第{n}周", "Week {n}"),
        "retention.offset.month": ("第{n}月", "Month {n}"),
        "retention.note": (
            "第 0 期为同期群本身（100%）；尚未结束的期显示为“—”。",
            "Period 0 is the cohort itself (100 %); periods not over yet show “—”.",
        ),
        # referrals
        "referrals.heading": ("裂变关系图", "Referral graph"),
        "referrals.graph": ("最大的几棵邀请树（力导向布局）", "The largest referral trees (force layout)"),
        "referrals.cap": (
            "为保证速度，关系图只画规模最大的完整邀请树，最多 {n} 人；全部数据见下方表格和导出。",
            "For speed the graph draws only the largest whole trees, at most {n} persons; the tables and exports cover everyone.",
        ),
        "referrals.truncated": ("（已截断）", "(truncated)"),
        "referrals.spreaders": ("传播最广的人", "Top spreaders"),
        "referrals.generations": ("按代统计", "By generation"),
        "referrals.person_id": ("人员 ID", "Person id"),
        "referrals.generation": ("代", "Generation"),
        "referrals.direct_invitees": ("直接邀请", "Direct invitees"),
        "referrals.descendants": ("下游总人数", "Descendants"),
        "referrals.depth_below": ("下游层数", "Depth below"),
        "referrals.invitees_who_bought": ("下单的直接被邀请人", "Invitees who bought"),
        "referrals.persons": ("人数", "Persons"),
        "referrals.share_of_referred": ("占被邀请人", "Share of referred"),
        "referrals.inviters": ("发起邀请人数", "Inviters"),
        "referrals.spread_rate": ("传播率", "Spread rate"),
        "referrals.invitees": ("邀请人数", "Invitees"),
        "referrals.edges": ("邀请关系", "Referral edges"),
        "referrals.roots": ("邀请树", "Trees"),
        "referrals.max_depth": ("最大层数", "Deepest generation"),
        "referrals.referred": ("被邀请人", "Referred persons"),
        "referrals.gen0": ("第 0 代（发起人）", "Generation 0 (roots)"),
        "referrals.gen": ("第 {n} 代", "Generation {n}"),
        "referrals.gen_more": ("第 {n} 代及以后", "Generation {n}+"),
        # channels
        "channels.heading": ("渠道效能雷达", "Channel radar"),
        "channels.radar": ("各渠道指标（以最佳渠道为 1）", "Channel indicators (best channel = 1)"),
        "channels.power": ("裂变力 vs 转化力", "Fission power vs conversion power"),
        "channels.table": ("渠道效能", "Channel efficacy"),
        "channels.fission_power": ("裂变力", "Fission power"),
        "channels.conversion_power": ("转化力", "Conversion power"),
        "channels.note": (
            "裂变力 = 邀请次数与 K 因子（各以最佳渠道归一）的平均；转化力 = 转化率、客单价、7 日留存的平均。",
            "Fission power = mean of invites and K-factor (each relative to the best channel); conversion power = mean of conversion, AOV and D7 retention.",
        ),
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


# --- shared plumbing ----------------------------------------------------------------------------


class PageError(ValueError):
    """A page option (not a filter) that is not valid; shown on the page with status 422."""


def _choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (request.query_params.get(name) or default).strip()
    if value not in allowed:
        raise PageError(f"{name}: {value!r} is not one of {', '.join(a for a in allowed if a)}")
    return value


def _start(request: Request) -> tuple[Any, ConsoleFilters, dict[str, Any]]:
    """(translator, filters, base context) of an analytics page."""
    filters = ConsoleFilters.from_request(request)
    context: dict[str, Any] = {
        "filters": filters,
        "options": filter_options(),
        "error": None,
        "has_data": False,
    }
    return translator(locale_of(request)), filters, context


def _failed(request: Request, template: str, context: dict, exc: Exception) -> Response:
    return render(request, template, context | {"error": str(exc)}, status_code=422)


def _selects(t, current: dict[str, str], *specs: tuple[str, str, list[tuple[str, str]]]) -> list[dict]:
    """The page's own selectors (name, label key, [(value, label key)]) for analytics/_options.html."""
    return [
        {"name": name, "label": t(label), "current": current.get(name, ""),
         "choices": [(value, t(key)) for value, key in choices]}
        for name, label, choices in specs
    ]  # fmt: skip


def _to_local():
    """A function turning a warehouse time (naive UTC) into local time of the display zone (the
    zone of the analytics' days); the zone's offset is looked up once."""
    from liebian.analytics.common import MetricConfig, zone_offset_seconds

    shift = timedelta(seconds=zone_offset_seconds(MetricConfig().zone))
    return lambda ts: ts + shift if isinstance(ts, datetime) else ts


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


def _step_label(t, step: dict) -> str:
    key = f"funnel.step.{step['event']}"
    translated = t(key)
    return translated if translated != key else step["name"]


# --- funnel ---------------------------------------------------------------------------------------


def _dropped_link(request: Request, filters: ConsoleFilters, step: int) -> str | None:
    """The drill-down to the persons who dropped at `step`: it lists persons, so (like its API) it
    needs identity:read; without it the funnel shows the counts only."""
    from liebian.auth.deps import principal_of

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


@router.get("/funnel")
def funnel_page(request: Request) -> Response:
    from liebian.analytics.common import AnalyticsError

    t, filters, context = _start(request)
    template = "analytics/funnel.html"
    try:
        breakdown = _choice(request, "breakdown", ("", *BREAKDOWNS), "")
        context["selects"] = _selects(
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
        return _failed(request, template, context, exc)
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
    from liebian.analytics import funnel as funnel_mod
    from liebian.analytics.common import AnalyticsError

    t, filters, context = _start(request)
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
        return _failed(request, template, context, exc)
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


# --- retention ------------------------------------------------------------------------------------


@router.get("/retention")
def retention_page(request: Request) -> Response:
    from liebian.analytics.common import AnalyticsError

    t, filters, context = _start(request)
    template = "analytics/retention.html"
    try:
        unit = _choice(request, "unit", UNITS, "week")
        cohort_by = _choice(request, "cohort_by", COHORT_BY, "first_event")
        context["selects"] = _selects(
            t,
            {"unit": unit, "cohort_by": cohort_by},
            ("unit", "retention.unit", [(u, f"retention.unit.{u}") for u in UNITS]),
            ("cohort_by", "retention.cohort_by", [(c, f"retention.cohort_by.{c}") for c in COHORT_BY]),
        )
        context["keep"] = {"unit": unit, "cohort_by": cohort_by}
        result = cached_analytics("run_retention", filters.to_analytics(), unit, cohort_by)
    except (FilterError, PageError, AnalyticsError) as exc:
        return _failed(request, template, context, exc)
    matrix = result["matrix"]
    if not matrix:
        return render(request, template, context)
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
    context |= {"has_data": True, "charts": [chart], "tables": [table]}
    return render(request, template, context, tables=[table])


# --- referral graph -------------------------------------------------------------------------------


def _graph_chart(t, graph: dict) -> Chart:
    gens = 4  # generation 0, 1, 2 and 3+ as legend categories
    categories = [t("referrals.gen0")] + [
        t("referrals.gen").replace("{n}", str(g)) for g in range(1, gens - 1)
    ]
    categories.append(t("referrals.gen_more").replace("{n}", str(gens - 1)))
    nodes = [
        {
            "id": str(n["id"]),
            "name": str(n["id"]),
            "category": min(n["generation"], gens - 1),
            "symbolSize": round(min(40.0, 5 + 2.5 * math.sqrt(n["descendants"])), 1),
            "value": n["descendants"],
        }
        for n in graph["nodes"]
    ]
    links = [{"source": str(e["source"]), "target": str(e["target"])} for e in graph["edges"]]
    option = {
        "animation": False,
        "tooltip": {"formatter": "{b}: {c}"},
        "legend": {"top": 0, "data": categories},
        "color": PALETTE,
        "series": [
            {
                "name": t("referrals.heading"),
                "type": "graph",
                "layout": "force",
                "roam": True,
                "data": nodes,
                "links": links,
                "categories": [{"name": c} for c in categories],
                "top": 40,
                "force": {"repulsion": 40, "gravity": 0.08, "edgeLength": 12, "layoutAnimation": True},
                "lineStyle": {"color": "#8c959f", "width": 0.8},
                "emphasis": {"focus": "adjacency"},
            }
        ],
    }
    return Chart("referral_graph", option, "referrals.graph", height=520)


@router.get("/referrals")
def referrals_page(request: Request) -> Response:
    from liebian.analytics.common import AnalyticsError

    t, filters, context = _start(request)
    template = "analytics/referrals.html"
    context["cap_note"] = t("referrals.cap").replace("{n}", str(GRAPH_NODES))
    try:
        tree = cached_analytics("run_referral_tree", filters.to_analytics(), TOP_SPREADERS, GRAPH_NODES)
    except (FilterError, AnalyticsError) as exc:
        return _failed(request, template, context, exc)
    if not tree["summary"].get("edges"):
        return render(request, template, context)
    spreaders = Table(
        "top_spreaders",
        [
            Column("person_id", "referrals.person_id"),
            Column("generation", "referrals.generation", "int"),
            Column("direct_invitees", "referrals.direct_invitees", "int"),
            Column("descendants", "referrals.descendants", "int"),
            Column("depth_below", "referrals.depth_below", "int"),
            Column("invitees_who_bought", "referrals.invitees_who_bought", "int"),
        ],
        [r | {"person_id": str(r["person_id"])} for r in tree["top_spreaders"]],
        title="referrals.spreaders",
    )
    generations = Table(
        "generations",
        [
            Column("generation", "referrals.generation", "int"),
            Column("persons", "referrals.persons", "int"),
            Column("share_of_referred", "referrals.share_of_referred", "pct"),
            Column("inviters", "referrals.inviters", "int"),
            Column("spread_rate", "referrals.spread_rate", "pct"),
            Column("invitees", "referrals.invitees", "int"),
        ],
        tree["generations"],
        title="referrals.generations",
    )
    context |= {
        "has_data": True,
        "summary": tree["summary"],
        "graph_persons": len(tree["graph"]["nodes"]),
        "charts": [_graph_chart(t, tree["graph"])],
        "tables": [spreaders, generations],
    }
    return render(request, template, context, tables=[spreaders, generations])


# --- channel radar --------------------------------------------------------------------------------

RADAR_AXES = ("invites_sent", "k_factor", "conversion_rate", "aov_fen", "retention_d7")


def _channel_name(t, channel: str) -> str:
    key = f"channel.{channel}"
    return t(key) if t(key) != key else channel


@router.get("/channels")
def channels_page(request: Request) -> Response:
    from liebian.analytics.common import AnalyticsError

    t, filters, context = _start(request)
    template = "analytics/channels.html"
    try:
        rows = cached_analytics("run_channels", filters.to_analytics())
    except (FilterError, AnalyticsError) as exc:
        return _failed(request, template, context, exc)
    if not rows:
        return render(request, template, context)
    names = [_channel_name(t, r["channel"]) for r in rows]
    radar = {
        "animation": False,
        "tooltip": {"trigger": "item"},
        "legend": {"top": 0, "type": "scroll", "data": names},
        "color": PALETTE,
        "radar": {
            "indicator": [{"name": t(f"kpi.{a}"), "max": 1} for a in RADAR_AXES],
            "center": ["50%", "56%"],
            "radius": "65%",
        },
        "series": [
            {
                "name": t("channels.radar"),
                "type": "radar",
                "data": [
                    {"name": n, "value": [round(r[f"{a}_norm"], 4) for a in RADAR_AXES]}
                    for n, r in zip(names, rows, strict=True)
                ],
            }
        ],
    }
    power = {
        "animation": False,
        "tooltip": {"trigger": "item", "formatter": "{a}: {c}"},
        "color": PALETTE,
        "grid": {"left": 60, "right": 30, "top": 20, "bottom": 50},
        "xAxis": {"type": "value", "name": t("channels.fission_power"), "nameLocation": "middle", "nameGap": 28,
                  "min": 0, "max": 1},
        "yAxis": {"type": "value", "name": t("channels.conversion_power"), "nameLocation": "middle", "nameGap": 40,
                  "min": 0, "max": 1},
        "series": [
            {
                "name": n,
                "type": "scatter",
                "symbolSize": 16,
                "label": {"show": True, "position": "right", "formatter": "{a}", "color": "#1f2328"},
                "data": [[round(r["fission_power"], 4), round(r["conversion_power"], 4)]],
            }
            for n, r in zip(names, rows, strict=True)
        ],
        "liebianLinks": [["/" + filters.query(channel=r["channel"])] for r in rows],
    }  # fmt: skip
    table = Table(
        "channels",
        [Column("channel", "filters.channel")]
        + [Column(a, f"kpi.{a}", {"invites_sent": "int", "aov_fen": "fen", "k_factor": "float"}.get(a, "pct"))
           for a in RADAR_AXES]
        + [Column("fission_power", "channels.fission_power", "float"),
           Column("conversion_power", "channels.conversion_power", "float")],
        rows,
        title="channels.table",
        link=lambda row: "/" + filters.query(channel=row["channel"]),
        link_column="channel",
    )  # fmt: skip
    context |= {
        "has_data": True,
        "charts": [
            Chart("channel_radar", radar, "channels.radar", height=400),
            Chart("channel_power", power, "channels.power", height=400),
        ],
        "tables": [table],
    }
    return render(request, template, context, tables=[table])


# --- scorecard and benchmarks ---------------------------------------------------------------------


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
def _warm_default_views() -> None:
    """The analytics pages as first opened (no filters, default choices)."""
    af = ConsoleFilters().to_analytics()
    cached_analytics("run_funnel", af)
    cached_analytics("run_dropped", af, 2)
    cached_analytics("run_retention", af, "week", "first_event")
    cached_analytics("run_channels", af)
    cached_analytics("run_referral_tree", af, TOP_SPREADERS, GRAPH_NODES)
    period = _scorecard_period(af)
    if period is not None:
        cached_analytics("run_scorecard", period, "mature")


@router.get("/scorecard")
def scorecard_page(request: Request) -> Response:
    from liebian.analytics import benchmarks as bench
    from liebian.analytics.common import AnalyticsError

    t, filters, context = _start(request)
    template = "analytics/scorecard.html"
    sectors = tuple(bench.DEFAULT_REFERENCE)
    try:
        stage = _choice(request, "stage", STAGES, "mature")
        sector = _choice(request, "sector", sectors, "ecommerce" if "ecommerce" in sectors else sectors[0])
        context["selects"] = _selects(
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
        return _failed(request, template, context, exc)
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
