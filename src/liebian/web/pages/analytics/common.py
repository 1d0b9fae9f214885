"""What the analytics pages share: their options checked, their start and failure, the palette."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response

from liebian.web.console import ConsoleFilters, filter_options, render
from liebian.web.i18n import locale_of, register, translator

register(
    {
        "analytics.apply": ("更新", "Update"),
        "analytics.options": ("本页选项", "Page options"),
        "analytics.empty": ("所选范围内没有数据。", "No data in the chosen range."),
    }
)


PALETTE = ["#b3102a", "#0a58ca", "#116329", "#8250df", "#bc4c00", "#1b7c83", "#6e7781", "#cf222e"]


class PageError(ValueError):
    """A page option (not a filter) that is not valid; shown on the page with status 422."""


def choice(request: Request, name: str, allowed: tuple[str, ...], default: str) -> str:
    value = (request.query_params.get(name) or default).strip()
    if value not in allowed:
        raise PageError(f"{name}: {value!r} is not one of {', '.join(a for a in allowed if a)}")
    return value


def page_start(request: Request) -> tuple[Any, ConsoleFilters, dict[str, Any]]:
    """(translator, filters, base context) of an analytics page."""
    filters = ConsoleFilters.from_request(request)
    context: dict[str, Any] = {
        "filters": filters,
        "options": filter_options(),
        "error": None,
        "has_data": False,
    }
    return translator(locale_of(request)), filters, context


def failed_page(request: Request, template: str, context: dict, exc: Exception) -> Response:
    return render(request, template, context | {"error": str(exc)}, status_code=422)


def selects(t, current: dict[str, str], *specs: tuple[str, str, list[tuple[str, str]]]) -> list[dict]:
    """The page's own selectors (name, label key, [(value, label key)]) for analytics/_options.html."""
    return [
        {"name": name, "label": t(label), "current": current.get(name, ""),
         "choices": [(value, t(key)) for value, key in choices]}
        for name, label, choices in specs
    ]  # fmt: skip
