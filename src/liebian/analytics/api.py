"""HTTP endpoints under /api/v1/analytics: the same analyses and filters as the CLI."""

from __future__ import annotations

import json
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from liebian.analytics import catalogue, schemas, service
from liebian.analytics import insights_funnel as funnel_modes
from liebian.analytics.common import AnalyticsError, Filters
from liebian.errors import blame
from liebian.schemas import MAX_DAYS, MAX_FEN

router = APIRouter(prefix="/api/v1/analytics", tags=["analytics"])


def filters_dep(
    start: Annotated[str | None, Query(description="first day YYYY-MM-DD (display zone)")] = None,
    end: Annotated[str | None, Query(description="last day, inclusive")] = None,
    channel: Annotated[list[str], Query(description="channel filter, repeatable")] = [],  # noqa: B006
    campaign: Annotated[list[str], Query(description="campaign filter, repeatable")] = [],  # noqa: B006
    segment: Annotated[str | None, Query(description="comma-separated person ids")] = None,
) -> Filters:
    with blame("filters"):
        return service.make_filters(
            start, end, channel, campaign, segment.split(",") if segment is not None else None
        )


FiltersDep = Annotated[Filters, Depends(filters_dep)]


def _run(filters, fn, *args, **kwargs):
    with blame("query"):
        return fn(filters, *args, **kwargs)


@router.get("/kpis", response_model=schemas.Kpis)
def kpis(
    filters: FiltersDep,
    reward_cost_fen: int | None = Query(None, ge=0, le=MAX_FEN),
    other_cost_fen: int | None = Query(None, ge=0, le=MAX_FEN),
) -> dict:
    return _run(filters, service.run_kpis, reward_cost_fen=reward_cost_fen, other_cost_fen=other_cost_fen)


@router.get("/funnel", response_model=schemas.Funnel)
def funnel(
    filters: FiltersDep,
    steps: str | None = Query(
        None, description="comma list of events or name=event; order_paid = paid order"
    ),
    window_days: float = Query(14, gt=0, le=MAX_DAYS),
    breakdown: str | None = Query(None, pattern="^(channel|campaign)$"),
    mode: str = Query("ordered", pattern="^(ordered|strict|unordered)$", description="step order"),
    exclusion: list[str] = Query(  # noqa: B008
        [],
        max_length=10,
        description="event:from_step:to_step, repeatable (persons who did it between leave)",
    ),
) -> dict:
    exclusions = funnel_modes.parse_exclusions(exclusion)
    return _run(filters, service.run_funnel, steps, window_days, breakdown, mode=mode, exclusions=exclusions)


@router.get("/funnel/dropped", response_model=list[schemas.Dropped])
def dropped(
    filters: FiltersDep,
    at_step: int = Query(..., ge=2, le=1000),
    steps: str | None = None,
    window_days: float = Query(14, gt=0, le=MAX_DAYS),
    mode: str = Query("ordered", pattern="^(ordered|strict|unordered)$"),
    exclusion: list[str] = Query([], max_length=10, description="event:from_step:to_step"),  # noqa: B008
) -> list[dict]:
    exclusions = funnel_modes.parse_exclusions(exclusion)
    return _run(filters, service.run_dropped, at_step, steps, window_days, mode=mode, exclusions=exclusions)


@router.get("/retention", response_model=schemas.Retention)
def retention(
    filters: FiltersDep,
    unit: str = Query("week", pattern="^(day|week|month)$"),
    cohort_by: str = Query("first_event", pattern="^(first_event|referral)$"),
    periods: int = Query(12, ge=1, le=120),
    cohorts: int = Query(12, ge=1, le=120),
) -> dict:
    return _run(filters, service.run_retention, unit, cohort_by, periods, cohorts)


@router.get("/revenue", response_model=schemas.Revenue)
def revenue(
    filters: FiltersDep,
    unit: str = Query("month", pattern="^(day|week|month)$"),
    cohort_by: str = Query("first_event", pattern="^(first_event|referral)$"),
    periods: int = Query(12, ge=1, le=120),
    cohorts: int = Query(12, ge=1, le=120),
) -> dict:
    return _run(filters, service.run_revenue, unit, cohort_by, periods, cohorts)


@router.get("/referral-tree", response_model=schemas.ReferralTree)
def referral_tree(
    filters: FiltersDep,
    top: int = Query(20, ge=1, le=1000),
    max_graph_nodes: int = Query(500, ge=1, le=20000),
) -> dict:
    return _run(filters, service.run_referral_tree, top, max_graph_nodes)


@router.get("/channels", response_model=list[schemas.Channel])
def channels(filters: FiltersDep) -> list[dict]:
    return _run(filters, service.run_channels)


@router.get("/scorecard", response_model=schemas.Scorecard)
def scorecard(
    filters: FiltersDep,
    stage: str = Query("mature", pattern="^(launch|growth|mature)$"),
    weights: str | None = Query(None, description='JSON, e.g. {"scale":20,"activity":30,"conversion":50}'),
) -> dict:
    try:
        parsed = json.loads(weights) if weights else None
    except json.JSONDecodeError as exc:
        raise AnalyticsError(str(exc), field="weights") from exc
    return _run(filters, service.run_scorecard, stage, parsed)


@router.get("/metrics", response_model=list[schemas.MetricDefinition])
def metrics() -> list[dict]:
    """The metric catalogue: every metric's names, unit, formula, population, time and filters."""
    return [catalogue.describe(m) for m in catalogue.METRICS]


@router.get("/benchmarks", response_model=schemas.Benchmarks)
def benchmarks(filters: FiltersDep, sector: str = Query(...)) -> dict:
    return _run(filters, service.run_benchmarks, sector)
