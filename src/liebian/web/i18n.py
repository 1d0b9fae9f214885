"""Console messages: Simplified Chinese first, English second. Locale from ?lang=, then a cookie."""

from __future__ import annotations

from fastapi import Request

LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"

MESSAGES: dict[str, dict[str, str]] = {
    "app.title": {"zh-CN": "裂变增长控制台", "en": "liebian growth console"},
    "nav.overview": {"zh-CN": "总览", "en": "Overview"},
    "nav.quality": {"zh-CN": "数据质量", "en": "Data quality"},
    "nav.api": {"zh-CN": "接口文档", "en": "API docs"},
    "overview.heading": {"zh-CN": "北极星指标总览", "en": "North-star overview"},
    "overview.empty": {
        "zh-CN": "还没有数据。运行 `liebian demo` 生成演示品牌，或用 `liebian import` 导入数据。",
        "en": "No data yet. Run `liebian demo` for the demo brand, or load data with `liebian import`.",
    },
    "quality.heading": {"zh-CN": "数据质量报告", "en": "Data-quality report"},
    "lang.switch": {"zh-CN": "English", "en": "中文"},
    "kpi.persons": {"zh-CN": "用户数", "en": "Persons"},
    "kpi.events": {"zh-CN": "事件数", "en": "Events"},
    "kpi.orders": {"zh-CN": "订单数", "en": "Orders"},
    "kpi.gmv_yuan": {"zh-CN": "成交额 GMV", "en": "GMV"},
    "kpi.aov_yuan": {"zh-CN": "客单价", "en": "Average order value"},
    "kpi.refund_rate": {"zh-CN": "退款率", "en": "Refund rate"},
    "kpi.reached": {"zh-CN": "触达人数", "en": "Reached"},
    "kpi.participants": {"zh-CN": "参与人数", "en": "Participants"},
    "kpi.participation": {"zh-CN": "参与率", "en": "Participation"},
    "kpi.new_persons": {"zh-CN": "新增用户", "en": "New persons"},
    "kpi.referred_persons": {"zh-CN": "裂变新增", "en": "Referred persons"},
    "kpi.referral_share": {"zh-CN": "裂变占比", "en": "Referral share"},
    "kpi.k_factor": {"zh-CN": "K 因子", "en": "K-factor"},
    "kpi.d1_retention": {"zh-CN": "次日留存", "en": "D1 retention"},
    "kpi.ltv_multiplier": {"zh-CN": "LTV 倍数", "en": "LTV multiplier"},
}


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
