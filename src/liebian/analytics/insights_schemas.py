"""The insight builder's typed queries (PostHog's insight model: a kind and its params) and the shapes
of saved insights and dashboards. Every builder parameter is checked here, at the edge, with the
field at fault named; the console builder and `/api/v1/insights` validate through these models."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from liebian.analytics.insights_funnel import MAX_EXCLUSIONS
from liebian.costs.schemas import CAMPAIGN_ID_PATTERN
from liebian.schemas import Request, UtcDateTime

MAX_STEPS = 20
MAX_TREND_EVENTS = 10
MAX_WINDOW_DAYS = 365  # a conversion window longer than a year is a typo, not an analysis
MAX_DASHBOARD_ITEMS = 24
KINDS = ("funnel", "retention", "trends")

# An event name as tracked: no control characters, no comma or "=" (the API's step list uses them).
EventName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f,=]+$")]
Name = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")]
Breakdown = Literal["channel", "campaign"] | None


class InsightFilters(Request):
    """The filters every analysis takes (analytics.common.Filters), as a saved insight keeps them."""

    start: date | None = None
    end: date | None = None
    channels: list[Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[\w.:-]+$")]] = Field(
        default_factory=list, max_length=50
    )
    campaigns: list[Annotated[str, Field(pattern=CAMPAIGN_ID_PATTERN)]] = Field(
        default_factory=list, max_length=50
    )

    @model_validator(mode="after")
    def _order(self) -> InsightFilters:
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"end: {self.end} is before start {self.start}")
        return self


class ExclusionIn(Request):
    event: EventName
    from_step: int = Field(ge=1, le=MAX_STEPS)
    to_step: int = Field(ge=2, le=MAX_STEPS)


class FunnelParams(Request):
    steps: list[EventName] = Field(
        min_length=2, max_length=MAX_STEPS, description="event names; order_paid = paid order"
    )
    window_days: float = Field(14, gt=0, le=MAX_WINDOW_DAYS)
    mode: Literal["ordered", "strict", "unordered"] = "ordered"
    breakdown: Breakdown = None
    exclusions: list[ExclusionIn] = Field(default_factory=list, max_length=MAX_EXCLUSIONS)
    filters: InsightFilters = Field(default_factory=InsightFilters)


class RetentionParams(Request):
    unit: Literal["day", "week", "month"] = "week"
    cohort_by: Literal["first_event", "referral"] = "first_event"
    periods: int = Field(12, ge=1, le=120)
    cohorts: int = Field(12, ge=1, le=120)
    filters: InsightFilters = Field(default_factory=InsightFilters)


class TrendsParams(Request):
    events: list[EventName] = Field(min_length=1, max_length=MAX_TREND_EVENTS)
    interval: Literal["day", "week", "month"] = "day"
    breakdown: Breakdown = None
    filters: InsightFilters = Field(default_factory=InsightFilters)


PARAMS: dict[str, type[FunnelParams] | type[RetentionParams] | type[TrendsParams]] = {
    "funnel": FunnelParams,
    "retention": RetentionParams,
    "trends": TrendsParams,
}
Params = FunnelParams | RetentionParams | TrendsParams


def parse_params(kind: str, raw: object) -> Params:
    """The params of an insight kind, validated (pydantic's ValidationError names the field)."""
    model = PARAMS.get(kind)
    if model is None:
        raise ValueError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    return model.model_validate(raw)


class InsightIn(Request):
    name: Name
    kind: Literal["funnel", "retention", "trends"]
    # checked against the kind's model by the service (analytics/insights.py), naming params.<field>
    params: dict = Field(
        description="the builder's params of this kind (FunnelParams, RetentionParams, TrendsParams)"
    )
    description: str = Field("", max_length=500)


class InsightOut(BaseModel):
    id: int
    name: str
    kind: str
    params: dict
    description: str
    created_by: str
    created_at: UtcDateTime
    updated_at: UtcDateTime


class DashboardIn(Request):
    name: Name
    insight_ids: list[int] = Field(default_factory=list, max_length=MAX_DASHBOARD_ITEMS)


class DashboardOut(BaseModel):
    id: int
    name: str
    insight_ids: list[int]
    created_by: str
    created_at: UtcDateTime


class InsightResult(BaseModel):
    """An insight run: its definition and the analysis' answer (the analytics API's shape)."""

    insight: InsightOut
    result: dict


class TrendSeries(BaseModel):
    event: str
    breakdown: str | None
    counts: list[int]  # events per bucket, in the order of `buckets`
    persons: list[int]  # distinct persons per bucket


class TrendRow(BaseModel):
    bucket: str
    event: str
    breakdown: str | None
    count: int
    persons: int


class Trends(BaseModel):
    filters: dict
    interval: str
    breakdown: str | None
    buckets: list[str]  # day (YYYY-MM-DD), week (its Monday) or month (YYYY-MM) of the display zone
    series: list[TrendSeries]
    rows: list[TrendRow]


class EventNameList(BaseModel):
    events: list[str]  # most frequent first; order_paid (a paid order) last
