"""Campaign rules and request/response shapes at the edges.

`CampaignRules` is the whole definition of one campaign version. It is validated on create and
on every edit; contradictory rules are reported together, each naming its field.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from liebian.schemas import MAX_DAYS, MAX_FEN, EdgeDateTime, InPlanRange, InTimeRange, UtcDateTime

# Bounds of the counts in rules (a cap, a threshold, a group size): far above any real campaign.
MAX_COUNT = 10**9

CAMPAIGN_TYPES = ("invite_task", "double_sided", "group_buy", "assist", "share_coupon", "leaderboard")


class RulesError(ValueError):
    """Contradictory or incomplete rules: a list of (field, reason)."""

    def __init__(self, problems: list[tuple[str, str]]):
        super().__init__("; ".join(f"{f}: {r}" for f, r in problems))
        self.problems = problems


class Reward(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(min_length=1, max_length=64, description="reward/coupon code in the brand's system")
    value_fen: int = Field(
        ge=0, le=MAX_FEN, description="the reward's value in fen (disclosed to participants)"
    )
    name: str = Field("", max_length=200)


class Tier(BaseModel):
    model_config = ConfigDict(extra="forbid")
    threshold: int = Field(ge=1, le=MAX_COUNT, description="qualified friends needed")
    reward: Reward


class QualifyingEvent(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["signup", "first_order", "order_min_amount", "custom"] = "first_order"
    min_amount_fen: int = Field(0, ge=0, le=MAX_FEN)
    event_name: str | None = Field(None, max_length=64)


class GroupRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    size: int = Field(ge=2, le=MAX_COUNT, description="members including the initiator")
    window_hours: float = Field(24, gt=0, le=MAX_DAYS * 24)
    initiator_reward: Reward | None = None
    joiner_reward: Reward | None = None
    bringer_reward: Reward | None = None


class AssistRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    required: int = Field(ge=1, le=MAX_COUNT, description="assists that unlock the reward")
    reward: Reward


class LeaderboardRules(BaseModel):
    model_config = ConfigDict(extra="forbid")
    top_n: int = Field(ge=1, le=MAX_COUNT)
    rewards: list[Reward] = Field(description="one per rank, best first; the last repeats")


class RiskPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    hold_at: int = Field(
        50, ge=1, le=MAX_COUNT, description="total risk score from which rewards are held for review"
    )
    block_at: int = Field(
        100, ge=1, le=MAX_COUNT, description="total risk score from which the referral is blocked"
    )


class PointsRule(BaseModel):
    """积分 for referred purchases: `per_yuan` points per whole yuan of a qualifying order, times
    `multiplier` (double points by default) when the order falls within the window; the window is the
    campaign's start_at … end_at unless given. A refund of the order revokes them."""

    model_config = ConfigDict(extra="forbid")
    per_yuan: int = Field(1, ge=0, le=10000, description="points per yuan of a referred purchase")
    multiplier: int = Field(2, ge=1, le=10, description="within the window (2 = double points)")
    window_start: Annotated[EdgeDateTime | None, InPlanRange] = Field(
        None, description="default: the campaign's start_at"
    )
    window_end: Annotated[EdgeDateTime | None, InPlanRange] = Field(
        None, description="default: the campaign's end_at"
    )
    earner: Literal["friend", "inviter", "both"] = Field("friend", description="who earns the points")


POSTER_PATTERNS = ("none", "gradient", "dots", "stripes")


class PosterDesign(BaseModel):
    """How a campaign's share poster looks (campaigns/poster.py): background colour and pattern,
    the brand, the reward text (empty: written from the rewards), the inviter's avatar and the
    deadline. The template (`poster_template`) gives the rest of the colours."""

    model_config = ConfigDict(extra="forbid")
    background: str | None = Field(
        None, pattern=r"^#[0-9a-fA-F]{6}$", description="#rrggbb; none: the template's"
    )
    pattern: Literal["none", "gradient", "dots", "stripes"] = "none"
    brand: str = Field("", max_length=40)
    reward_text: str = Field("", max_length=60)
    show_avatar: bool = True
    show_deadline: bool = True


