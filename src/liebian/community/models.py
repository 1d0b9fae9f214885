"""Community tables of the operational store: per-group weekly-active targets, the content calendar,
the KOC programme (nominated KOCs and their tasks)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Float, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class GroupTarget(Base):
    """A group's weekly-active target (a share); groups without one use the settings' default."""

    __tablename__ = "community_group_targets"

    group_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    target: Mapped[float] = mapped_column(Float)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class CalendarItem(Base):
    """A planned post or theme day of a group's content calendar."""

    __tablename__ = "community_calendar"
    __table_args__ = (Index("ix_community_calendar_group_day", "group_id", "day"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    group_id: Mapped[str] = mapped_column(String(128))
    day: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(16))  # post | theme_day
    title: Mapped[str] = mapped_column(String(200))
    theme: Mapped[str | None] = mapped_column(String(32), nullable=True)  # a service.THEMES key
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Koc(Base):
    """A member nominated as a KOC (key opinion consumer) of a group: nominated → active → retired."""

    __tablename__ = "community_kocs"
    __table_args__ = (UniqueConstraint("person_id", "group_id", name="uq_community_kocs_person_group"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    group_id: Mapped[str] = mapped_column(String(128))
    status: Mapped[str] = mapped_column(String(16))  # nominated | active | retired
    nominated_by: Mapped[str] = mapped_column(String(128))
    nominated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_by: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class KocTask(Base):
    """A task of one KOC over [start, end] (display-zone days): reach `target` of its kind; the
    reward (fen) is granted through the reward ledger once, when progress reaches the target."""

    __tablename__ = "community_koc_tasks"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    koc_id: Mapped[int] = mapped_column(ForeignKey("community_kocs.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # ugc_messages | invitees | checkin_hosted
    target: Mapped[int] = mapped_column(Integer)
    start: Mapped[date] = mapped_column(Date)
    end: Mapped[date] = mapped_column(Date)
    reward_fen: Mapped[int] = mapped_column(BigInteger)
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    reward_id: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the ledger's reward
