"""Other costs per campaign and period (media, staff, tools, other), entered by the operator, and
what they add to the KPI sheet's costs (CAC, ROI, LTV/CAC) for a period and campaign filter.

Pro-rating: a cost is spread evenly over the calendar days of its period [start_date, end_date]
(display zone, both inclusive). A query period [start, end] counts the share of those days inside
it: amount × overlapping days ÷ the cost's days. Shares are summed exactly and the total rounded
half-up to a whole fen once. An open end of the query period is unbounded on that side, so a query
without dates counts every cost in full. A campaign filter counts the costs of those campaigns; a
cost entered without a campaign (brand-wide) counts only when no campaign is selected. Costs carry
no persons or channels: a segment or channel filter does not narrow them (like the reward cost).

`other_cost_fen(filters)` is the provider analytics asks through the wiring
(`ports.Wiring.other_cost`, liebian/bootstrap.py).
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.costs.models import CostEntry
from liebian.costs.schemas import CATEGORIES, check_period
from liebian.db.session import session_scope
from liebian.errors import Invalid, NotFound

if TYPE_CHECKING:  # the type only: analytics imports Ibis, which entering a cost does not need
    from liebian.analytics.common import Filters


def _as_dict(row: CostEntry) -> dict[str, Any]:
    return {
        "id": row.id,
        "campaign_id": row.campaign_id,
        "category": row.category,
        "amount_fen": row.amount_fen,
        "start_date": row.start_date,
        "end_date": row.end_date,
        "note": row.note,
        "created_by": row.created_by,
        "created_at": row.created_at,
    }


def add_cost(
    session: Session,
    *,
    campaign_id: str | None,
    category: str,
    amount_fen: int,
    start_date: date,
    end_date: date,
    note: str,
    actor: str,
) -> dict[str, Any]:
    """Record a cost (validated at the edge already; checked again here for other callers)."""
    if category not in CATEGORIES:
        raise Invalid(
            "invalid", f"category: {category!r} is not one of {', '.join(CATEGORIES)}", field="category"
        )
    try:
        check_period(start_date, end_date)
    except ValueError as exc:
        raise Invalid("invalid", str(exc), field=str(exc).split(":")[0]) from None
    row = CostEntry(
        campaign_id=campaign_id,
        category=category,
        amount_fen=amount_fen,
        start_date=start_date,
        end_date=end_date,
        note=note,
        created_by=actor,
    )
    session.add(row)
    session.flush()
    return _as_dict(row)


def list_costs(
    session: Session, campaign_id: str | None = None, start: date | None = None, end: date | None = None
) -> list[dict[str, Any]]:
    """The costs of a campaign (all when None) whose period overlaps [start, end] (open ends open),
    oldest period first."""
    query = select(CostEntry).order_by(CostEntry.start_date, CostEntry.id)
    if campaign_id is not None:
        query = query.where(CostEntry.campaign_id == campaign_id)
    if start is not None:
        query = query.where(CostEntry.end_date >= start)
    if end is not None:
        query = query.where(CostEntry.start_date <= end)
    return [_as_dict(row) for row in session.scalars(query)]


def remove_cost(session: Session, cost_id: int) -> dict[str, Any]:
    """Delete a cost; NotFound (404) when there is none with that id."""
    row = session.get(CostEntry, cost_id)
    if row is None:
        raise NotFound("not_found", f"cost {cost_id}", field="cost_id")
    removed = _as_dict(row)
    session.delete(row)
    session.flush()
    return removed


def share_in_period(
    amount_fen: int, cost_start: date, cost_end: date, start: date | None, end: date | None
) -> Fraction:
    """The part of a cost spread evenly over [cost_start, cost_end] that falls in [start, end]."""
    low = cost_start if start is None else max(cost_start, start)
    high = cost_end if end is None else min(cost_end, end)
    overlap = (high - low).days + 1
    if overlap <= 0:
        return Fraction(0)
    return Fraction(amount_fen * overlap, (cost_end - cost_start).days + 1)


def round_fen(value: Fraction) -> int:
    """A non-negative fraction of a fen rounded half-up to a whole fen (exact integer arithmetic)."""
    return (2 * value.numerator + value.denominator) // (2 * value.denominator)


def other_cost_fen(filters: Filters) -> int:
    """The operator-entered costs, in fen, of what `filters` select (see the module's doc)."""
    query = select(CostEntry.amount_fen, CostEntry.start_date, CostEntry.end_date)
    if filters.campaigns:
        query = query.where(CostEntry.campaign_id.in_(filters.campaigns))
    if filters.start is not None:
        query = query.where(CostEntry.end_date >= filters.start)
    if filters.end is not None:
        query = query.where(CostEntry.start_date <= filters.end)
    with session_scope() as session:
        rows = session.execute(query).all()
    total = sum(
        (share_in_period(amount, first, last, filters.start, filters.end) for amount, first, last in rows),
        Fraction(0),
    )
    return round_fen(total)
