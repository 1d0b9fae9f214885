"""Proposals: an option an operator turned into a campaign rules change, held for review."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class Proposal(Base):
    __tablename__ = "decision_proposals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str] = mapped_column(String(64), index=True)
    base_version: Mapped[int] = mapped_column(Integer)  # the live version the change was made against
    option: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(64))  # alert:<id> | report:<rule>
    rules: Mapped[str] = mapped_column(Text)  # JSON: the full proposed rules
    expected: Mapped[str] = mapped_column(Text, default="{}")  # JSON: the option with its effect
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | approved | rejected
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    decided_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    applied_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
