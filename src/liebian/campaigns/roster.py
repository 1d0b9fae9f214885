"""A campaign's participants for the console (web/pages/participants.py): each inviter with the
nickname they sent with their invites, their live invite (link and signed poster path), clicks,
the friends they brought (accepted, and verified: counted toward the tiers) and their rewards.

Paged by the time an inviter first took a link; one query per concern for a page, not per row
(rewards excepted: the ledger answers per person)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from liebian.campaigns.common import load_campaign
from liebian.campaigns.invites import invite_code, invite_link, poster_path
from liebian.campaigns.models import Invite, Referral
from liebian.db.base import utcnow
from liebian.identity import service as identity
from liebian.rewards import service as ledger

# Referral states of friends who did not join through the inviter (refused or counted elsewhere).
NOT_JOINED = ("blocked", "duplicate")


@dataclass
class Roster:
    person_id: int
    first_at: datetime
    clicks: int
    nickname: str = ""
    masked: str = ""
    link: str = ""
    poster: str = ""  # the signed poster path (on the console's own host)
    accepted: int = 0
    verified: int = 0
    rewards: dict[str, int] = field(default_factory=dict)  # state → count


def count(session: Session, campaign_id: str) -> int:
    load_campaign(session, campaign_id)
    return session.execute(
        select(func.count(func.distinct(Invite.inviter_person_id))).where(Invite.campaign_id == campaign_id)
    ).scalar_one()


def page(session: Session, campaign_id: str, *, limit: int, offset: int, masked: bool = True) -> list[Roster]:
    """Participants `offset`…`offset+limit` in the order they first took a link (`masked`: look up
    a masked identifier for each; False for a viewer who may not look persons up)."""
    load_campaign(session, campaign_id)
    rows = [
        Roster(int(pid), first, int(clicks or 0))
        for pid, first, clicks in session.execute(
            select(Invite.inviter_person_id, func.min(Invite.created_at), func.sum(Invite.clicks))
            .where(Invite.campaign_id == campaign_id)
            .group_by(Invite.inviter_person_id)
            .order_by(func.min(Invite.created_at), Invite.inviter_person_id)
            .limit(limit)
            .offset(offset)
        )
    ]
    if not rows:
        return rows
    by_id = {r.person_id: r for r in rows}
    _invites(session, campaign_id, by_id)
    _referrals(session, campaign_id, by_id)
    for r in rows:
        for reward in ledger.list_rewards(
            session, campaign_id=campaign_id, person_id=r.person_id, limit=1000
        ):
            r.rewards[reward.state] = r.rewards.get(reward.state, 0) + 1
    if masked:  # the identity domain's choice of the identifier a person is shown by, masked
        shown = identity.display_identifiers(session, list(by_id))
        for r in rows:
            r.masked = shown.get(r.person_id, "")
    return rows


def _invites(session: Session, campaign_id: str, by_id: dict[int, Roster]) -> None:
    """Nickname (the latest one sent) and the live invite (the newest unexpired; else the newest)."""
    now = utcnow()
    chosen: dict[int, Invite] = {}
    for inv in session.scalars(
        select(Invite)
        .where(Invite.campaign_id == campaign_id, Invite.inviter_person_id.in_(list(by_id)))
        .order_by(Invite.id)
    ):
        r = by_id[inv.inviter_person_id]
        r.nickname = inv.nickname or r.nickname
        current = chosen.get(inv.inviter_person_id)
        if current is None or inv.expires_at > now or current.expires_at <= now:
            chosen[inv.inviter_person_id] = inv
    for pid, inv in chosen.items():
        code = invite_code(inv)
        by_id[pid].link = invite_link(code)
        by_id[pid].poster = poster_path(code, inv.expires_at)


def _referrals(session: Session, campaign_id: str, by_id: dict[int, Roster]) -> None:
    joined = func.sum(case((Referral.state.in_(NOT_JOINED), 0), else_=1))
    verified = func.sum(case((Referral.counted.is_(True), 1), else_=0))
    for pid, n_joined, n_verified in session.execute(
        select(Referral.inviter_person_id, joined, verified)
        .where(Referral.campaign_id == campaign_id, Referral.inviter_person_id.in_(list(by_id)))
        .group_by(Referral.inviter_person_id)
    ):
        by_id[pid].accepted, by_id[pid].verified = int(n_joined or 0), int(n_verified or 0)
