"""HTTP endpoints of the costs domain: operator-entered costs (`/api/v1/costs`) and the exchange
rates conversion uses (`GET /api/v1/fx/rates`)."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from liebian import fx
from liebian.auth.deps import principal_of
from liebian.costs import service
from liebian.costs.schemas import CAMPAIGN_ID_PATTERN, CostIn, CostOut, FxRateOut
from liebian.db.session import session_scope
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1", tags=["costs"])


@router.post("/costs", status_code=201, response_model=CostOut)
def add(body: CostIn, request: Request) -> dict[str, Any]:
    with session_scope() as s:
        return service.add_cost(s, **body.model_dump(), actor=principal_of(request).name)


@router.get("/costs", response_model=list[CostOut])
def list_costs(
    campaign: Annotated[str | None, Query(pattern=CAMPAIGN_ID_PATTERN, description="one campaign")] = None,
    start: Annotated[date | None, Query(description="costs whose period ends on or after this day")] = None,
    end: Annotated[date | None, Query(description="costs whose period starts on or before this day")] = None,
) -> list[dict[str, Any]]:
    with session_scope() as s:
        return service.list_costs(s, campaign, start, end)


@router.delete("/costs/{cost_id}", response_model=CostOut)
def remove(cost_id: Int64) -> dict[str, Any]:
    with session_scope() as s:
        return service.remove_cost(s, cost_id)


@router.get("/fx/rates", response_model=list[FxRateOut])
def fx_rates(
    currency: Annotated[str | None, Query(pattern=r"^[A-Za-z]{3}$", description="ISO code")] = None,
) -> list[dict[str, Any]]:
    """The rates conversion uses: imported ones, with the settings' rates on top (they win on the
    same currency and day)."""
    rows = {(r.currency, r.day): (r, "imported") for r in fx.stored_rates()}
    rows.update({(r.currency, r.day): (r, "settings") for r in fx.configured_rates()})
    wanted = currency.upper() if currency else None
    return [
        {"currency": r.currency, "date": r.day, "cny_per_unit": str(r.cny_per_unit), "source": source}
        for (code, _), (r, source) in sorted(rows.items())
        if wanted is None or code == wanted
    ]