# A region, store or store type as front ends name it: letters (any script), digits, - _ . and spaces.
PLACE_PATTERN = r"^[\w][\w .-]{0,63}$"


class RuleVariant(BaseModel):
    """Rules overridden for one region and/or store type (`campaigns.variants`): `overrides` is a
    partial rules document merged over the base rules for participants who join there."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=64, description="shown in reports and the console")
    region: str | None = Field(None, pattern=PLACE_PATTERN)
    store_type: str | None = Field(None, pattern=PLACE_PATTERN)
    overrides: dict = Field(default_factory=dict, description="rule fields that differ here")


class CampaignRules(BaseModel):
    model_config = ConfigDict(extra="forbid")

    type: Literal["invite_task", "double_sided", "group_buy", "assist", "share_coupon", "leaderboard"]
    title: str = Field(min_length=1, max_length=200)
    rules_text: str = Field("", max_length=20_000)
    start_at: Annotated[EdgeDateTime | None, InPlanRange] = None
    end_at: Annotated[EdgeDateTime | None, InPlanRange] = None
    attribution: Literal["first_touch", "last_touch"] = "first_touch"
    claim_window_days: float = Field(7, gt=0, le=MAX_DAYS, description="invite → qualifying event")
    invite_ttl_days: float = Field(30, gt=0, le=MAX_DAYS)
    qualifying_event: QualifyingEvent = Field(default_factory=QualifyingEvent)
    require_new_friend: bool = True
    referrer_min_spend_fen: int = Field(0, ge=0, le=MAX_FEN)
    per_inviter_cap: int | None = Field(None, ge=0, le=MAX_COUNT)
    per_device_cap: int | None = Field(None, ge=1, le=MAX_COUNT)
    per_ip_cap: int | None = Field(None, ge=1, le=MAX_COUNT)
    budget_fen: int | None = Field(None, ge=0, le=MAX_FEN)
    stock: int | None = Field(None, ge=0, le=MAX_COUNT)
    hold_days: float = Field(
        7, ge=0, le=MAX_DAYS, description="pending before approval; set it to the refund window"
    )
    regions: list[str] | None = None
    stores: list[str] | None = None
    tiers: list[Tier] = Field(default_factory=list)
    inviter_reward: Reward | None = None
    friend_reward: Reward | None = None
    shares_required: int = Field(
        1, ge=1, le=MAX_COUNT, description="share_coupon: clicks on the link before claiming"
    )
    group: GroupRules | None = None
    assist: AssistRules | None = None
    leaderboard: LeaderboardRules | None = None
    risk_policy: RiskPolicy = Field(default_factory=RiskPolicy)
    points: PointsRule | None = Field(None, description="积分 for referred purchases (double points)")
    landing_url: str | None = Field(
        None, max_length=2048, description="front-end page a clicked link redirects to"
    )
    poster_template: str = Field("classic", max_length=64)
    poster: PosterDesign = Field(default_factory=PosterDesign)
    # compliance inputs
    collects: list[str] = Field(default_factory=list, description="personal data the campaign collects")
    consent_step: bool = False
    reward_value_disclosed: bool = True
    forced_sharing: bool = False
    platforms: list[str] = Field(
        default_factory=lambda: ["wechat"],
        description="where the links are shared (wechat, wecom, app, web, douyin…): WeChat's "
        "external-link rules apply in wechat and wecom",
    )
    variants: list[RuleVariant] = Field(
        default_factory=list, description="rules per region / store type; the first that matches applies"
    )

    def rewards(self) -> list[Reward]:
        out = [t.reward for t in self.tiers]
        out += [r for r in (self.inviter_reward, self.friend_reward) if r]
        if self.group:
            out += [
                r
                for r in (self.group.initiator_reward, self.group.joiner_reward, self.group.bringer_reward)
                if r
            ]
        if self.assist:
            out.append(self.assist.reward)
        if self.leaderboard:
            out += self.leaderboard.rewards
        return out


class CampaignCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str | None = Field(None, pattern=r"^[a-z0-9][a-z0-9_-]{1,62}$", description="optional slug")
    rules: dict


class CampaignEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    rules: dict
    note: str = ""


class Participant(BaseModel):
    """Who is acting: the identifiers the front end knows for this person (OneID resolves them)."""

    model_config = ConfigDict(extra="forbid")
    id_type: str = Field(description="unionid, openid, phone, external_userid, device_id …")
    id: str = Field(min_length=1, max_length=256)
    other_ids: dict[str, str] = Field(default_factory=dict, description="more identifiers {id_type: id}")
    nickname: str | None = Field(None, max_length=64)


class InviteRequest(Participant):
    channel: str = Field("share", max_length=64, description="渠道: share, poster, wecom_group, store …")
    device_id: str | None = Field(None, max_length=128, description="the inviter's device (their clicks)")
    ip: str | None = Field(None, max_length=64, description="the inviter's IP; default the caller's")
    user_agent: str | None = Field(None, max_length=512, description="default the caller's")


class AcceptRequest(Participant):
    code: str = Field(min_length=1, max_length=64)
    # where the friend joins: pilot admission and the rule variant (campaigns.stages, .variants)
    region: str | None = Field(None, pattern=PLACE_PATTERN)
    store: str | None = Field(None, pattern=PLACE_PATTERN)
    store_type: str | None = Field(None, pattern=PLACE_PATTERN)
    device_id: str | None = Field(None, max_length=128)
    ip: str | None = Field(None, max_length=64)
    user_agent: str | None = Field(None, max_length=512)


class ConversionRequest(Participant):
    order_id: str = Field(min_length=1, max_length=128)
    event: str = Field("order", max_length=64, description="order, or a custom event name")
    amount_fen: int = Field(
        0, ge=0, le=MAX_FEN, description="with the public key: shown only; a trusted order's counts"
    )
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$", description="ISO 4217 code of amount_fen's unit")
    ts: Annotated[EdgeDateTime | None, InTimeRange] = None
    region: str | None = Field(None, max_length=128)
    store: str | None = Field(None, max_length=128)
    device_id: str | None = Field(None, max_length=128)
    ip: str | None = Field(None, max_length=64)
    user_agent: str | None = Field(None, max_length=512)
    payment_account: str | None = Field(None, max_length=128)


class OrderCallback(BaseModel):
    """A shop's server reports an order (signed: X-Liebian-Signature, HMAC-SHA256 of the body)."""

    model_config = ConfigDict(extra="forbid")
    shop_id: str = Field(min_length=1, max_length=64)
    order_id: str = Field(min_length=1, max_length=128)
    status: Literal["paid", "refunded", "cancelled"]
    amount_fen: int = Field(ge=0, le=MAX_FEN)
    currency: str = Field("CNY", pattern=r"^[A-Z]{3}$")
    ts: Annotated[EdgeDateTime | None, InTimeRange] = None
    buyer: Participant = Field(description="the buyer as the shop knows them (OneID resolves them)")


class ShopCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    shop_id: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    order_id: str = Field(min_length=1, max_length=128)
    note: str = ""


# ---------------------------------------------------------------- responses


class CampaignSummary(BaseModel):
    id: str
    type: str
    title: str
    status: str = Field(description="draft, scheduled, live, paused or ended (moved on by the clock)")
    version: int
    budget_fen: int | None
    budget_used_fen: int
    stock: int | None
    stock_used: int
    created_at: UtcDateTime
    launched_at: UtcDateTime | None


class CampaignView(CampaignSummary):
    rules: dict = Field(description="the rules of the version in force (CampaignRules)")


class VersionView(BaseModel):
    version: int
    created_at: UtcDateTime
    note: str
    rules: dict


class ComplianceFinding(BaseModel):
    rule: str
    field: str
    message: str
    message_zh: str = ""
    citation: str = Field("", description="the platform rule, law or plan the finding rests on")
    citation_zh: str = ""
    suggestion: str = Field("", description="a safer alternative")
    suggestion_zh: str = ""
    score: int | None = Field(None, description="soft findings: what it adds to the risk score")


class ComplianceReport(BaseModel):
    campaign_id: str
    version: int
    passed: bool
    hard: list[ComplianceFinding]
    soft: list[ComplianceFinding]
    risk_score: int
    risk_level: Literal["low", "medium", "high"]


