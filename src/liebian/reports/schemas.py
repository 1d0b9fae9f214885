"""Shapes at the edges of the reports domain."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


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
