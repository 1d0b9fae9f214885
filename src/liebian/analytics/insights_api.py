"""HTTP endpoints of the insight builder: saved insights (`/api/v1/insights`), dashboards
(`/api/v1/dashboards`), trends (`/api/v1/analytics/trends`) and the builder's event names."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from liebian.analytics import insights
from liebian.analytics.api import FiltersDep
from liebian.analytics.insights_schemas import (
    MAX_TREND_EVENTS,
    DashboardIn,
    DashboardOut,
    EventName,
    EventNameList,
    InsightIn,
    InsightOut,
    InsightResult,
    Trends,
)
from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.errors import blame
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1", tags=["insights"])


@router.get("/analytics/trends", response_model=Trends)
def trends(
    filters: FiltersDep,
    event: Annotated[
        list[EventName], Query(min_length=1, max_length=MAX_TREND_EVENTS, description="repeatable")
    ],
    interval: Annotated[str, Query(pattern="^(day|week|month)$")] = "day",
    breakdown: Annotated[str | None, Query(pattern="^(channel|campaign)$")] = None,
) -> dict[str, Any]:
    """Events (or `order_paid`) per day/week/month of the display zone: counts and distinct persons."""
    with blame("query"):
        return insights.run_trends(filters, event, interval, breakdown)


@router.get("/insights/events", response_model=EventNameList)
def event_names() -> dict[str, list[str]]:
    """The event names the builder offers: those in the warehouse, most frequent first, and order_paid."""
    return {"events": insights.run_event_names()}


@router.get("/insights", response_model=list[InsightOut])
def list_insights(
    kind: Annotated[str | None, Query(pattern="^(funnel|retention|trends)$")] = None,
) -> list[dict]:
    with session_scope() as s:
        return insights.list_insights(s, kind)


@router.post("/insights", status_code=201, response_model=InsightOut)
def save(body: InsightIn, request: Request) -> dict[str, Any]:
    with session_scope() as s:
        return insights.save_insight(s, **body.model_dump(), actor=principal_of(request).name)


@router.get("/insights/{insight_id}", response_model=InsightOut)
def get(insight_id: Int64) -> dict[str, Any]:
    with session_scope() as s:
        return insights.get_insight(s, insight_id)


@router.put("/insights/{insight_id}", response_model=InsightOut)
def update(insight_id: Int64, body: InsightIn) -> dict[str, Any]:
    with session_scope() as s:
        return insights.update_insight(s, insight_id, **body.model_dump())


@router.delete("/insights/{insight_id}", response_model=InsightOut)
def remove(insight_id: Int64) -> dict[str, Any]:
    with session_scope() as s:
        return insights.delete_insight(s, insight_id)


@router.get("/insights/{insight_id}/result", response_model=InsightResult)
def result(insight_id: Int64) -> dict[str, Any]:
    """The insight run now: the same answer as the analytics route of its kind with its params."""
    with session_scope() as s:
        return insights.run_insight(s, insight_id)


@router.get("/dashboards", response_model=list[DashboardOut])
def list_dashboards() -> list[dict[str, Any]]:
    with session_scope() as s:
        return insights.list_dashboards(s)


@router.post("/dashboards", status_code=201, response_model=DashboardOut)
def create_dashboard(body: DashboardIn, request: Request) -> dict[str, Any]:
    with session_scope() as s:
        return insights.create_dashboard(s, **body.model_dump(), actor=principal_of(request).name)


@router.get("/dashboards/{dashboard_id}", response_model=DashboardOut)
def get_dashboard(dashboard_id: Int64) -> dict[str, Any]:
    with session_scope() as s:
        return insights.get_dashboard(s, dashboard_id)


@router.put("/dashboards/{dashboard_id}", response_model=DashboardOut)
def update_dashboard(dashboard_id: Int64, body: DashboardIn) -> dict[str, Any]:
    with session_scope() as s:
        return insights.update_dashboard(s, dashboard_id, **body.model_dump())


@router.delete("/dashboards/{dashboard_id}", response_model=DashboardOut)
def delete_dashboard(dashboard_id: Int64) -> dict[str, Any]:
    with session_scope() as s:
        return insights.delete_dashboard(s, dashboard_id)


@router.get("/dashboards/{dashboard_id}/results", response_model=list[InsightResult])
def dashboard_results(dashboard_id: Int64) -> list[dict[str, Any]]:
    """Every insight of the dashboard, run now, in the dashboard's order."""
    with session_scope() as s:
        ids = insights.get_dashboard(s, dashboard_id)["insight_ids"]
        return [insights.run_insight(s, i) for i in ids]
