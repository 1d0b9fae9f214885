"""Person ids in the campaign's tables follow OneID merges: `follow_merges` is the campaign
engine's `ports.MergeFollower`, wired in `liebian.bootstrap`.

A merged person's invites, referrals, orders, groups and inviter counters move to the surviving
person; a referral that becomes a duplicate or a self-referral is marked so.
"""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from liebian.campaigns import visits
from liebian.campaigns.budget import bump
from liebian.campaigns.models import CampaignOrder, CapCounter, Group, Invite, Referral


def follow_merges(session: Session, final: dict[int, int]) -> None:
    """Person ids in campaign tables follow OneID merges (a `ports.MergeFollower`, wired in
    `liebian.bootstrap`); `final` maps each merged person to the surviving one."""
    # Most merges (bulk identity imports) touch persons who never took part in a campaign: find
    # the few that did with a handful of set-based queries, then rewrite only those.
    involved = _campaign_participants(session, list(final))
    for merged, survivor in final.items():
        if merged in involved:
            _move_person(session, merged, survivor)
    session.flush()


def _move_person(session: Session, merged: int, survivor: int) -> None:
    visits.follow_merge(session, merged, survivor)
    session.execute(
        update(Invite).where(Invite.inviter_person_id == merged).values(inviter_person_id=survivor)
    )
    session.execute(
        update(Referral).where(Referral.inviter_person_id == merged).values(inviter_person_id=survivor)
    )
    dup_campaigns = select(Referral.campaign_id).where(Referral.friend_person_id == survivor)
    session.execute(
        update(Referral)
        .where(Referral.friend_person_id == merged, Referral.campaign_id.in_(dup_campaigns))
        .values(state="duplicate", note="friend merged into a person already referred")
    )
    session.execute(
        update(Referral)
        .where(Referral.friend_person_id == merged, Referral.state != "duplicate")
        .values(friend_person_id=survivor)
    )
    # A merge can reveal that inviter and friend are one human: such referrals are held for fraud
    # review (anti-fraud's merge follower opens the case and holds their rewards); a decision
    # blocks them, never the merge itself.
    session.execute(
        update(Referral)
        .where(
            Referral.friend_person_id == survivor,
            Referral.inviter_person_id == survivor,
            Referral.state.in_(("accepted", "held")),
        )
        .values(state="held", note="self-referral found by a OneID merge")
    )
    session.execute(update(CampaignOrder).where(CampaignOrder.person_id == merged).values(person_id=survivor))
    session.execute(
        update(Group).where(Group.initiator_person_id == merged).values(initiator_person_id=survivor)
    )
    for counter in session.scalars(
        select(CapCounter).where(CapCounter.scope == "inviter", CapCounter.key == str(merged))
    ).all():
        bump(session, counter.campaign_id, "inviter", str(survivor), None, counter.used)
        session.delete(counter)


def _campaign_participants(session: Session, person_ids: list[int]) -> set[int]:
    columns = (
        Invite.inviter_person_id,
        Referral.inviter_person_id,
        Referral.friend_person_id,
        CampaignOrder.person_id,
        Group.initiator_person_id,
    )
    found: set[int] = set()
    for start in range(0, len(person_ids), 500):
        chunk = person_ids[start : start + 500]
        for column in columns:
            found.update(session.scalars(select(column).where(column.in_(chunk)).distinct()))
        keys = session.scalars(
            select(CapCounter.key).where(
                CapCounter.scope == "inviter", CapCounter.key.in_([str(p) for p in chunk])
            )
        )
        found.update(int(k) for k in keys)
    return found
