"""WeCom tables: 联系我 states, seen callback nonces, processed callbacks, follow relations, group
membership, and the warehouse outbox of WeCom events."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class WecomState(Base):
    """A 联系我 `state` (≤ 30 characters, WeCom's limit) → an invite (inviter) or a channel code.

    The long signed invite code does not fit into `state`; this short key stands for it."""

    __tablename__ = "wecom_states"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    state: Mapped[str] = mapped_column(String(30), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # invite | channel
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    invite_code: Mapped[str | None] = mapped_column(String(64), nullable=True)
    inviter_person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    channel: Mapped[str] = mapped_column(String(64), default="wecom")
    # a store's or region's code: passed with the conversion so campaign region/store scoping applies
    region: Mapped[str | None] = mapped_column(String(64), nullable=True)
    store: Mapped[str | None] = mapped_column(String(64), nullable=True)
    config_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # WeCom's contact-way id
    qr_code: Mapped[str | None] = mapped_column(Text, nullable=True)
    staff: Mapped[str] = mapped_column(Text, default="[]")  # JSON list of staff userids (wecom_staff)
    remark: Mapped[str] = mapped_column(String(30), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class WecomNonce(Base):
    """Nonces of accepted callbacks until their timestamp leaves the replay window (shared by workers)."""

    __tablename__ = "wecom_nonces"

    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime, index=True)


class WecomCallback(Base):
    """One processed callback event; `event_key` (hash of the decrypted message) makes retries idempotent."""

    __tablename__ = "wecom_callbacks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_key: Mapped[str] = mapped_column(String(64), unique=True)
    event: Mapped[str] = mapped_column(String(64))
    change_type: Mapped[str] = mapped_column(String(64), default="")
    external_userid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    staff_userid: Mapped[str | None] = mapped_column(String(128), nullable=True)
    chat_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    state: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="{}")
    created_at: Mapped[datetime] = mapped_column(DateTime)
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class WecomFollow(Base):
    """A friend relation between an external contact and a staff member (跟进成员)."""

    __tablename__ = "wecom_follows"
    __table_args__ = (UniqueConstraint("external_userid", "staff_userid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    external_userid: Mapped[str] = mapped_column(String(128), index=True)
    staff_userid: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    state: Mapped[str | None] = mapped_column(String(30), nullable=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    referral_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    welcome_code_received: Mapped[bool] = mapped_column(Boolean, default=False)
    added_at: Mapped[datetime] = mapped_column(DateTime)
    deleted_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    deleted_by: Mapped[str | None] = mapped_column(String(16), nullable=True)  # customer | staff


class WecomGroupMember(Base):
    """Membership of a customer group (客户群) as change_external_chat reports it (community membership)."""

    __tablename__ = "wecom_group_members"
    __table_args__ = (UniqueConstraint("chat_id", "member_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    chat_id: Mapped[str] = mapped_column(String(128), index=True)
    member_id: Mapped[str] = mapped_column(String(128))
    member_kind: Mapped[str] = mapped_column(String(16))  # external | staff
    joined_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    left_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    join_scene: Mapped[int | None] = mapped_column(Integer, nullable=True)
    quit_scene: Mapped[int | None] = mapped_column(Integer, nullable=True)


class WecomOutbox(Base):
    """Pipeline events written with the callback's transaction, then handed to the ingest collector."""

    __tablename__ = "wecom_outbox"
    __table_args__ = (Index("ix_wecom_outbox_created", "created_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
