"""What the rewards cost: the reward-cost provider the analytics KPIs (CAC, ROI, LTV/CAC) ask through
the wiring (`ports.Wiring.reward_cost`, liebian/bootstrap.py).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.identity.models import Person
from liebian.rewards.models import LedgerEntry, Reward
from liebian.rewards.service import ISSUED, REDEEMED

if TYPE_CHECKING:  # the type only: analytics imports Ibis, which the ledger does not need
    from liebian.analytics.common import Filters

# A reward costs what it is worth once it was issued; a revoked one was clawed back, and pending,
# approved or rejected ones were never paid.
COSTING_STATES = (ISSUED, REDEEMED)


def _utc_start_of(day: date, zone: str) -> datetime:
    """Naive UTC instant at which the local calendar `day` begins in `zone`."""
    return datetime.combine(day, time.min, tzinfo=ZoneInfo(zone)).astimezone(UTC).replace(tzinfo=None)


def reward_cost_fen(filters: Filters) -> int:
    """The reward cost, in fen, of what `filters` select — the value of the rewards the ledger issued:

    - rewards now **issued or redeemed** (pending, approved, rejected and revoked ones cost nothing:
      a revoked reward was clawed back), at their value;
    - whose **issue** — the ledger entry that made them issued — falls on a day of [start, end],
      calendar days in the display zone (`timezone`), like every KPI's period; open ends are open;
    - of the filters' **campaigns** (all when none);
    - granted to a person of the **segment**, following OneID merges (a reward stays on the person
      id it was granted to; the segment holds the ids of today's persons); everyone when no segment.

    Rewards carry no channel: a channel filter does not narrow the cost (it is the cost of the
    selected campaigns across all their channels).
    """
    query = (
        select(func.coalesce(Person.merged_into, Reward.person_id), Reward.value_fen)
        .select_from(Reward)
        .join(
            LedgerEntry,
            (LedgerEntry.reward_id == Reward.id)
            & (LedgerEntry.kind == "transition")
            & (LedgerEntry.to_state == ISSUED),
        )
        .outerjoin(Person, Person.id == Reward.person_id)
        .where(Reward.state.in_(COSTING_STATES))
    )
    zone = get_settings().timezone
    if filters.start is not None:
        query = query.where(LedgerEntry.ts >= _utc_start_of(filters.start, zone))
    if filters.end is not None:
        query = query.where(LedgerEntry.ts < _utc_start_of(filters.end + timedelta(days=1), zone))
    if filters.campaigns:
        query = query.where(Reward.campaign_id.in_(filters.campaigns))
    with session_scope() as session:
        if filters.segment is None:
            return int(session.scalar(query.with_only_columns(func.coalesce(func.sum(Reward.value_fen), 0))))
        # A segment can hold more ids than a statement may bind: filter the (fewer) rewards here.
        return sum(value for person, value in session.execute(query) if person in filters.segment)
