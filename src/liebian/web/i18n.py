"""Console messages: Simplified Chinese first, English second. Locale from ?lang=, then a cookie."""

from __future__ import annotations

from fastapi import Request

from liebian.web.messages import CATALOGUE

# in the order of each catalogue entry's texts
LOCALES = ("zh-CN", "en")
DEFAULT_LOCALE = "zh-CN"


def locale_of(request: Request) -> str:
    lang = request.query_params.get("lang") or request.cookies.get("lang") or DEFAULT_LOCALE
    return lang if lang in LOCALES else DEFAULT_LOCALE


def translator(locale: str):
    index = LOCALES.index(locale if locale in LOCALES else DEFAULT_LOCALE)

    def t(key: str) -> str:
        texts = CATALOGUE.get(key)
        return texts[index] if texts else key

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
