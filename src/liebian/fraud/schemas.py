"""Request shapes of the fraud API."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from liebian.shapes import Open


class Decision(BaseModel):
    """The reviewer is the authenticated caller (audited as such), never a field of the body."""

    model_config = ConfigDict(extra="forbid")
    note: str = Field("", max_length=2000, description="reviewer's note (audited)")
    idempotency_key: str | None = Field(None, min_length=1, max_length=180)


class BulkDecision(Decision):
    action: Literal["approve", "reject"]
    case_ids: list[Annotated[int, Field(ge=1, le=2**63 - 1)]] = Field(min_length=1, max_length=1000)


# ------------------------------------------------------------------ responses


class Reason(BaseModel):
    code: str
    text: str
    detail: Any = ""


class Case(Open):
    id: int
    case_key: str
    subject: str | None = None
    campaign_id: str | None = None
    channel: str | None = None
    person_id: int | None = None
    inviter_person_id: int | None = None
    referral_id: int | None = None
    source: str | None = None
    score: float
    pattern: str | None = None
    reasons: list[Reason]
    status: str
    reviewer: str | None = None
    note: str | None = None
    decided_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None


class Decided(Case):
    changed: bool
    effects: dict[str, Any]


class BulkOutcome(BaseModel):
    case_id: int
    status: str | None
    changed: bool
    error: str | None


class Rate(Open):
    """Rejected referrals / all referrals of one campaign or channel."""


class ReasonCode(BaseModel):
    code: str
    weight: float
    pattern: str
    zh: str
    en: str


class PersonRisk(Open):
    person_id: int
    score: float
    reasons: list[Any]
    details: list[Any]
    # and `pattern` when the last scan found the person


class ScanResult(Open):
    """What a graph scan found and how the review queue changed."""
