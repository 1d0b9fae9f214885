"""Monitoring tables: alert rules, alerts (with their lifecycle), notification channels, deliveries."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from liebian.db.base import Base, utcnow


class AlertRule(Base):
    __tablename__ = "monitor_rules"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    # participation_rate | fission_rate | negative_share | fraud_rate | dq_error_rate | anomaly
    metric: Mapped[str] = mapped_column(String(32))
    op: Mapped[str] = mapped_column(String(2))  # < | >
    threshold: Mapped[float] = mapped_column(Float)
    campaign_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    channel: Mapped[str | None] = mapped_column(String(64), nullable=True)
    level: Mapped[str] = mapped_column(String(8))  # 一般 | 重要 | 紧急
    action: Mapped[str] = mapped_column(String(32), default="none")
    auto_adjust: Mapped[bool] = mapped_column(Boolean, default=False)
    # JSON: limits of the auto-adjust policy (e.g. max_reward_fen, step_pct, max_actions_per_day)
    limits: Mapped[str] = mapped_column(Text, default="{}")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Alert(Base):
    __tablename__ = "monitor_alerts"
    __table_args__ = (
        Index("ix_monitor_alerts_dedup", "dedup_key", "status"),
        Index("ix_monitor_alerts_status_due", "status", "due_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # kind:metric:scope — a repeat of an unresolved alert updates it instead of opening another
    dedup_key: Mapped[str] = mapped_column(String(255))
    group_key: Mapped[str] = mapped_column(String(128))  # campaign / channel / group it belongs to
    kind: Mapped[str] = mapped_column(String(16))  # threshold | anomaly
    rule_id: Mapped[int | None] = mapped_column(ForeignKey("monitor_rules.id"), nullable=True)
    metric: Mapped[str] = mapped_column(String(64))
    scope: Mapped[str] = mapped_column(Text, default="{}")  # JSON
    level: Mapped[str] = mapped_column(String(8))
    status: Mapped[str] = mapped_column(String(16), default="open")  # open | acknowledged | resolved
    title: Mapped[str] = mapped_column(String(255))
    observed: Mapped[float | None] = mapped_column(Float, nullable=True)
    expected: Mapped[float | None] = mapped_column(Float, nullable=True)
    threshold: Mapped[float | None] = mapped_column(Float, nullable=True)
    period: Mapped[str] = mapped_column(String(32), default="")  # the day / hour the value is of
    suggested_action: Mapped[str] = mapped_column(String(32), default="none")
    auto_action: Mapped[str] = mapped_column(Text, default="")  # what the auto-adjust policy did
    occurrences: Mapped[int] = mapped_column(Integer, default=1)
    first_seen: Mapped[datetime] = mapped_column(DateTime)
    last_seen: Mapped[datetime] = mapped_column(DateTime)
    due_at: Mapped[datetime] = mapped_column(DateTime)
    escalations: Mapped[int] = mapped_column(Integer, default=0)
    escalated_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    acknowledged_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    acknowledged_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    resolved_by: Mapped[str | None] = mapped_column(String(128), nullable=True)
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime, nullable=True)
    root_cause: Mapped[str] = mapped_column(Text, default="")


class NotifyChannel(Base):
    __tablename__ = "monitor_channels"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    kind: Mapped[str] = mapped_column(String(16))  # wecom | dingtalk | webhook | email
    # AES-GCM (privacy.crypto) of the URL — a WeCom/DingTalk URL carries its access key — and of the
    # signing secret: a database dump alone can neither post to the group nor sign.
    target_encrypted: Mapped[str] = mapped_column(Text)  # URL, or smtp://host:port/?from=…&to=…
    secret_encrypted: Mapped[str] = mapped_column(Text, default="")
    min_level: Mapped[str] = mapped_column(String(8), default="一般")
    enabled: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)


class Delivery(Base):
    __tablename__ = "monitor_deliveries"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    alert_id: Mapped[int | None] = mapped_column(ForeignKey("monitor_alerts.id"), nullable=True, index=True)
    channel_id: Mapped[int] = mapped_column(ForeignKey("monitor_channels.id"), index=True)
    event: Mapped[str] = mapped_column(String(32))  # opened | escalated | resolved | test
    status: Mapped[str] = mapped_column(String(16))  # delivered | failed
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    http_status: Mapped[int | None] = mapped_column(Integer, nullable=True)
    error: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime, default=utcnow)
