"""Fraud review queue: one case per suspicious referral (or person), and the audit of every change."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class FraudCase(Base):
    __tablename__ = "fraud_cases"
    __table_args__ = (
        Index("ix_fraud_cases_status_score", "status", "score"),
        Index("ix_fraud_cases_campaign", "campaign_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "referral:<campaign>:<inviter>:<friend>" or "person:<person>": a re-run scan updates the open
    # case instead of opening a second one, and never reopens a decided case.
    case_key: Mapped[str] = mapped_column(String(200), unique=True)
    subject: Mapped[str] = mapped_column(String(16))  # referral | person
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)  # the friend (referral) or the person
    inviter_person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    referral_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # campaigns' referral, if known
    source: Mapped[str] = mapped_column(String(16))  # graph | inline
    score: Mapped[float] = mapped_column(Float)
    # JSON list of reason codes (strongest first) and a JSON list of detail strings beside them
    reasons: Mapped[str] = mapped_column(Text, default="[]")
    details: Mapped[str] = mapped_column(Text, default="[]")
    pattern: Mapped[str] = mapped_column(String(32), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | approved | rejected
    reviewer: Mapped[str | None] = mapped_column(String(128), nullable=True)
    note: Mapped[str] = mapped_column(Text, default="")
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FraudAudit(Base):
    """Append-only: every open, rescore and decision of a case, with who did it and what it did."""

    __tablename__ = "fraud_audit"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(Integer, ForeignKey("fraud_cases.id"), index=True)
    action: Mapped[str] = mapped_column(String(16))  # open | rescore | approve | reject
    actor: Mapped[str] = mapped_column(String(128))
    from_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_status: Mapped[str] = mapped_column(String(16))
    note: Mapped[str] = mapped_column(Text, default="")
    # JSON: the ledger changes the decision made (reward ids and their new state)
    effects: Mapped[str] = mapped_column(Text, default="{}")
    # A repeated decision with the same key returns the first outcome and writes nothing.
    idempotency_key: Mapped[str | None] = mapped_column(String(200), unique=True, nullable=True)
    ts: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FraudSighting(Base):
    """What the inline checks saw at each accept / conversion: the memory for velocity, bursts and
    IP+UA matches. Holds no clear personal data: the user agent is kept as a short hash."""

    __tablename__ = "fraud_sightings"
    __table_args__ = (
        Index("ix_fraud_sightings_inviter_ts", "inviter_person_id", "ts"),
        Index("ix_fraud_sightings_device_ts", "device_id", "ts"),
        Index("ix_fraud_sightings_ip_ts", "ip", "ts"),
        Index("ix_fraud_sightings_person", "person_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ts: Mapped[datetime] = mapped_column(DateTime)
    stage: Mapped[str] = mapped_column(String(16))  # accept | conversion
    campaign_id: Mapped[str] = mapped_column(String(64))
    inviter_person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    device_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    ip: Mapped[str | None] = mapped_column(String(64), nullable=True)
    ua_hash: Mapped[str | None] = mapped_column(String(16), nullable=True)


class FraudKnownUse(Base):
    """Who used a device or an IP address in the data imported into the warehouse (events), so
    that the inline rules know devices and addresses the campaign engine never saw. One row per
    (kind, value, person): first and last time seen. Holds no clear value: `value_hash` is the
    privacy module's keyed HMAC of the device id or the address (`fraud.known`)."""

    __tablename__ = "fraud_known_uses"
    __table_args__ = (
        Index("ix_fraud_known_uses_value", "kind", "value_hash", "last_seen"),
        Index("ix_fraud_known_uses_person", "person_id"),
        # the rows are nothing but facts about a person: an erasure deletes them (privacy.subject_requests)
        {"info": {"erase": "rows"}},
    )

    kind: Mapped[str] = mapped_column(String(8), primary_key=True)  # device | ip
    value_hash: Mapped[str] = mapped_column(String(64), primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)


class FraudKnownSync(Base):
    """How far the known uses were filled from the warehouse: the last `events.ingested_at` read."""

    __tablename__ = "fraud_known_sync"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)  # always 1
    synced_until: Mapped[datetime] = mapped_column(DateTime)
