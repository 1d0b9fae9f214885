"""Read models of a campaign: a participant's progress, the leaderboard (and its settlement when a
leaderboard campaign ends), the referral tree, and per-campaign counts for the console."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liebian.campaigns.budget import Grant, grant
from liebian.campaigns.common import audit, load_campaign, rules_of, section
from liebian.campaigns.invites import invite_view
from liebian.campaigns.models import Campaign, CapCounter, Invite, Referral
from liebian.campaigns.participants import find_person
from liebian.campaigns.schemas import (
    CampaignRules,
    InviteView,
    LeaderboardRow,
    Participant,
    ProgressView,
    ReferralNode,
    RewardSummary,
)
from liebian.rewards import service as ledger


@dataclass(frozen=True)
class CampaignStats:
    """A campaign's counts for the console: inviters holding a code, referrals, qualified ones and
    referrals by state."""

    participants: int = 0
    referrals: int = 0
    qualified: int = 0
    states: dict[str, int] = field(default_factory=dict)


def progress(session: Session, campaign_id: str, p: Participant) -> ProgressView:
    load_campaign(session, campaign_id)  # an unknown campaign answers before the participant
    return progress_of(session, campaign_id, find_person(session, p))


def progress_of(session: Session, campaign_id: str, pid: int) -> ProgressView:
    """The progress of person `pid` (a participant token's person): zeros when they took no part."""
    c = load_campaign(session, campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    counts: dict[str, int] = dict(
        session.execute(
            select(Referral.state, func.count())
            .where(Referral.campaign_id == c.id, Referral.inviter_person_id == pid)
            .group_by(Referral.state)
        ).all()
    )
    qualified = session.execute(
        select(func.count()).where(
            Referral.campaign_id == c.id, Referral.inviter_person_id == pid, Referral.counted.is_(True)
        )
    ).scalar_one()
    invites = [
        InviteView.model_validate(invite_view(i))
        for i in session.scalars(
            select(Invite).where(Invite.campaign_id == c.id, Invite.inviter_person_id == pid)
        )
    ]
    next_tier = next((t.threshold for t in rules.tiers if t.threshold > qualified), None)
    mine = [
        RewardSummary.model_validate(r, from_attributes=True)
        for r in ledger.rewards_for(session, pid)
        if r.campaign_id == c.id
    ]
    return ProgressView(
        campaign_id=c.id,
        person_id=pid,
        invited=sum(counts.values()),
        by_state=counts,
        qualified=qualified,
        cap=rules.per_inviter_cap,
        next_tier=next_tier,
        invites=invites,
        rewards=mine,
    )


def leaderboard(session: Session, campaign_id: str, limit: int = 20) -> list[LeaderboardRow]:
    """Rank by qualified (counted) invites; ties go to whoever reached the count first."""
    load_campaign(session, campaign_id)
    rows = session.execute(
        select(CapCounter.key, CapCounter.used, CapCounter.updated_at)
        .where(CapCounter.campaign_id == campaign_id, CapCounter.scope == "inviter", CapCounter.used > 0)
        .order_by(CapCounter.used.desc(), CapCounter.updated_at, CapCounter.key)
        .limit(limit)
    ).all()
    names: dict[int, str] = {}
    if rows:
        for pid, nick in session.execute(
            select(Invite.inviter_person_id, Invite.nickname).where(
                Invite.campaign_id == campaign_id, Invite.inviter_person_id.in_([int(r[0]) for r in rows])
            )
        ):
            names[pid] = nick or names.get(pid, "")
    return [
        LeaderboardRow(
            rank=i + 1, person_id=int(k), nickname=names.get(int(k), ""), qualified=used, reached_at=at
        )
        for i, (k, used, at) in enumerate(rows)
    ]


def settle_leaderboard(session: Session, c: Campaign, rules: CampaignRules, now: datetime) -> list[Grant]:
    lb = section(rules, rules.leaderboard, "leaderboard")
    out: list[Grant] = []
    for row in leaderboard(session, c.id, lb.top_n):
        reward = lb.rewards[min(row.rank, len(lb.rewards)) - 1]
        g = grant(
            session,
            c.id,
            row.person_id,
            reward,
            role=f"rank{row.rank}",
            key=f"rank:{row.person_id}",
            source_ref=f"leaderboard:{c.id}",
            hold_until=now,
            held=False,
            reason=f"leaderboard:rank{row.rank}",
        )
        out.append(g)
    audit(session, "leaderboard.settle", c.id, {"winners": [g.person_id for g in out]})
    return out


def referral_tree(session: Session, campaign_id: str, limit: int | None = None) -> list[ReferralNode]:
    """The campaign's referrals in acceptance order (the first `limit` of them when given)."""
    load_campaign(session, campaign_id)
    query = select(Referral).where(Referral.campaign_id == campaign_id).order_by(Referral.id)
    rows = session.scalars(query if limit is None else query.limit(limit))
    return [
        ReferralNode(
            referral_id=r.id,
            inviter_person_id=r.inviter_person_id,
            friend_person_id=r.friend_person_id,
            parent_referral_id=r.parent_referral_id,
            generation=r.generation,
            state=r.state,
            version=r.version,
            channel=r.channel,
            qualified_at=r.qualified_at,
        )
        for r in rows
    ]


def campaign_stats(session: Session, campaign_id: str | None = None) -> dict[str, CampaignStats]:
    """Per campaign (or for one): participants (inviters holding a code), referrals, qualified ones
    and referrals by state — two GROUP BY queries however many campaigns (the console's list)."""
    participants: dict[str, int] = {}
    states: dict[str, dict[str, int]] = {}
    qualified_of: dict[str, int] = {}

    inviters = select(Invite.campaign_id, func.count(func.distinct(Invite.inviter_person_id)))
    referrals = select(Referral.campaign_id, Referral.state, func.count(), func.count(Referral.qualified_at))
    if campaign_id is not None:
        inviters = inviters.where(Invite.campaign_id == campaign_id)
        referrals = referrals.where(Referral.campaign_id == campaign_id)
    for cid, n in session.execute(inviters.group_by(Invite.campaign_id)):
        participants[cid] = int(n)
    rows = session.execute(referrals.group_by(Referral.campaign_id, Referral.state))
    for cid, state, n, qualified in rows:
        states.setdefault(cid, {})[state] = int(n)
        qualified_of[cid] = qualified_of.get(cid, 0) + int(qualified)
    return {
        cid: CampaignStats(
            participants=participants.get(cid, 0),
            referrals=sum(states.get(cid, {}).values()),
            qualified=qualified_of.get(cid, 0),
            states=states.get(cid, {}),
        )
        for cid in {**participants, **states}
    }
