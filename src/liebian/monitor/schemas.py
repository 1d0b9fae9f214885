"""Request and response shapes of the monitoring API."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from liebian.shapes import Open

Level = Literal["一般", "重要", "紧急"]


class RuleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    metric: Literal["participation_rate", "fission_rate", "negative_share", "fraud_rate", "dq_error_rate"]
    op: Literal["<", ">"]
    threshold: float = Field(ge=0, le=1)
    campaign_id: str | None = None
    channel: str | None = None
    level: Level = "一般"
    action: Literal["none", "raise_reward_tier", "pause_campaign", "review_channel", "review_group"] = "none"
    auto_adjust: bool = False
    limits: dict[str, float] = Field(default_factory=dict)
    enabled: bool = True


class RulePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, min_length=1, max_length=100)
    op: Literal["<", ">"] | None = None
    threshold: float | None = Field(None, ge=0, le=1)
    level: Level | None = None
    action: (
        Literal["none", "raise_reward_tier", "pause_campaign", "review_channel", "review_group"] | None
    ) = None
    auto_adjust: bool | None = None
    limits: dict[str, float] | None = None
    enabled: bool | None = None


class ResolveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    root_cause: str = Field(min_length=1, max_length=4000)


class ChannelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=100)
    kind: Literal["wecom", "dingtalk", "webhook", "email"]
    target: str = Field(min_length=1, max_length=2000)
    secret: str = ""
    min_level: Level = "一般"


class ScanIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    metric: str
    start: date
    end: date
    campaign_id: str | None = None
    channel: str | None = None
    sensitivity: float = Field(3.0, gt=0)
    min_change: float = Field(0.15, ge=0)
    grain: Literal["day", "hour"] = "day"


# ------------------------------------------------------------------ responses


class RuleOut(Open):
    id: int
    name: str
    metric: str
    op: str
    threshold: float
    campaign_id: str | None = None
    channel: str | None = None
    level: str
    action: str
    auto_adjust: bool
    limits: dict[str, Any]
    enabled: bool


class AlertOut(Open):
    id: int
    kind: str | None = None
    metric: str | None = None
    scope: dict[str, Any] | None = None
    level: str | None = None
    status: str | None = None
    title: str | None = None


class AlertGroupOut(Open):
    """`grouped=true`: alerts folded by group key."""

    group_key: str
    alerts: int
    worst_level: str
    metrics: list[str]


class ChannelOut(Open):
    id: int
    name: str
    kind: str
    target: str
    signed: bool
    min_level: str
    enabled: bool


class DeliveryOut(Open):
    id: int
    alert_id: int | None = None
    channel_id: int | None = None
    channel: str | None = None
    event: str
    status: str
    attempts: int
    http_status: int | None = None
    error: str | None = None
    created_at: str | None = None


class SeriesOut(Open):
    metric: str
    grain: str
    scope: dict[str, str]
    points: list[Any]


class LiveSeriesOut(Open):
    campaign_id: str
    channel: str | None = None
    since: str
    metric: str
    points: list[Any]


class ScanOut(Open):
    """The detector's verdict over a series (anomalies and the model's expectations)."""
