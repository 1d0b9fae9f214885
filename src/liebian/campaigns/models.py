"""Campaign tables: definitions and their versions, invites, referrals, orders, caps, groups, audit.

Every cap (per inviter, device, IP; budget; stock) is a counter row changed by one conditional
UPDATE, so that concurrent requests on SQLite and PostgreSQL can never overshoot it.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class Campaign(Base):
    __tablename__ = "campaigns"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    type: Mapped[str] = mapped_column(String(32))
    title: Mapped[str] = mapped_column(String(200))
    # draft | scheduled | live | paused | ended (scheduled/live turn live/ended by the clock)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    version: Mapped[int] = mapped_column(Integer, default=1)
    budget_fen: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    budget_used_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    stock: Mapped[int | None] = mapped_column(Integer, nullable=True)
    stock_used: Mapped[int] = mapped_column(Integer, default=0)
    settled: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    launched_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CampaignVersion(Base):
    """The rules in force from `created_at` on; a referral keeps the version it was accepted under."""

    __tablename__ = "campaign_versions"
    __table_args__ = (UniqueConstraint("campaign_id", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    rules: Mapped[str] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Invite(Base):
    """An inviter's code for one campaign and channel (渠道); the code is `token` + its HMAC."""

    __tablename__ = "campaign_invites"
    __table_args__ = (Index("ix_campaign_invites_owner", "campaign_id", "inviter_person_id", "channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token: Mapped[str] = mapped_column(String(32), unique=True)
    campaign_id: Mapped[str] = mapped_column(String(64), ForeignKey("campaigns.id"))
    # indexed alone too: the console names persons by their invites' nickname (campaigns.people)
    inviter_person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    channel: Mapped[str] = mapped_column(String(64), default="share")
    nickname: Mapped[str] = mapped_column(String(64), default="")
    clicks: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime)


class InviteVisit(Base):
    """Who opened an inviter's links in a campaign: one row per distinct visitor, keyed by the
    strongest identifier the click had (`p<person>`, `d<device HMAC>`, `n<IP+UA HMAC>`), and one
    `own` row per identifier the inviter was seen with (`own:p…`, `own:d…`, `own:n…`). Only
    keyed hashes are stored, never a raw IP or device id."""

    __tablename__ = "campaign_invite_visits"
    __table_args__ = (
        UniqueConstraint(
            "campaign_id", "inviter_person_id", "visitor_key", name="uq_campaign_invite_visits_visitor"
        ),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), ForeignKey("campaigns.id"))
    inviter_person_id: Mapped[int] = mapped_column(BigInteger)
    visitor_key: Mapped[str] = mapped_column(String(80))
    own: Mapped[bool] = mapped_column(Boolean, default=False)
    invite_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    clicks: Mapped[int] = mapped_column(Integer, default=0)  # every click, counted or not
    visits: Mapped[int] = mapped_column(Integer, default=0)  # times counted as a distinct visitor
    first_at: Mapped[datetime] = mapped_column(DateTime)
    last_at: Mapped[datetime] = mapped_column(DateTime)
    counted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Referral(Base):
    """Who brought whom in a campaign: one row per friend and campaign (attribution target)."""

    __tablename__ = "campaign_referrals"
    __table_args__ = (
        UniqueConstraint("campaign_id", "friend_person_id"),
        Index("ix_campaign_referrals_inviter", "campaign_id", "inviter_person_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), ForeignKey("campaigns.id"))
    version: Mapped[int] = mapped_column(Integer)
    invite_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaign_invites.id"))
    inviter_person_id: Mapped[int] = mapped_column(BigInteger)
    friend_person_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(64))
    parent_referral_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    generation: Mapped[int] = mapped_column(Integer, default=1)
    group_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # accepted | held | blocked | refunded | duplicate (after a OneID merge)
    state: Mapped[str] = mapped_column(String(16))
    risk_score: Mapped[int] = mapped_column(Integer, default=0)
    risk_signals: Mapped[str] = mapped_column(Text, default="[]")
    device_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    accepted_at: Mapped[datetime] = mapped_column(DateTime)
    qualified_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    qualifying_order: Mapped[str | None] = mapped_column(String(128), nullable=True)
    counted: Mapped[bool] = mapped_column(Boolean, default=False)
    note: Mapped[str] = mapped_column(Text, default="")


class CampaignOrder(Base):
    """A reported conversion (order or custom event); the order id makes reports idempotent."""

    __tablename__ = "campaign_orders"
    __table_args__ = (
        UniqueConstraint("campaign_id", "order_id"),
        Index("ix_campaign_orders_order_id", "order_id"),  # a confirmed order's reports, any campaign
        Index("ix_campaign_orders_status", "status", "created_at"),  # pending reports due to expire
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), ForeignKey("campaigns.id"))
    order_id: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    referral_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    event: Mapped[str] = mapped_column(String(64))
    amount_fen: Mapped[int] = mapped_column(BigInteger, default=0)
    # qualified | not_qualifying | unattributed | out_of_scope | blocked | refunded, or
    # pending (reported with the public key, awaiting a trusted order) | rejected (never confirmed)
    status: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(Text, default="")
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    store: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ts: Mapped[datetime] = mapped_column(DateTime)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    refunded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    currency: Mapped[str] = mapped_column(String(8), default="CNY", server_default="CNY")
    # who vouched for the order: operator (trusted key), callback, import, wecom; None while pending
    verified_by: Mapped[str | None] = mapped_column(String(32), nullable=True)
    # a pending report's context (event, region, store, device, IP …) sealed with the project's
    # key (privacy.crypto), judged when the order is confirmed; cleared then
    pending_detail: Mapped[str | None] = mapped_column(Text, nullable=True)


