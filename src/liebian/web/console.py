"""The console (server-rendered). This is the overview; the console issue adds the other pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from liebian.web.i18n import format_money_yuan, format_number, format_percent, locale_of, translator

TEMPLATES = Jinja2Templates(directory=str(Path(__file__).with_name("templates")))

router = APIRouter(include_in_schema=False)


def _overview() -> dict | None:
    from liebian.analytics.overview import overview
    from liebian.engine.backend import analytics_backend

    with analytics_backend() as backend:
        data = overview(backend)
    return data if data and data.get("events") else None


@router.get("/", response_class=HTMLResponse)
def index(request: Request) -> HTMLResponse:
    locale = locale_of(request)
    data = _overview()
    from liebian.analytics.overview import LABELS, RATIOS

    cards = []
    for key in LABELS:
        value = (data or {}).get(key)
        if key in RATIOS:
            text = format_percent(value)
        elif key.endswith("_yuan"):
            text = format_money_yuan(value, locale)
        else:
            text = format_number(value, locale)
        cards.append({"key": key, "value": text})
    response = TEMPLATES.TemplateResponse(
        request,
        "overview.html",
        {"t": translator(locale), "locale": locale, "cards": cards, "has_data": data is not None},
    )
    if "lang" in request.query_params:
        response.set_cookie("lang", locale, samesite="lax")
    return response
