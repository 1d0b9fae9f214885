"""Share-for-coupon claims: a sharer whose link was opened often enough claims the coupon (moved out
of `flows`, which holds the referral loop)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liebian.campaigns.budget import grant
from liebian.campaigns.common import CampaignError, audit, live_rules, load_campaign
from liebian.campaigns.models import Invite
from liebian.campaigns.participants import find_person
from liebian.campaigns.schemas import Participant
from liebian.campaigns.strategies import strategy_for
from liebian.db.base import utcnow


def claim(
    session: Session, campaign_id: str, p: Participant, *, now: datetime | None = None
) -> dict[str, Any]:
    """Share-for-coupon: a participant whose link was opened `shares_required` times claims the coupon."""
    now = now or utcnow()
    c = load_campaign(session, campaign_id)
    rules = live_rules(session, c, now)
    reward = strategy_for(rules.type).claim_reward(rules)
    if reward is None:
        raise CampaignError(
            409, "not_share_coupon", f"campaign {c.id} is a {rules.type} campaign", field="campaign_id"
        )
    pid = find_person(session, p)
    clicks = session.execute(
        select(func.coalesce(func.sum(Invite.clicks), 0)).where(
            Invite.campaign_id == c.id, Invite.inviter_person_id == pid
        )
    ).scalar_one()
    if clicks < rules.shares_required:
        raise CampaignError(
            409,
            "not_shared",
            f"the link was opened {clicks} times, {rules.shares_required} needed",
            field="id",
        )
    g = grant(
        session,
        c.id,
        pid,
        reward,
        role="sharer",
        key=f"claim:{pid}",
        source_ref=f"claim:{c.id}:{pid}",
        hold_until=now,
        held=False,
        reason=f"{rules.type}:claim",
    )
    if g.state == "budget_exhausted":
        raise CampaignError(
            409, "budget_exhausted", "the campaign's budget or stock is used up", field="campaign_id"
        )
    audit(
        session,
        "coupon.claim",
        c.id,
        {"person_id": pid, "reward_id": g.reward_id},
        entity="person",
        entity_id=pid,
    )
    return asdict(g)
