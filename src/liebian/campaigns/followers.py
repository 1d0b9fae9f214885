"""Telling the conversion followers (`ports.Wiring.conversion_followers`: the points ledger) that a
referred purchase qualified or was refunded, in the flow's transaction.

The flows call `qualified` where a referral qualifies on an order and `refunded` where an order is
refunded; both run after the reward ledger's writes (lock order: … → ledger head → points head).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian import ports
from liebian.campaigns.models import CampaignOrder, Referral
from liebian.campaigns.schemas import CampaignRules


def _points_rule(rules: CampaignRules) -> dict[str, Any] | None:
    """The version's points rule, its window defaulting to the campaign's."""
    if rules.points is None:
        return None
    rule = rules.points.model_dump()
    rule["window_start"] = rule["window_start"] or rules.start_at
    rule["window_end"] = rule["window_end"] or rules.end_at
    return rule


def _tell(session: Session, conversion: ports.Conversion) -> None:
    for follower in ports.current().conversion_followers:
        follower(session, conversion)


def qualified(
    session: Session,
    ref: Referral,
    rules: CampaignRules,
    source_ref: str,
    order_id: str | None,
    ordered: tuple[int, datetime] | None = None,
) -> None:
    """The referral qualified on this order (nothing for a qualification at signup). `ordered`: the
    order row's amount and time when the caller has them (it wrote them in this transaction)."""
    followers = ports.current().conversion_followers
    if order_id is None or not followers:
        return
    if ordered is None:
        order = session.scalar(
            select(CampaignOrder).where(
                CampaignOrder.campaign_id == ref.campaign_id, CampaignOrder.order_id == order_id
            )
        )
        if order is None:  # pragma: no cover - the flows insert the order before qualifying on it
            return
        ordered = (order.amount_fen, order.ts)
    _tell(
        session,
        ports.Conversion(
            event="qualified",
            campaign_id=ref.campaign_id,
            order_id=order_id,
            source_ref=source_ref,
            friend_person_id=ref.friend_person_id,
            inviter_person_id=ref.inviter_person_id,
            amount_fen=ordered[0],
            ordered_at=ordered[1],
            held=ref.state == "held",
            points=_points_rule(rules),
        ),
    )


def refunded(session: Session, order: CampaignOrder, source_ref: str, *, actor: str) -> None:
    """The order was refunded (the first time): the followers take back what it earned."""
    ref = session.get(Referral, order.referral_id) if order.referral_id else None
    _tell(
        session,
        ports.Conversion(
            event="refunded",
            campaign_id=order.campaign_id,
            order_id=order.order_id,
            source_ref=source_ref,
            friend_person_id=order.person_id,
            inviter_person_id=ref.inviter_person_id if ref is not None else 0,
            amount_fen=order.amount_fen,
            ordered_at=order.ts,
            actor=actor,
        ),
    )
