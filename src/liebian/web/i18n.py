"""Console messages: Simplified Chinese first, English second. Locale from ?lang=, then a cookie."""

from __future__ import annotations

from fastapi import Request

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"

MESSAGES: dict[str, dict[str, str]] = {}


def register(messages: dict[str, tuple[str, str]]) -> None:
    """Add console messages: key → (Simplified Chinese, English). Page modules register their own."""
    for key, (zh, en) in messages.items():
        MESSAGES[key] = {"zh-CN": zh, "en": en}


register(
    {
        "app.title": ("裂变增长控制台", "liebian growth console"),
        "lang.switch": ("English", "中文"),
        "a11y.skip": ("跳到正文", "Skip to content"),
        "a11y.menu": ("主菜单", "Main menu"),
        "auth.login": ("登录", "Log in"),
        "auth.logout": ("退出", "Log out"),
        "auth.username": ("用户名", "Username"),
        "auth.password": ("密码", "Password"),
        "role.admin": ("管理员", "admin"),
        "role.operator": ("运营", "operator"),
        "role.analyst": ("分析师", "analyst"),
        "role.reviewer": ("审核员", "reviewer"),
        "role.auditor": ("审计员", "auditor"),
        "role.viewer": ("只读", "viewer"),
        # navigation
        "navgroup.insight": ("增长洞察", "Growth insight"),
        "navgroup.models": ("模型", "Models"),
        "navgroup.operations": ("运营", "Operations"),
        "navgroup.data": ("数据与设置", "Data & settings"),
        "nav.overview": ("总览", "Overview"),
        "nav.funnel": ("裂变漏斗", "Fission funnel"),
        "nav.retention": ("留存热力图", "Retention"),
        "nav.referrals": ("裂变关系图", "Referral graph"),
        "nav.channels": ("渠道雷达", "Channel radar"),
        "nav.scorecard": ("评分卡与基准", "Scorecard & benchmarks"),
        "nav.ltv": ("LTV 与分群", "LTV & segments"),
        "nav.attribution": ("归因", "Attribution"),
        "nav.experiments": ("A/B 实验", "Experiments"),
        "nav.campaigns": ("活动", "Campaigns"),
        "nav.fraud": ("风控审核", "Fraud review"),
        "nav.alerts": ("告警", "Alerts"),
        "nav.reports": ("报告", "Reports"),
        "nav.journeys": ("自动化旅程", "Journeys"),
        "nav.quality": ("数据质量", "Data quality"),
        "nav.import": ("数据导入", "Data import"),
        "nav.settings": ("设置", "Settings"),
        # filters, tables, charts
        "filters.label": ("筛选", "Filters"),
        "filters.start": ("开始日期", "From"),
        "filters.end": ("结束日期", "To"),
        "filters.channel": ("渠道", "Channel"),
        "filters.campaign": ("活动", "Campaign"),
        "filters.segment": ("人群", "Segment"),
        "filters.all": ("全部", "All"),
        "filters.everyone": ("所有人", "Everyone"),
        "filters.apply": ("应用", "Apply"),
        "filters.clear": ("清除筛选", "Clear filters"),
        "export.csv": ("导出 CSV", "Export CSV"),
        "export.xlsx": ("导出 Excel", "Export Excel"),
        "chart.png": ("下载 PNG", "Download PNG"),
        "table.empty": ("没有数据。", "No rows."),
        "table.more": ("未显示的行（请导出查看）：", "Rows not shown (export to see them):"),
        "channel.wecom": ("企业微信", "WeCom"),
        "channel.miniprogram": ("小程序", "Mini-program"),
        "channel.douyin": ("抖音", "Douyin"),
        "channel.xiaohongshu": ("小红书", "Xiaohongshu"),
        "channel.app": ("App", "App"),
        "channel.store": ("门店", "Store"),
        "channel.wechat": ("微信", "WeChat"),
        # overview
        "overview.heading": ("北极星指标总览", "North-star overview"),
        "overview.north_star": ("北极星指标", "North-star metric"),
        "overview.period": ("数据区间", "Data period"),
        "overview.trend": ("每日趋势（红色标记为异常）", "Daily trends (red pins mark anomalies)"),
        "overview.by_channel": ("按渠道下钻", "Drill down by channel"),
        "overview.daily": ("按日下钻", "Drill down by day"),
        "overview.anomalies": ("检测到的异常", "Anomalies detected"),
        "overview.day": ("日期", "Day"),
        "overview.empty": (
            "还没有数据。运行 `liebian demo` 生成演示品牌，或用 `liebian import` 导入数据。",
            "No data yet. Run `liebian demo` for the demo brand, or load data with `liebian import`.",
        ),
        "alerts.metric": ("指标", "Metric"),
        "alerts.observed": ("实际值", "Observed"),
        "alerts.expected": ("预期值", "Expected"),
        # KPI names (analytics/kpis.py keys; definitions in docs/metrics.md)
        "kpi.reached": ("触达人数", "Reached"),
        "kpi.active_users": ("活跃用户", "Active users"),
        "kpi.participants": ("参与人数", "Participants"),
        "kpi.participation_rate": ("参与率", "Participation"),
        "kpi.invites_sent": ("邀请次数", "Invites sent"),
        "kpi.invite_clicks": ("邀请点击", "Invite clicks"),
        "kpi.shares": ("分享次数", "Shares"),
        "kpi.invites_per_participant": ("人均邀请", "Invites per participant"),
        "kpi.referred_users": ("被邀请用户", "Referred users"),
        "kpi.invite_conversion": ("邀请转化率", "Invite conversion"),
        "kpi.k_factor": ("K 因子", "K-factor"),
        "kpi.viral_cycle_days": ("裂变周期（天）", "Viral cycle (days)"),
        "kpi.inviters": ("邀请人数", "Inviters"),
        "kpi.referral_rate": ("裂变率", "Fission rate"),
        "kpi.buyers": ("下单人数", "Buyers"),
        "kpi.conversion_rate": ("转化率", "Conversion"),
        "kpi.paid_orders": ("支付订单", "Paid orders"),
        "kpi.revenue_fen": ("成交额", "Revenue"),
        "kpi.aov_fen": ("客单价", "Average order value"),
        "kpi.repurchase_rate": ("复购率", "Repurchase rate"),
        "kpi.new_users": ("新增用户", "New users"),
        "kpi.new_referred_users": ("裂变新增用户", "New users via referral"),
        "kpi.referred_share_of_new": ("裂变新增占比", "Share of new users via referral"),
        "kpi.cac_fen": ("获客成本 CAC", "CAC"),
        "kpi.ltv_fen": ("LTV", "LTV"),
        "kpi.ltv_cac": ("LTV/CAC", "LTV/CAC"),
        "kpi.roi": ("ROI", "ROI"),
        "kpi.retention_d1": ("次日留存", "D1 retention"),
        "kpi.retention_d7": ("7 日留存", "D7 retention"),
        "kpi.retention_d30": ("30 日留存", "D30 retention"),
    }
)


def locale_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or DEFAULT_LOCALE
    return lang if lang in LOCALES else DEFAULT_LOCALE


def translator(locale: str):
    def t(key: str) -> str:
        entry = MESSAGES.get(key)
        return entry.get(locale, entry[DEFAULT_LOCALE]) if entry else key

    return t


def format_number(value: float | int | None, locale: str) -> str:
    """Large counts as 万 in Chinese (12.3万), thousands separators in English."""
    if value is None:
        return "—"
    if isinstance(value, float) and abs(value) < 10:
        return f"{value:.2f}"
    if locale == "zh-CN" and abs(value) >= 10_000:
        return f"{value / 10_000:.1f}万"
    return f"{value:,.0f}"


def format_percent(value: float | None) -> str:
    return "—" if value is None else f"{value:.1%}"


def format_money_yuan(yuan: float | None, locale: str) -> str:
    return "—" if yuan is None else format_money_fen(round(yuan * 100), locale)


def format_money_fen(fen: int | None, locale: str) -> str:
    if fen is None:
        return "—"
    yuan = fen / 100
    if locale == "zh-CN" and abs(yuan) >= 10_000:
        return f"¥{yuan / 10_000:.2f}万"
    return f"¥{yuan:,.2f}"
