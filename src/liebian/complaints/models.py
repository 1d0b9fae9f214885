"""Complaints and data-subject requests: one case table with one clock (`due_at`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class Complaint(Base):
    """A user's complaint (投诉) or a data-subject request (个人信息权利请求), open until resolved.

    Personal data: the person is kept as its pseudonymous person id (the identifier given at intake
    is resolved through identity and never stored here); the text is stored with every phone, ID,
    card number and e-mail replaced by its masked form and HMAC (privacy/pii.py)."""

    __tablename__ = "complaints"
    __table_args__ = (Index("ix_complaints_status_due", "status", "due_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # complaint | subject_request
    channel: Mapped[str] = mapped_column(String(32))
    category: Mapped[str] = mapped_column(String(32))
    person_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True, index=True)
    text: Mapped[str] = mapped_column(Text, default="")  # PII masked
    owner: Mapped[str] = mapped_column(String(128), default="")
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | resolved
    received_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    reminded_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    resolution: Mapped[str] = mapped_column(
        String(16), default=""
    )  # upheld | rejected | fulfilled | withdrawn
    resolution_reason: Mapped[str] = mapped_column(Text, default="")  # PII masked
    resolved_by: Mapped[str] = mapped_column(String(128), default="")
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_by: Mapped[str] = mapped_column(String(128), default="")
