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


def format_money_fen(fen: int | None, locale: str) -> str:
    if fen is None:
        return "—"
    yuan = fen / 100
    if locale == "zh-CN" and abs(yuan) >= 10_000:
        return f"¥{yuan / 10_000:.2f}万"
    return f"¥{yuan:,.2f}"
