"""Tags in the operational store: versioned definitions, assignment history, recomputation runs."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class TagDefinition(Base):
    """One version of a tag. A changed rule is a new version; old versions stay for the history."""

    __tablename__ = "tag_definitions"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    version: Mapped[int] = mapped_column(Integer)
    level: Mapped[str] = mapped_column(String(16))  # attribute | behaviour | value
    rule: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    retired_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class TagAssignment(Base):
    """A person carried a tag (version) from assigned_at until removed_at (open while NULL)."""

    __tablename__ = "tag_assignments"
    __table_args__ = (
        Index("ix_tag_assignments_tag_open", "tag_name", "removed_at"),
        Index("ix_tag_assignments_person", "person_id", "removed_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tag_name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    person_id: Mapped[int] = mapped_column(BigInteger)
    assigned_at: Mapped[datetime] = mapped_column(DateTime)
    removed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    run_id: Mapped[int] = mapped_column(Integer)


class TagRun(Base):
    """One recomputation: when, on which data, and how many persons each tag gained and lost."""

    __tablename__ = "tag_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    data_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    persons: Mapped[int] = mapped_column(Integer, default=0)
    summary: Mapped[str] = mapped_column(Text, default="{}")  # JSON {tag: {version, members, added, removed}}