class AuditEntry(BaseModel):
    id: int
    ts: UtcDateTime
    actor: str
    action: str
    campaign_id: str | None
    entity: str
    entity_id: str
    detail: dict


class ReferralNode(BaseModel):
    referral_id: int
    inviter_person_id: int
    friend_person_id: int
    parent_referral_id: int | None
    generation: int
    state: str
    version: int
    channel: str
    qualified_at: UtcDateTime | None


class InviteView(BaseModel):
    code: str
    link: str
    poster_url: str
    campaign_id: str
    channel: str
    inviter_person_id: int
    clicks: int
    expires_at: UtcDateTime


class MyInviteView(InviteView):
    participant_token: str | None = Field(
        None,
        description="the inviter's token for my/* and progress with the public key (X-Participant-Token); "
        "null for an identifier type that earns none (a phone, with the public key)",
    )


class InviteInfo(InviteView):
    title: str
    rules_text: str
    nickname: str
    status: str


class SignalView(BaseModel):
    code: str
    score: int
    detail: str


class GrantView(BaseModel):
    person_id: int
    role: str
    reward_code: str
    value_fen: int
    reward_id: int | None
    state: Literal["granted", "budget_exhausted"]


class GrantOutcome(BaseModel):
    """A grant, or a note why a role got nothing (then only role and state)."""

    role: str
    state: str = Field(description="granted, budget_exhausted, or why nothing was granted")
    person_id: int | None = None
    reward_code: str | None = None
    value_fen: int | None = None
    reward_id: int | None = None


class AcceptView(BaseModel):
    referral_id: int
    campaign_id: str
    version: int
    inviter_person_id: int
    friend_person_id: int
    state: Literal["accepted", "held", "blocked"]
    generation: int
    channel: str
    risk_score: int
    signals: list[SignalView]
    grants: list[GrantOutcome]
    reattributed: bool
    participant_token: str | None = Field(
        None, description="the friend's token for my/* and progress with the public key (X-Participant-Token)"
    )


class AcceptBlocked(AcceptView):
    detail: str
    code: Literal["blocked"]


class OrderView(BaseModel):
    order_id: str
    campaign_id: str
    person_id: int
    referral_id: int | None
    event: str
    amount_fen: int
    currency: str = "CNY"
    verified_by: str | None = Field(None, description="who vouched for the order; none while pending")
    status: str = Field(
        description="qualified, not_qualifying, unattributed, out_of_scope, blocked, refunded, "
        "pending (awaiting a trusted order) or rejected (never confirmed)"
    )
    reason: str
    ts: UtcDateTime


class ConversionView(OrderView):
    duplicate: bool
    grants: list[GrantOutcome]


class RefundView(OrderView):
    revoked: list[int]
    duplicate: bool


class RewardSummary(BaseModel):
    id: int
    campaign_id: str
    person_id: int
    reward_code: str
    value_fen: int
    state: str
    source_ref: str
    created_at: UtcDateTime


class ProgressView(BaseModel):
    campaign_id: str
    person_id: int
    invited: int
    by_state: dict[str, int]
    qualified: int
    cap: int | None
    next_tier: int | None
    invites: list[InviteView]
    rewards: list[RewardSummary]


class LeaderboardRow(BaseModel):
    rank: int
    person_id: int
    nickname: str
    qualified: int
    reached_at: UtcDateTime


class ShopView(BaseModel):
    shop_id: str
    created_at: UtcDateTime
    revoked_at: UtcDateTime | None
    secret: str | None = Field(None, description="shown once, when the shop is created")


class VerifiedOrderView(BaseModel):
    order_id: str
    source: str
    shop_id: str | None
    status: str
    amount_fen: int
    currency: str
    ts: UtcDateTime
    confirmed: list[OrderView] = Field(description="conversions this order confirmed, rejected or refunded")
