"""Request and response shapes of the costs API (operator-entered costs per campaign and period)."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field, model_validator

from liebian.schemas import MAX_DAYS, MAX_FEN, PLAN_MAX, Request, UtcDateTime, time_bounds

CATEGORIES = ("media", "staff", "tools", "other")
Category = Literal["media", "staff", "tools", "other"]
# Engine campaign slugs and the ids imported files carry (c_invite, 2026-double11, shop:42 …).
CAMPAIGN_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$"


def check_period(start: date, end: date) -> None:
    """ValueError naming the bound a cost's period breaks (the API and the CLI say the same)."""
    low, high = time_bounds()[0].date(), PLAN_MAX.date()
    for name, day in (("start_date", start), ("end_date", end)):
        if not low <= day <= high:
            raise ValueError(f"{name}: {day} outside {low} … {high}")
    if end < start:
        raise ValueError(f"end_date: {end} is before start_date {start}")
    if (end - start).days >= MAX_DAYS:
        raise ValueError(f"end_date: a period spans at most {MAX_DAYS} days")


class CostIn(Request):
    """A cost of one campaign (or of all: campaign_id omitted) over calendar days of the display zone,
    both inclusive. Analytics counts the share of its days inside the period asked."""

    campaign_id: str | None = Field(None, pattern=CAMPAIGN_ID_PATTERN, description="omit: every campaign")
    category: Category
    amount_fen: int = Field(gt=0, le=MAX_FEN, description="fen of CNY")
    start_date: date
    end_date: date
    note: str = Field("", max_length=200, description="what it was (no personal data)")

    @model_validator(mode="after")
    def _period(self) -> CostIn:
        check_period(self.start_date, self.end_date)
        return self


class CostOut(BaseModel):
    id: int
    campaign_id: str | None
    category: str
    amount_fen: int
    start_date: date
    end_date: date
    note: str
    created_by: str
    created_at: UtcDateTime


class FxRateOut(BaseModel):
    currency: str
    date: date
    cny_per_unit: str
    source: Literal["settings", "imported"]


__all__ = ["CATEGORIES", "CostIn", "CostOut", "FxRateOut", "check_period"]
