"""The console's /costs page: other costs per campaign and period (media, staff, tools, other) —
a form to enter one and the table of those entered, each removable. Every write goes through
liebian.costs.service (the same checks as `POST /api/v1/costs` and `liebian costs add`)."""

from __future__ import annotations

from decimal import InvalidOperation
from typing import Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response
from pydantic import ValidationError

from liebian.auth.deps import principal_of
from liebian.costs import service
from liebian.costs.schemas import CATEGORIES, CostIn
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.schemas import Int64
from liebian.web.console import filter_options, flash_fragment, format_cell, htmx_redirect, render
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.campaign_form import fen_from_yuan

router = APIRouter(include_in_schema=False)


def _rows(costs: list[dict[str, Any]], titles: dict[str, str], t, locale: str) -> list[dict[str, Any]]:
    return [
        {
            "id": c["id"],
            "campaign": t("costs.all_campaigns")
            if c["campaign_id"] is None
            else titles.get(c["campaign_id"], c["campaign_id"]),
            "category": t(f"costs.category.{c['category']}"),
            "amount": format_cell(c["amount_fen"], "fen", locale),
            "start_date": format_cell(c["start_date"], "date", locale),
            "end_date": format_cell(c["end_date"], "date", locale),
            "note": c["note"],
            "created_by": c["created_by"],
        }
        for c in costs
    ]


@router.get("/costs")
def costs_page(request: Request) -> Response:
    t, locale = translator(locale_of(request)), locale_of(request)
    campaigns = filter_options()["campaigns"]
    with session_scope() as s:
        costs = service.list_costs(s)
    context = {
        "campaigns": campaigns,
        "categories": CATEGORIES,
        "rows": _rows(costs, dict(campaigns), t, locale),
        "can_write": principal_of(request).can("campaign:write"),
    }
    return render(request, "costs/page.html", context)


def _fen_of(yuan: str) -> int | None:
    """Yuan as typed in whole fen; None when not a positive amount with ≤ 2 decimals."""
    try:
        fen = fen_from_yuan(yuan)
    except InvalidOperation:
        return None
    return fen if fen > 0 else None


@router.post("/costs")
def costs_add(
    request: Request,
    campaign_id: str = Form(""),
    category: str = Form(""),
    amount_yuan: str = Form(""),
    start_date: str = Form(""),
    end_date: str = Form(""),
    note: str = Form(""),
) -> Response:
    t = translator(locale_of(request))
    fen = _fen_of(amount_yuan)
    if fen is None:
        return flash_fragment(t("costs.bad_amount"), ok=False)
    try:
        body = CostIn.model_validate(
            {"campaign_id": campaign_id or None, "category": category, "amount_fen": fen,
             "start_date": start_date, "end_date": end_date, "note": note.strip()}
        )  # fmt: skip
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        reason = first["msg"].removeprefix("Value error, ")
        return flash_fragment(f"{where}: {reason}" if where else reason, ok=False)
    with session_scope() as s:
        service.add_cost(s, **body.model_dump(), actor=principal_of(request).name)
    return htmx_redirect("/costs")


@router.post("/costs/{cost_id}/remove")
def costs_remove(request: Request, cost_id: Int64) -> Response:
    try:
        with session_scope() as s:
            service.remove_cost(s, cost_id)
    except DomainError as exc:
        message = exc.message_zh if locale_of(request).startswith("zh") else exc.message
        return flash_fragment(message, ok=False, retarget="#cost-result")
    return htmx_redirect("/costs")
