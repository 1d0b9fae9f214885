"""Request shapes of the fraud API."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field


class Decision(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reviewer: str = Field(min_length=1, max_length=128, description="who decides (audited)")
    note: str = Field("", max_length=2000, description="reviewer's note (audited)")
    idempotency_key: str | None = Field(None, min_length=1, max_length=180)


class BulkDecision(Decision):
    action: Literal["approve", "reject"]
    case_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)
