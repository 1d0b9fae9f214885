"""The report as an HTML document in one language: Simplified Chinese (the default) or English.

Numbers by type (liebian.display): money in yuan with ¥ (万 in Chinese), rates as percentages,
counts as integers, other decimals with at most two places; times in the display zone with their
UTC offset. Charts are inline SVG: no chart library, no network; the page prints and e-mails.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup, escape

from liebian import display
from liebian.analytics.catalogue import is_metric, metric, metric_kind

LANGS = ("zh-CN", "en")

# The report's KPI table: metric keys; names, units and formulas are the metric catalogue's.
KPI_ROWS = (
    "reached", "participants", "participation_rate", "invites_sent", "k_factor", "invite_conversion", "new_users",
    "referred_share_of_new", "buyers", "conversion_rate", "revenue_fen", "aov_fen", "repurchase_rate",
    "retention_d1", "retention_d7", "dau_mau", "reward_cost_fen", "roi",
)  # fmt: skip

TEXTS: dict[str, tuple[str, str]] = {
    "weekly": ("周报", "Weekly report"),
    "monthly": ("月报", "Monthly report"),
    "report": ("报告", "Report"),
    "period": ("统计区间", "Period"),
    "generated": ("生成于", "Generated"),
    "kpis": ("核心指标", "KPIs"),
    "metric": ("指标", "Metric"),
    "this_period": ("本期", "This period"),
    "previous": ("上期", "Previous period"),
    "targets": ("SMART 目标", "SMART targets"),
    "target": ("目标", "Target"),
    "baseline": ("基线", "Baseline"),
    "target_value": ("目标值", "Target value"),
    "current": ("当前", "Current"),
    "progress": ("完成度", "Progress"),
    "elapsed": ("时间已过", "Time elapsed"),
    "status": ("状态", "Status"),
    "due": ("截止", "Due"),
    "no_targets": (
        "暂无目标（可用命令 <code>liebian report target-add</code> 设定）。",
        "No targets set (<code>liebian report target-add</code>).",
    ),
    "charts": ("图表", "Charts"),
    "funnel": ("漏斗", "Funnel"),
    "step": ("步骤", "Step"),
    "event": ("事件", "Event"),
    "persons": ("人数", "Persons"),
    "from_prev": ("步骤转化率", "Step conversion"),
    "from_start": ("总转化率", "Overall conversion"),
    "campaigns": ("活动效果", "Campaign results"),
    "campaign": ("活动", "Campaign"),
    "cohorts": ("留存（按周）", "Weekly retention cohorts"),
    "cohort": ("同期群", "Cohort"),
    "size": ("人数", "Size"),
    "week": ("第 {n} 周", "Week {n}"),
    "fraud": ("风控", "Fraud"),
    "referrals": ("推荐数", "Referrals"),
    "rejected": ("拒绝数", "Rejected"),
    "fraud_rate": ("作弊率", "Fraud rate"),
    "no_referrals": ("暂无推荐记录。", "No referrals in the store."),
    "alerts": ("告警", "Alerts"),
    "level": ("级别", "Level"),
    "alert": ("告警", "Alert"),
    "observed": ("观测值", "Observed"),
    "expected": ("预期值", "Expected"),
    "last_seen": ("最近出现", "Last seen"),
    "no_alerts": ("本期无告警。", "No alerts."),
    "spreaders": ("传播达人", "Top spreaders"),
    "person": ("用户编号", "Person"),
    "direct": ("直接邀请", "Direct invitees"),
    "descendants": ("下游总数", "Descendants"),
    "depth": ("层级", "Depth"),
    "bought": ("下游购买", "Invitees who bought"),
    "recommendations": ("建议", "Recommendations"),
    "chart_targets": ("目标完成度（%）", "Target progress (%)"),
    "chart_funnel": ("漏斗", "Funnel"),
    "chart_spreaders": ("传播达人（直接达标邀请）", "Top spreaders (direct qualified invitees)"),
    "title": ("活动名称", "Title"),
    "finding.k_factor<1": ("K 因子低于 1", "K-factor below 1"),
    "finding.funnel_drop": ("漏斗流失", "Funnel drop-off"),
    "finding.fraud_rate": ("作弊率超标", "Fraud rate above the ceiling"),
    "finding.target_behind": ("目标落后", "Target behind"),
    "finding.urgent_alerts": ("紧急告警未解决", "Critical alerts open"),
    "finding.wake_up": ("沉默用户待唤醒", "Silent users to wake up"),
    "finding.repurchase": ("复购率偏低", "Low repurchase rate"),
    "calendar": ("节假日与大促", "Holidays and promotions"),
    "options": ("方案与预期效果", "Options and expected effects"),
    "finding": ("发现", "Finding"),
    "option": ("方案", "Option"),
    "delta_users": ("新增用户变化", "Δ new users"),
    "delta_range": ("区间 P10–P90", "Range P10–P90"),
    "delta_cost": ("成本变化", "Δ cost"),
    "options_note": (
        "预期效果：增长模拟的配对运行（同一随机种子，现状与方案各一次），区间为逐次差值的第 10–90 百分位。",
        "Expected effects: paired runs of the growth simulation (same seed, current vs option); the range is "
        "the 10th–90th percentile of the per-run difference.",
    ),
    "step.exposure": ("触达", "Reach"),
    "step.page_view": ("兴趣", "Interest"),
    "step.join_campaign": ("参与", "Participate"),
    "step.order_paid": ("转化", "Convert"),
    "tstatus.achieved": ("已达成", "achieved"),
    "tstatus.on_track": ("按计划", "on track"),
    "tstatus.behind": ("落后", "behind"),
    "tstatus.no_data": ("无数据", "no data"),
    "astatus.open": ("未处理", "open"),
    "astatus.acknowledged": ("已确认", "acknowledged"),
    "astatus.resolved": ("已解决", "resolved"),
    "level.一般": ("一般", "minor"),
    "level.重要": ("重要", "major"),
    "level.紧急": ("紧急", "critical"),
}

# recommendation rule → (zh, en), filled with the recommendation's params
RECOMMENDATIONS: dict[str, tuple[str, str]] = {
    "k_factor<1": ("K 因子 {k_factor} < 1：裂变不能自我维持，提高被邀请人奖励或简化分享步骤。",
                   "K-factor {k_factor} is below 1: raise the invitee reward or shorten the share step."),
    "funnel_drop": ("最大流失在「{step}」（流失率 {drop_off_rate}）：优先优化这一步。",
                    "The largest drop-off is at “{step}” ({drop_off_rate}): improve this step first."),
    "fraud_rate": ("活动 {campaign} 作弊率 {fraud_rate} 超过 0.5%：收紧风控规则并复核待发奖励。",
                   "Campaign {campaign} has a fraud rate of {fraud_rate}, above 0.5%: tighten the rules and review pending rewards."),
    "target_behind": ("目标「{target}」落后：完成 {progress_rate}，时间已过 {elapsed_rate}。",
                      "Target “{target}” is behind: {progress_rate} done with {elapsed_rate} of the time gone."),
    "urgent_alerts": ("{alerts} 条紧急告警未解决（{title}…）：先处理告警再扩大投放。",
                      "{alerts} critical alerts are open ({title}…): handle them before scaling up."),
    "wake_up": ("沉默用户 {silent_users} 人、唤醒率 {reactivation_rate}：启动沉默用户唤醒旅程。",
                "{silent_users} silent users, reactivation rate {reactivation_rate}: start a wake-up journey."),
    "repurchase": ("复购率 {repurchase_rate} 偏低：对高流失风险客户启动挽留旅程。",
                   "Repurchase rate {repurchase_rate} is low: start a churn-intervention journey for at-risk customers."),
}  # fmt: skip


def bar_svg(
    labels: list[str],
    values: list[float | None],
    title: str,
    width: int = 560,
    lang: str = "zh-CN",
    data_labels: bool = False,
) -> Markup:
    """A horizontal bar chart as inline SVG: no chart library, no network, prints and e-mails.
    `data_labels`: the labels are names operators gave, marked translate="no"."""
    bar, gap, left = 22, 8, 170
    lengths = [v or 0 for v in values]
    top = max(lengths, default=0) or 1
    height = 30 + len(lengths) * (bar + gap)
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{escape(title)}"><title>{escape(title)}</title>',
        f'<text x="0" y="16" font-size="13" font-weight="bold">{escape(title)}</text>',
    ]
    for i, (label, value) in enumerate(zip(labels, lengths, strict=True)):
        y = 28 + i * (bar + gap)
        w = max((width - left - 70) * value / top, 1)
        shown = display.decimal(value, 1) if isinstance(value, float) else f"{value:,}"
        mark = ' translate="no"' if data_labels else ""
        parts.append(f'<text x="0" y="{y + 15}" font-size="12"{mark}>{escape(str(label)[:26])}</text>')
        parts.append(f'<rect x="{left}" y="{y}" width="{w:.1f}" height="{bar}" fill="#c0392b"/>')
        parts.append(f'<text x="{left + w + 4:.1f}" y="{y + 15}" font-size="12">{escape(shown)}</text>')
    parts.append("</svg>")
    return Markup("".join(parts))


_env = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"), autoescape=select_autoescape(["html"])
)


def _value(lang: str):
    def value(v: object, kind: str = "") -> str:
        return display.cell(v, kind, lang)

    return value


# params that are names operators gave (campaign titles, target and alert names): data, not text
DATA_PARAMS = frozenset({"campaign", "target", "title"})


def recommendation_text(rec: dict[str, Any], lang: str) -> Markup:
    """A recommendation in `lang` (its rule's text with its numbers), as HTML: names operators gave
    are marked translate="no"; the stored text for an unknown rule."""
    texts = RECOMMENDATIONS.get(rec.get("rule", ""))
    params = rec.get("params")
    if texts is None or not params:
        return Markup(escape(str(rec.get("recommendation", ""))))
    values: dict[str, Any] = {
        name: display.by_kind(v, display.kind_of(name, v), lang) for name, v in params.items()
    }
    if "event" in params:  # a funnel step by its name in `lang`
        values["step"] = TEXTS.get(f"step.{params['event']}", (values["step"], values["step"]))[
            LANGS.index(lang)
        ]
    for name in DATA_PARAMS & values.keys():
        values[name] = Markup('<span translate="no">{}</span>').format(values[name])
    return Markup(escape(texts[LANGS.index(lang)])).format(**values)


def render_html(report: dict[str, Any], lang: str = "zh-CN") -> str:
    lang = lang if lang in LANGS else "zh-CN"
    index = LANGS.index(lang)

    def t(key: str) -> str:
        texts = TEXTS.get(key)
        return texts[index] if texts else key

    def named(steps: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # a step by its name in `lang` (the analytics name is bilingual, "触达 reach")
        return [s | {"name": TEXTS.get(f"step.{s['event']}", (s["name"], s["name"]))[index]} for s in steps]

    report = report | {"funnel": named(report["funnel"]), "campaigns": named(report["campaigns"])}
    k, p = report["kpis"], report["previous_kpis"]
    kpi_rows = [
        (metric(key).name(lang), metric_kind(key), k.get(key), p.get(key)) for key in KPI_ROWS if key in k
    ]
    funnel = report["funnel"]
    charts = [
        bar_svg([s["name"] for s in funnel], [s["persons"] for s in funnel], t("chart_funnel")),
        bar_svg(
            [str(s["person_id"]) for s in report["top_spreaders"]],
            [s["direct_qualified_invitees"] for s in report["top_spreaders"]],
            t("chart_spreaders"),
        ),
    ]
    if report["targets"]:
        progress = [max(x["progress"] or 0, 0) * 100 for x in report["targets"]]
        names = [x["name"] for x in report["targets"]]
        charts.insert(0, bar_svg(names, progress, t("chart_targets"), data_labels=True))
    targets = [
        x | {"kind": metric_kind(x["metric"]), "metric_label": metric(x["metric"]).name(lang)}
        if is_metric(x["metric"])
        else x
        for x in report["targets"]
    ]
    return _env.get_template("report.html").render(
        r=report | {"targets": targets},
        lang=lang,
        t=t,
        v=_value(lang),
        kpi_rows=kpi_rows,
        charts=charts,
        recommendations=[recommendation_text(x, lang) for x in report["recommendations"]],
        generated=display.local_time(report["generated_at"]),
    )
