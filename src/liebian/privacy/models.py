"""Privacy notices, consent records and data-subject requests."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Boolean, DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class PrivacyNotice(Base):
    """A published version of the privacy notice (隐私政策). Versions only grow; never edited."""

    __tablename__ = "privacy_notices"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    version: Mapped[int] = mapped_column(Integer, unique=True)
    title: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    # space-separated purposes this version describes
    purposes: Mapped[str] = mapped_column(String(200))
    # purposes whose consent must be given again under this version (a material change)
    reconsent_purposes: Mapped[str] = mapped_column(String(200), default="")
    published_by: Mapped[str] = mapped_column(String(128))
    published_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ConsentRecord(Base):
    """Append-only: one row per grant or withdrawal. The newest row per (person, purpose) decides."""

    __tablename__ = "consent_records"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    purpose: Mapped[str] = mapped_column(String(32))
    granted: Mapped[bool] = mapped_column(Boolean)
    notice_version: Mapped[int] = mapped_column(Integer)
    source: Mapped[str] = mapped_column(String(64), default="")
    recorded_by: Mapped[str] = mapped_column(String(128), default="")
    recorded_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow, index=True)


class DataSubjectRequest(Base):
    """An export or an erasure, with the verifiable record of what it did."""

    __tablename__ = "privacy_requests"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # export | delete
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    requested_by: Mapped[str] = mapped_column(String(128))
    reason: Mapped[str] = mapped_column(Text, default="")
    status: Mapped[str] = mapped_column(String(16))
    # JSON: per store and table, rows deleted / scrubbed; identifiers removed (type + mask only)
    record: Mapped[str] = mapped_column(Text, default="{}")
    # SHA-256 of the canonical record; also written to the audit chain
    record_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
