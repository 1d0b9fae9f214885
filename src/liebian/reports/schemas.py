"""Shapes at the edges of the reports domain."""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from liebian.shapes import Open


class TargetIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=128)
    metric: str = Field(description="a KPI key, e.g. retention_d1")
    baseline: float
    target: float
    start_date: date
    due_date: date
    owner: str = Field("", max_length=128)


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["weekly", "monthly"]
    channel: Literal["email", "webhook"]
    address: str = Field(min_length=3, max_length=512)
    secret: str | None = Field(None, description="webhook signing secret (16+ characters)")


class DocumentIn(BaseModel):
    """A report to generate and keep; without start/end the last complete week or month."""

    model_config = ConfigDict(extra="forbid")
    kind: Literal["weekly", "monthly"] = "weekly"
    start: date | None = None
    end: date | None = None


# ------------------------------------------------------------------ responses


class Report(Open):
    """A report's data: the period, the KPIs against their targets, the sections."""

    kind: str
    period_start: str
    period_end: str


class TargetOut(BaseModel):
    id: int
    name: str
    metric: str
    baseline: float
    target: float
    start_date: str
    due_date: str
    owner: str | None = None


class SubscriptionOut(BaseModel):
    id: int
    kind: str
    channel: str
    address: str
    active: bool


class RunOut(Open):
    id: int
    subscription_id: int | None = None
    kind: str
    period_start: str
    period_end: str
    status: str
    detail: str | None = None
    sent_at: str | None = None


class SentOut(Open):
    subscription_id: int
    kind: str
    period_start: str
    status: str
    detail: str | None = None


class DocumentOut(Open):
    id: int
    kind: str
    period_start: str
    period_end: str
    status: str
    detail: str | None = None
    requested_by: str | None = None
    created_at: str
    finished_at: str | None = None


class KeptDocument(DocumentOut):
    report: dict[str, Any]
