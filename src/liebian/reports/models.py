"""SMART targets, report subscriptions (e-mail or webhook) and the record of every scheduled run."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import Boolean, Date, DateTime, Float, ForeignKey, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class ReportTarget(Base):
    """A SMART target: metric (a KPI key) from baseline to target between start and due."""

    __tablename__ = "report_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(128), unique=True)
    metric: Mapped[str] = mapped_column(String(64))
    baseline: Mapped[float] = mapped_column(Float)
    target: Mapped[float] = mapped_column(Float)
    start_date: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    owner: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReportSubscription(Base):
    __tablename__ = "report_subscriptions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # weekly | monthly
    channel: Mapped[str] = mapped_column(String(16))  # email | webhook
    address: Mapped[str] = mapped_column(String(512))  # e-mail address or URL
    secret_encrypted: Mapped[str] = mapped_column(Text, default="")  # webhook HMAC key (AES-GCM)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class ReportRun(Base):
    """One delivery of one period's report to one subscription: the unique key makes scheduling
    exactly-once even when the job runs every hour of the due days or on two servers."""

    __tablename__ = "report_runs"
    __table_args__ = (UniqueConstraint("subscription_id", "kind", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subscription_id: Mapped[int] = mapped_column(ForeignKey("report_subscriptions.id"))
    kind: Mapped[str] = mapped_column(String(16))
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # sending | sent | failed
    detail: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)


class ReportDocument(Base):
    """A generated report kept for reading later (console list, HTML view, XLSX download): its data
    as JSON, rendered again on request. Generated on demand in the background, or by the schedule."""

    __tablename__ = "report_documents"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))  # weekly | monthly
    period_start: Mapped[date] = mapped_column(Date)
    period_end: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))  # pending | running | done | failed
    detail: Mapped[str] = mapped_column(Text, default="")  # why it failed
    data: Mapped[str] = mapped_column(Text, default="")  # the report (build_report) as JSON
    requested_by: Mapped[str] = mapped_column(String(128), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
