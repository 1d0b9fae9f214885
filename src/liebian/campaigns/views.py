"""Read models of a campaign: a participant's progress, the leaderboard (and its settlement when a
leaderboard campaign ends), the referral tree, and per-campaign counts for the console."""

from __future__ import annotations

from dataclasses import asdict
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liebian.campaigns.budget import grant
from liebian.campaigns.common import audit, load_campaign, rules_of, section
from liebian.campaigns.invites import invite_view
from liebian.campaigns.models import Campaign, CapCounter, Invite, Referral
from liebian.campaigns.participants import find_person
from liebian.campaigns.schemas import CampaignRules, Participant
from liebian.rewards import service as ledger


def progress(session: Session, campaign_id: str, p: Participant) -> dict:
    load_campaign(session, campaign_id)  # an unknown campaign answers before the participant
    return progress_of(session, campaign_id, find_person(session, p))


def progress_of(session: Session, campaign_id: str, pid: int) -> dict:
    """The progress of person `pid` (a participant token's person): zeros when they took no part."""
    c = load_campaign(session, campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    counts = dict(
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
        invite_view(i)
        for i in session.scalars(
            select(Invite).where(Invite.campaign_id == c.id, Invite.inviter_person_id == pid)
        )
    ]
    next_tier = next((t.threshold for t in rules.tiers if t.threshold > qualified), None)
    mine = [_reward_dict(r) for r in ledger.rewards_for(session, pid) if r.campaign_id == c.id]
    return {
        "campaign_id": c.id,
        "person_id": pid,
        "invited": sum(counts.values()),
        "by_state": counts,
        "qualified": qualified,
        "cap": rules.per_inviter_cap,
        "next_tier": next_tier,
        "invites": invites,
        "rewards": mine,
    }


def _reward_dict(r: Any) -> dict:
    return {
        k: getattr(r, k)
        for k in (
            "id",
            "campaign_id",
            "person_id",
            "reward_code",
            "value_fen",
            "state",
            "source_ref",
            "created_at",
        )
    }


def leaderboard(session: Session, campaign_id: str, limit: int = 20) -> list[dict]:
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
        {
            "rank": i + 1,
            "person_id": int(k),
            "nickname": names.get(int(k), ""),
            "qualified": used,
            "reached_at": at,
        }
        for i, (k, used, at) in enumerate(rows)
    ]


def settle_leaderboard(session: Session, c: Campaign, rules: CampaignRules, now: datetime) -> list[dict]:
    lb = section(rules, rules.leaderboard, "leaderboard")
    out = []
    for row in leaderboard(session, c.id, lb.top_n):
        reward = lb.rewards[min(row["rank"], len(lb.rewards)) - 1]
        g = grant(
            session,
            c.id,
            row["person_id"],
            reward,
            role=f"rank{row['rank']}",
            key=f"rank:{row['person_id']}",
            source_ref=f"leaderboard:{c.id}",
            hold_until=now,
            held=False,
            reason=f"leaderboard:rank{row['rank']}",
        )
        out.append(asdict(g))
    audit(session, "leaderboard.settle", c.id, {"winners": [g["person_id"] for g in out]})
    return out


def referral_tree(session: Session, campaign_id: str, limit: int | None = None) -> list[dict]:
    """The campaign's referrals in acceptance order (the first `limit` of them when given)."""
    load_campaign(session, campaign_id)
    query = select(Referral).where(Referral.campaign_id == campaign_id).order_by(Referral.id)
    rows = session.scalars(query if limit is None else query.limit(limit))
    return [
        {
            "referral_id": r.id,
            "inviter_person_id": r.inviter_person_id,
            "friend_person_id": r.friend_person_id,
            "parent_referral_id": r.parent_referral_id,
            "generation": r.generation,
            "state": r.state,
            "version": r.version,
            "channel": r.channel,
            "qualified_at": r.qualified_at,
        }
        for r in rows
    ]


def campaign_stats(session: Session, campaign_id: str | None = None) -> dict[str, dict]:
    """Per campaign (or for one): participants (inviters holding a code), referrals, qualified ones
    and referrals by state — two GROUP BY queries however many campaigns (the console's list)."""
    out: dict[str, dict] = {}

    def entry(cid: str) -> dict:
        return out.setdefault(cid, {"participants": 0, "referrals": 0, "qualified": 0, "states": {}})

    inviters = select(Invite.campaign_id, func.count(func.distinct(Invite.inviter_person_id)))
    referrals = select(Referral.campaign_id, Referral.state, func.count(), func.count(Referral.qualified_at))
    if campaign_id is not None:
        inviters = inviters.where(Invite.campaign_id == campaign_id)
        referrals = referrals.where(Referral.campaign_id == campaign_id)
    for cid, n in session.execute(inviters.group_by(Invite.campaign_id)):
        entry(cid)["participants"] = int(n)
    rows = session.execute(referrals.group_by(Referral.campaign_id, Referral.state))
    for cid, state, n, qualified in rows:
        e = entry(cid)
        e["states"][state] = int(n)
        e["referrals"] += int(n)
        e["qualified"] += int(qualified)
    return out
