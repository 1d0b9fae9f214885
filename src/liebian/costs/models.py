"""The money the operator enters beside the data: other costs per campaign and period (media,
staff, tools, other) and stored exchange rates to CNY (`liebian fx import`)."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, DateTime, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class CostEntry(Base):
    """One cost of a campaign (or of every campaign: campaign_id NULL) over the calendar days
    [start_date, end_date] of the display zone; analytics pro-rates it by days (costs/service.py)."""

    __tablename__ = "cost_entries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    category: Mapped[str] = mapped_column(String(16))  # media | staff | tools | other
    amount_fen: Mapped[int] = mapped_column(BigInteger)
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date] = mapped_column(Date)
    note: Mapped[str] = mapped_column(String(200), default="")
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class FxRate(Base):
    """CNY per one unit of `currency` on `day`, as imported (the decimal's text: exact, on SQLite too).
    Conversion uses these together with the settings' rates (liebian/fx.py)."""

    __tablename__ = "fx_rates"

    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    cny_per_unit: Mapped[str] = mapped_column(String(40))
    imported_by: Mapped[str] = mapped_column(String(128))
    imported_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
