"""Reward ledger tables: rewards (the current state), the hash-chained entries, the chain head,
payout batches, and the webhook endpoints / outbox / delivery attempts.

`rewards` is a projection: every change to it is accompanied by an entry in `ledger_entries`,
and `verify_chain` replays the entries to check the projection as well as the chain.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    String,
    Text,
)
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class Reward(Base):
    __tablename__ = "rewards"
    __table_args__ = (CheckConstraint("value_fen >= 0", name="value_not_negative"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    reward_code: Mapped[str] = mapped_column(String(64))
    value_fen: Mapped[int] = mapped_column(BigInteger)
    state: Mapped[str] = mapped_column(String(16), index=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    # The order / referral that earned it; a refund claws back every reward of that source.
    source_ref: Mapped[str] = mapped_column(String(128), index=True)
    hold_until: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    held_for_review: Mapped[bool] = mapped_column(Boolean, default=False)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class LedgerEntry(Base):
    """Append-only. `hash` = HMAC-SHA256 over the canonical form of the entry and `prev_hash`
    (and, from v2 on, the reward row after the entry)."""

    __tablename__ = "ledger_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    reward_id: Mapped[int] = mapped_column(Integer, index=True)
    # grant | transition | hold | unhold
    kind: Mapped[str] = mapped_column(String(16))
    from_state: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_state: Mapped[str] = mapped_column(String(16))
    # The value that moves from from_state to to_state (0 for hold/unhold).
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    actor: Mapped[str] = mapped_column(String(128))
    note: Mapped[str] = mapped_column(Text, default="")
    ts: Mapped[datetime] = mapped_column(DateTime)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The canonical form the hash covers: 1 = the fields above; 2 = also `reward_after`.
    v: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    # v2: the reward row after this entry (rewards.service.seal: canonical JSON of every column
    # but the id); `verify_chain` compares the rewards table with each reward's latest one.
    reward_after: Mapped[str | None] = mapped_column(Text, nullable=True)


class LedgerHead(Base):
    """One row (id 1): the last seq and hash. Locked by every append so the chain stays linear."""

    __tablename__ = "ledger_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class PayoutBatch(Base):
    __tablename__ = "payout_batches"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idempotency_key: Mapped[str] = mapped_column(String(160), unique=True)
    actor: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    reward_count: Mapped[int] = mapped_column(Integer)
    total_fen: Mapped[int] = mapped_column(BigInteger)
    # JSON list of the reward ids issued by this batch
    reward_ids: Mapped[str] = mapped_column(Text)


class WebhookEndpoint(Base):
    __tablename__ = "webhook_endpoints"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    url: Mapped[str] = mapped_column(String(500))
    # AES-GCM ciphertext of the signing secret (privacy.crypto): a database dump alone cannot sign.
    secret_encrypted: Mapped[str] = mapped_column(Text)
    # comma-separated event types (reward.approved, …) or "*"
    event_types: Mapped[str] = mapped_column(Text, default="*")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    description: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WebhookDelivery(Base):
    """The outbox: written in the same transaction as the ledger entry it announces."""

    __tablename__ = "webhook_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_uid: Mapped[str] = mapped_column(String(64), unique=True)
    endpoint_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhook_endpoints.id"), index=True)
    event_type: Mapped[str] = mapped_column(String(64))
    ledger_seq: Mapped[int] = mapped_column(BigInteger, index=True)
    # The exact body sent every time (retries and replays sign the same bytes).
    payload: Mapped[str] = mapped_column(Text)
    # pending | delivered | dead | cancelled
    status: Mapped[str] = mapped_column(String(16), index=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # attempts since the delivery was (re)queued; decides when it goes dead
    tries_in_round: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    last_status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WebhookAttempt(Base):
    """The delivery log: one row per HTTP attempt."""

    __tablename__ = "webhook_attempts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    delivery_id: Mapped[int] = mapped_column(Integer, ForeignKey("webhook_deliveries.id"), index=True)
    attempt_no: Mapped[int] = mapped_column(Integer)
    at: Mapped[datetime] = mapped_column(DateTime)
    status_code: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)


# --- points (积分): a second hash-chained ledger, with the same guarantees (rewards/points.py) -------


class PointsEntry(Base):
    """Append-only. `hash` = HMAC-SHA256 (the points chain's key) over every other field."""

    __tablename__ = "points_entries"

    seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    # earn | spend | expire | revoke | adjust
    kind: Mapped[str] = mapped_column(String(16))
    # points added (> 0) or taken (< 0); a revoke of points already spent may be 0
    delta: Mapped[int] = mapped_column(BigInteger)
    # the person's balance (all their merged ids) after this entry
    balance_after: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    campaign_id: Mapped[str] = mapped_column(String(64), default="", index=True)
    # the order / grant that earned the points (a refund revokes every earn of its source)
    source_ref: Mapped[str] = mapped_column(String(128), default="", index=True)
    # earns: when their points lapse; None for every other kind
    expires_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    # which earns a debit took its points from: JSON [[earn seq, points], …] (FIFO by expiry)
    lots: Mapped[str] = mapped_column(Text, default="[]")
    actor: Mapped[str] = mapped_column(String(128))
    ts: Mapped[datetime] = mapped_column(DateTime)
    idempotency_key: Mapped[str] = mapped_column(String(200), unique=True)
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class PointsHead(Base):
    """One row (id 1): the last seq and hash of the points chain. Locked by every append."""

    __tablename__ = "points_head"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    seq: Mapped[int] = mapped_column(BigInteger)
    hash: Mapped[str] = mapped_column(String(64))


class PointsLot(Base):
    """The balance projection: one row per earn, with what is left of it. A person's balance is the
    sum of `remaining` over their unexpired lots; `points verify` replays the entries against it."""

    __tablename__ = "points_lots"
    __table_args__ = (CheckConstraint("remaining >= 0 AND remaining <= amount", name="remaining_in_range"),)

    earn_seq: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    amount: Mapped[int] = mapped_column(BigInteger)
    remaining: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    source_ref: Mapped[str] = mapped_column(String(128), default="", index=True)
    campaign_id: Mapped[str] = mapped_column(String(64), default="")
