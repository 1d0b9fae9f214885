"""One strategy per campaign type: the hooks the flows call instead of asking for the type's name.

A strategy says what its rules must contain, whether a friend joins a group when accepting,
whether a qualified friend counts towards the inviter (cap, tiers, leaderboard), what the inviter
earns at a given count, what happens once a friend qualified (a group completes), what a
participant may claim, and what ending the campaign does (a leaderboard grants its ranks).

Rewards are not granted here: a hook hands each `Award` to the `give` callable of the flow, which
reserves budget and grants through the ledger in the order the hooks hand them over.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from liebian.campaigns.common import CampaignError, audit, ins, section
from liebian.campaigns.models import Campaign, Group, Invite, Referral
from liebian.campaigns.schemas import CAMPAIGN_TYPES, CampaignRules, Reward
from liebian.campaigns.views import settle_leaderboard
from liebian.db.session import rowcount


@dataclass(frozen=True)
class Award:
    """A reward a hook gives: to whom, in which role, under which idempotency key.

    The key names the event that earned the reward (the tier and the referral that reached it), so
    a retried request maps to the same reward while a reward revoked by a refund can be earned
    again by a later friend. `once`: the person holds at most one live (not rejected or revoked)
    reward of this role in the campaign; the flow skips the award while one is live."""

    person_id: int
    reward: Reward | None  # None: the rules define no such reward, nothing is given
    role: str
    key: str
    held: bool | None = None  # None: held for review when the qualifying referral is held
    once: bool = False


Give = Callable[[Award], None]


class CampaignType:
    """The default behaviour; each type overrides what it does differently."""

    name = ""
    counts_inviter = True  # a qualified friend raises the inviter's counter (cap, tiers, ranks)

    def problems(self, rules: CampaignRules) -> list[tuple[str, str]]:
        """(field, reason) for each part of the rules this type needs and lacks."""
        return []

    def group_for(
        self, session: Session, rules: CampaignRules, inviter: int, parent: Any, inv: Invite, now: datetime
    ) -> int | None:
        """The group a friend accepting `inv` joins (`parent`: the inviter's own referral row)."""
        return None

    def on_counted(self, rules: CampaignRules, ref: Referral, count: int, give: Give) -> None:
        """The inviter's counter reached `count` with this referral."""

    def after_qualify(
        self, session: Session, ref: Referral, rules: CampaignRules, give: Give, now: datetime
    ) -> None:
        """The friend of `ref` qualified (after the friend's and the inviter's own rewards)."""

    def claim_reward(self, rules: CampaignRules) -> Reward | None:
        """What a participant claims by sharing; None: this type has no claims."""
        return None

    def at_end(self, session: Session, c: Campaign, rules: CampaignRules, now: datetime) -> None:
        """The campaign ends (once)."""


def _needs(rules: CampaignRules, field: str, present: bool, what: str | None = None) -> list[tuple[str, str]]:
    return [] if present else [(field, f"{rules.type} campaigns need {what or field}")]


class InviteTask(CampaignType):
    """邀请有礼: tiers of rewards for the inviter at 1, 3, 5 … qualified friends."""

    name = "invite_task"

    def problems(self, rules: CampaignRules) -> list[tuple[str, str]]:
        return _needs(rules, "tiers", bool(rules.tiers))

    def on_counted(self, rules: CampaignRules, ref: Referral, count: int, give: Give) -> None:
        """Every tier the count reaches that the inviter holds no live reward of: the tier just
        reached, and a lower one whose reward a refund revoked (earned again by this friend)."""
        inviter = ref.inviter_person_id
        for tier in rules.tiers:
            if tier.threshold <= count:
                key = f"tier:{inviter}:{tier.threshold}:ref:{ref.id}"
                give(Award(inviter, tier.reward, f"tier{tier.threshold}", key, once=True))


class DoubleSided(CampaignType):
    """老带新双向奖励: inviter and friend are each rewarded per qualified friend."""

    name = "double_sided"

    def problems(self, rules: CampaignRules) -> list[tuple[str, str]]:
        present = bool(rules.inviter_reward and rules.friend_reward)
        return _needs(rules, "inviter_reward", present, "inviter_reward and friend_reward")

    def on_counted(self, rules: CampaignRules, ref: Referral, count: int, give: Give) -> None:
        give(Award(ref.inviter_person_id, rules.inviter_reward, "inviter", f"inviter:{ref.id}"))


class Assist(CampaignType):
    """助力: the inviter's reward unlocks at the required number of assists."""

    name = "assist"

    def problems(self, rules: CampaignRules) -> list[tuple[str, str]]:
        return _needs(rules, "assist", rules.assist is not None)

    def on_counted(self, rules: CampaignRules, ref: Referral, count: int, give: Give) -> None:
        assist = section(rules, rules.assist, "assist")
        if count >= assist.required:
            inviter = ref.inviter_person_id
            give(Award(inviter, assist.reward, "assist", f"assist:{inviter}:ref:{ref.id}", once=True))


class ShareCoupon(CampaignType):
    """分享领券: the sharer claims a coupon once the link was opened often enough."""

    name = "share_coupon"

    def problems(self, rules: CampaignRules) -> list[tuple[str, str]]:
        return _needs(rules, "inviter_reward", rules.inviter_reward is not None)

    def claim_reward(self, rules: CampaignRules) -> Reward | None:
        return rules.inviter_reward


class Leaderboard(CampaignType):
    """排行榜: ranked by qualified friends; the ranks' rewards are granted when the campaign ends."""

    name = "leaderboard"

    def problems(self, rules: CampaignRules) -> list[tuple[str, str]]:
        return _needs(rules, "leaderboard", rules.leaderboard is not None)

    def at_end(self, session: Session, c: Campaign, rules: CampaignRules, now: datetime) -> None:
        settle_leaderboard(session, c, rules, now)


class GroupBuy(CampaignType):
    """拼团: friends join the initiator's group; when it is full, every member is rewarded.

    Friends count towards the group, not the inviter (their referrals are not `counted`)."""

    name = "group_buy"
    counts_inviter = False

    def problems(self, rules: CampaignRules) -> list[tuple[str, str]]:
        return _needs(rules, "group", rules.group is not None)

    def group_for(
        self, session: Session, rules: CampaignRules, inviter: int, parent: Any, inv: Invite, now: datetime
    ) -> int:
        """The inviter's own group, or the group the inviter joined."""
        if parent is not None and parent[2] is not None:
            gid = parent[2]
        else:
            window = timedelta(hours=section(rules, rules.group, "group").window_hours)
            session.execute(
                ins(session, Group)
                .values(
                    campaign_id=inv.campaign_id,
                    initiator_person_id=inviter,
                    opened_at=inv.created_at,
                    deadline=inv.created_at + window,
                    members_done=0,
                    state="open",
                )
                .on_conflict_do_nothing()
            )
            gid = session.execute(
                select(Group.id).where(
                    Group.campaign_id == inv.campaign_id, Group.initiator_person_id == inviter
                )
            ).scalar_one()
        g = session.get_one(Group, gid)
        if g.state != "open":
            raise CampaignError(409, "group_complete", "this group is already complete", field="code")
        if now > g.deadline:
            raise CampaignError(
                409, "group_expired", f"the group closed at {g.deadline:%Y-%m-%d %H:%M} UTC", field="code"
            )
        return gid

    def after_qualify(
        self, session: Session, ref: Referral, rules: CampaignRules, give: Give, now: datetime
    ) -> None:
        """One more member done; the member completing the group rewards all of them, once."""
        if ref.group_id is None:
            return
        g = section(rules, rules.group, "group")
        done = session.execute(
            update(Group)
            .where(Group.id == ref.group_id, Group.state == "open", Group.deadline >= now)
            .values(members_done=Group.members_done + 1)
            .returning(Group.members_done)
        ).first()
        if done is None or done[0] < g.size - 1:
            return
        won = rowcount(
            session.execute(
                update(Group)
                .where(Group.id == ref.group_id, Group.state == "open", Group.members_done >= g.size - 1)
                .values(state="complete", completed_at=now)
            )
        )
        if not won:
            return
        group = session.get_one(Group, ref.group_id)
        members = session.execute(
            select(Referral.friend_person_id, Referral.inviter_person_id, Referral.state).where(
                Referral.group_id == group.id, Referral.qualified_at.is_not(None)
            )
        ).all()
        key = f"group:{group.id}"
        held = ref.state == "held"
        give(Award(group.initiator_person_id, g.initiator_reward, "initiator", f"{key}:initiator", held))
        for friend, inviter, state in members:
            give(Award(friend, g.joiner_reward, "joiner", f"{key}:joiner:{friend}", state == "held"))
            if inviter != group.initiator_person_id:
                give(Award(inviter, g.bringer_reward, "bringer", f"{key}:bringer:{friend}", state == "held"))
        audit(
            session,
            "group.complete",
            ref.campaign_id,
            {"members": len(members)},
            entity="group",
            entity_id=group.id,
        )


STRATEGIES: dict[str, CampaignType] = {
    s.name: s for s in (InviteTask(), DoubleSided(), GroupBuy(), Assist(), ShareCoupon(), Leaderboard())
}
assert tuple(STRATEGIES) == CAMPAIGN_TYPES, "one strategy per campaign type, in the schema's order"


def strategy_for(campaign_type: str) -> CampaignType:
    return STRATEGIES[campaign_type]
