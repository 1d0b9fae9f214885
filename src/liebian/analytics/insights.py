"""Saved insights and dashboards, and running an insight: a kind and its params (insights_schemas)
become a call of the same analytics service functions the HTTP API and the CLI use — one
definition of every number, no second query.

One operation per function, each taking a session (Dispatch's service style); the routes are in
analytics/insights_api.py, the console builder in web/pages/insights.py.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from liebian.analytics import insights_trends, service
from liebian.analytics.common import AnalyticsError, Filters
from liebian.analytics.funnel import ORDER_PAID
from liebian.analytics.insights_funnel import Exclusion
from liebian.analytics.insights_schemas import (
    FunnelParams,
    InsightFilters,
    Params,
    RetentionParams,
    TrendsParams,
    parse_params,
)
from liebian.analytics.models import Dashboard, DashboardItem, SavedInsight
from liebian.db.base import utcnow
from liebian.errors import NotFound

MAX_EVENT_NAMES = 500  # the builder's event list: the most frequent names


def filters_of(f: InsightFilters) -> Filters:
    return service.make_filters(f.start, f.end, f.channels, f.campaigns)


def funnel_args(p: FunnelParams) -> dict[str, Any]:
    """run_funnel's arguments for builder params (the console caches by them, the API answers them)."""
    return {
        "steps": ",".join(p.steps),
        "window_days": p.window_days,
        "breakdown": p.breakdown,
        "mode": p.mode,
        "exclusions": tuple(Exclusion(x.event, x.from_step, x.to_step) for x in p.exclusions),
    }


