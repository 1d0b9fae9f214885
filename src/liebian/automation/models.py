"""Journeys, enrolments, the action log and the cross-channel contact ledger (frequency cap)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class Journey(Base):
    __tablename__ = "journeys"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    definition: Mapped[str] = mapped_column(Text)  # JSON, validated by schemas.JourneyDefinition
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused
    last_scan_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JourneyEnrollment(Base):
    """One person in one journey, once: the unique constraint makes re-entry impossible."""

    __tablename__ = "journey_enrollments"
    __table_args__ = (UniqueConstraint("journey_id", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"), index=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    arm: Mapped[str] = mapped_column(String(16))  # treatment | control (held out, never contacted)
    status: Mapped[str] = mapped_column(String(16))  # active | done | exited | held_out
    step: Mapped[int] = mapped_column(Integer, default=0)
    version: Mapped[int] = mapped_column(Integer, default=0)  # optimistic claim by concurrent workers
    next_at: Mapped[datetime] = mapped_column(DateTime, index=True)
    entered_at: Mapped[datetime] = mapped_column(DateTime)
    exit_reason: Mapped[str] = mapped_column(String(64), default="")


class JourneyAction(Base):
    """Every action attempted, with its outcome (sent, capped, quiet_hours, no_consent, failed)."""

    __tablename__ = "journey_actions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"), index=True)
    enrollment_id: Mapped[int] = mapped_column(ForeignKey("journey_enrollments.id"), index=True)
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    step: Mapped[int] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(String(32), default="")
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str] = mapped_column(Text, default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ContactSlot(Base):
    """A contact of a person in a cap window. The cap is N slots per (person, window); the unique
    constraint lets exactly one writer take each slot, so concurrent workers cannot exceed it."""

    __tablename__ = "contact_slots"
    __table_args__ = (UniqueConstraint("person_id", "window", "slot"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    person_id: Mapped[int] = mapped_column(BigInteger)
    window: Mapped[int] = mapped_column(Integer)
    slot: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(128), default="")
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class JourneyMark(Base):
    """Tag and campaign-audience actions: (kind, name, person) once each."""

    __tablename__ = "journey_marks"
    __table_args__ = (UniqueConstraint("kind", "name", "person_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # tag | campaign
    name: Mapped[str] = mapped_column(String(128))
    person_id: Mapped[int] = mapped_column(BigInteger, index=True)
    journey_id: Mapped[int] = mapped_column(ForeignKey("journeys.id"))
    at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
