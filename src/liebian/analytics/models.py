"""Saved insights and dashboards (the insight builder's, analytics/insights.py): an insight is a kind
and its validated params (JSON), a dashboard an ordered list of insights shown together."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class SavedInsight(Base):
    __tablename__ = "saved_insights"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    kind: Mapped[str] = mapped_column(String(16))  # funnel | retention | trends
    params: Mapped[str] = mapped_column(Text)  # JSON, valid for the kind (insights_schemas.PARAMS)
    description: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Dashboard(Base):
    __tablename__ = "dashboards"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class DashboardItem(Base):
    """One insight on a dashboard, at its position; deleting the insight removes it from dashboards."""

    __tablename__ = "dashboard_items"

    dashboard_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("dashboards.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(Integer, primary_key=True)
    insight_id: Mapped[int] = mapped_column(
        Integer, ForeignKey("saved_insights.id", ondelete="CASCADE"), index=True
    )