def run_trends(
    filters: Filters, events: Sequence[str], interval: str = "day", breakdown: str | None = None,
    engine: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    with service.frame(filters, engine) as fr:
        return {"filters": filters.describe()} | insights_trends.trends(fr, events, interval, breakdown)


def run_event_names(engine: str | None = None) -> list[str]:
    """The event names the warehouse holds, most frequent first, with `order_paid` (paid orders)."""
    with service.frame(None, engine) as fr:
        t = fr.table("events")
        counted = t.group_by("event").aggregate(n=t.count()).order_by([lambda x: x.n.desc(), "event"])
        names = [str(n) for n in fr.execute(counted.limit(MAX_EVENT_NAMES))["event"] if n]
    return [*names, ORDER_PAID]


def run(kind: str, params: Params) -> dict[str, Any]:
    """An insight's answer, in the shape of the analytics API's route for the kind."""
    filters = filters_of(params.filters)
    if isinstance(params, FunnelParams):
        return service.run_funnel(filters, **funnel_args(params))
    if isinstance(params, RetentionParams):
        return service.run_retention(filters, params.unit, params.cohort_by, params.periods, params.cohorts)
    if isinstance(params, TrendsParams):
        return run_trends(filters, params.events, params.interval, params.breakdown)
    raise AnalyticsError(f"kind: {kind!r} cannot be run", field="kind")


# --- saved insights ------------------------------------------------------------------------------


def _insight_view(row: SavedInsight) -> dict[str, Any]:
    return {
        "id": row.id,
        "name": row.name,
        "kind": row.kind,
        "params": json.loads(row.params),
        "description": row.description,
        "created_by": row.created_by,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def _checked(kind: str, params: dict[str, Any]) -> str:
    try:
        return parse_params(kind, params).model_dump_json()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise AnalyticsError(f"params.{where}: {first['msg']}", field=f"params.{where}") from None
    except ValueError as exc:
        raise AnalyticsError(str(exc), field="kind") from None


def save_insight(
    session: Session, *, name: str, kind: str, params: dict[str, Any], description: str = "", actor: str
) -> dict[str, Any]:
    row = SavedInsight(
        name=name.strip(), kind=kind, params=_checked(kind, params), description=description, created_by=actor
    )
    session.add(row)
    session.flush()
    return _insight_view(row)


def update_insight(
    session: Session, insight_id: int, *, name: str, kind: str, params: dict[str, Any], description: str = ""
) -> dict[str, Any]:
    row = _insight(session, insight_id)
    row.name, row.kind, row.params = name.strip(), kind, _checked(kind, params)
    row.description, row.updated_at = description, utcnow()
    session.flush()
    return _insight_view(row)


def _insight(session: Session, insight_id: int) -> SavedInsight:
    row = session.get(SavedInsight, insight_id)
    if row is None:
        raise NotFound("not_found", f"insight {insight_id} does not exist", field="insight_id")
    return row


def get_insight(session: Session, insight_id: int) -> dict[str, Any]:
    return _insight_view(_insight(session, insight_id))


def list_insights(session: Session, kind: str | None = None) -> list[dict[str, Any]]:
    q = select(SavedInsight).order_by(SavedInsight.id.desc())
    if kind:
        q = q.where(SavedInsight.kind == kind)
    return [_insight_view(r) for r in session.scalars(q)]


def delete_insight(session: Session, insight_id: int) -> dict[str, Any]:
    row = _insight(session, insight_id)
    view = _insight_view(row)
    session.execute(delete(DashboardItem).where(DashboardItem.insight_id == insight_id))
    session.delete(row)
    session.flush()
    return view


def params_of(insight: dict[str, Any]) -> Params:
    """A stored insight's params, validated again (a stored document must still make sense)."""
    return parse_params(insight["kind"], insight["params"])


def run_insight(session: Session, insight_id: int) -> dict[str, Any]:
    insight = get_insight(session, insight_id)
    return {"insight": insight, "result": run(insight["kind"], params_of(insight))}


# --- dashboards ------------------------------------------------------------------------------------


def _dashboard_view(session: Session, row: Dashboard) -> dict[str, Any]:
    items = session.scalars(
        select(DashboardItem.insight_id)
        .where(DashboardItem.dashboard_id == row.id)
        .order_by(DashboardItem.position)
    )
    return {
        "id": row.id,
        "name": row.name,
        "insight_ids": list(items),
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def _set_items(session: Session, dashboard_id: int, insight_ids: Sequence[int]) -> None:
    if len(set(insight_ids)) != len(insight_ids):
        raise AnalyticsError("insight_ids: an insight is listed twice", field="insight_ids")
    for i in insight_ids:
        _insight(session, i)  # NotFound names the missing one
    session.execute(delete(DashboardItem).where(DashboardItem.dashboard_id == dashboard_id))
    session.add_all(
        DashboardItem(dashboard_id=dashboard_id, position=n, insight_id=i) for n, i in enumerate(insight_ids)
    )


def create_dashboard(
    session: Session, *, name: str, insight_ids: Sequence[int], actor: str
) -> dict[str, Any]:
    row = Dashboard(name=name.strip(), created_by=actor)
    session.add(row)
    session.flush()
    _set_items(session, row.id, insight_ids)
    session.flush()
    return _dashboard_view(session, row)


def _dashboard(session: Session, dashboard_id: int) -> Dashboard:
    row = session.get(Dashboard, dashboard_id)
    if row is None:
        raise NotFound("not_found", f"dashboard {dashboard_id} does not exist", field="dashboard_id")
    return row


def update_dashboard(
    session: Session, dashboard_id: int, *, name: str, insight_ids: Sequence[int]
) -> dict[str, Any]:
    row = _dashboard(session, dashboard_id)
    row.name = name.strip()
    _set_items(session, row.id, insight_ids)
    session.flush()
    return _dashboard_view(session, row)


def get_dashboard(session: Session, dashboard_id: int) -> dict[str, Any]:
    return _dashboard_view(session, _dashboard(session, dashboard_id))


def list_dashboards(session: Session) -> list[dict[str, Any]]:
    return [
        _dashboard_view(session, r) for r in session.scalars(select(Dashboard).order_by(Dashboard.id.desc()))
    ]


def delete_dashboard(session: Session, dashboard_id: int) -> dict[str, Any]:
    row = _dashboard(session, dashboard_id)
    view = _dashboard_view(session, row)
    session.execute(delete(DashboardItem).where(DashboardItem.dashboard_id == dashboard_id))
    session.delete(row)
    session.flush()
    return view