class VerifiedOrder(Base):
    """An order as a trusted source knows it (operator-key order feed, signed shop callback, the
    import/collector pipeline, WeCom): the amount, currency and status conversions are judged by."""

    __tablename__ = "campaign_verified_orders"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    order_id: Mapped[str] = mapped_column(String(128), unique=True)
    source: Mapped[str] = mapped_column(String(32))  # operator | callback | import | wecom
    shop_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    event: Mapped[str] = mapped_column(String(64), default="order")
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    currency: Mapped[str] = mapped_column(String(8), default="CNY")
    status: Mapped[str] = mapped_column(String(16))  # paid | refunded | cancelled
    ts: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class OrderShop(Base):
    """A shop whose server reports orders by signed callback; its secret sealed (privacy.crypto)."""

    __tablename__ = "campaign_order_shops"

    shop_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    secret_sealed: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class CapCounter(Base):
    """A capped counter (scope inviter/device/ip/assist…); raised only by a conditional UPDATE."""

    __tablename__ = "campaign_counters"
    __table_args__ = (UniqueConstraint("campaign_id", "scope", "key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(String(16))
    key: Mapped[str] = mapped_column(String(128))
    used: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Group(Base):
    """A group-buy (拼团) opened by an initiator; completes once when `size - 1` joiners qualify."""

    __tablename__ = "campaign_groups"
    __table_args__ = (UniqueConstraint("campaign_id", "initiator_person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    initiator_person_id: Mapped[int] = mapped_column(BigInteger)
    opened_at: Mapped[datetime] = mapped_column(DateTime)
    deadline: Mapped[datetime] = mapped_column(DateTime)
    members_done: Mapped[int] = mapped_column(Integer, default=0)
    state: Mapped[str] = mapped_column(String(16), default="open")  # open | complete
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class Reservation(Base):
    """Budget and stock reserved for one reward before it is granted; released once if it ends badly."""

    __tablename__ = "campaign_reservations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64))
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    value_fen: Mapped[int] = mapped_column(BigInteger)
    reward_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    released: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CampaignAudit(Base):
    """Every state change of a campaign, invite, referral, order or reservation (until auth has one)."""

    __tablename__ = "campaign_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    entity: Mapped[str] = mapped_column(String(32), default="campaign")
    entity_id: Mapped[str] = mapped_column(String(128), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")


class Outbox(Base):
    """Warehouse rows written with the request's transaction and moved to DuckDB in the background."""

    __tablename__ = "campaign_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # event | edge | order | refund
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class StagePlan(Base):
    """A campaign's staged roll-out (试点 → 推广 → 优化, 001 §4.1): the stage it is in, who the pilot
    admits, the gate each stage must pass to move on and the exit rule (`campaigns.stages`)."""

    __tablename__ = "campaign_stage_plans"

    campaign_id: Mapped[str] = mapped_column(String(64), ForeignKey("campaigns.id"), primary_key=True)
    stage: Mapped[str] = mapped_column(String(16), default="pilot")  # pilot | rollout | optimise
    entered_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    # JSON (campaigns.stages.PlanDoc): pilot traffic, gates and exit rule per stage, auto_advance
    plan: Mapped[str] = mapped_column(Text, default="{}")
    # the exit rule measures from here (the stage's entry, or its last firing) and rests until
    exit_window_from: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    exit_fired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class StageEvent(Base):
    """The history of a staged campaign: a stage entered, a gate evaluated, the exit rule fired."""

    __tablename__ = "campaign_stage_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    ts: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    actor: Mapped[str] = mapped_column(String(128))
    kind: Mapped[str] = mapped_column(String(16))  # plan | enter | gate | exit
    stage: Mapped[str] = mapped_column(String(16))
    passed: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    action: Mapped[str] = mapped_column(String(32), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")  # JSON: metrics, thresholds, what changed


class ReferralPlace(Base):
    """Where a referred friend joined (region, store, store type): picks the rule variant their
    referral is judged under (`campaigns.variants`)."""

    __tablename__ = "campaign_referral_places"

    referral_id: Mapped[int] = mapped_column(Integer, ForeignKey("campaign_referrals.id"), primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    store: Mapped[str | None] = mapped_column(String(64), nullable=True)
    store_type: Mapped[str | None] = mapped_column(String(64), nullable=True)
    variant: Mapped[str] = mapped_column(String(64), default="")  # the variant's name; "" = base rules
