"""Request and response shapes of the points (积分) API."""

from __future__ import annotations

from pydantic import BaseModel, Field

from liebian.rewards.points import MAX_POINTS
from liebian.rewards.schemas import VerifyResult
from liebian.schemas import Int64, Request, UtcDateTime


class _Write(Request):
    person_id: Int64
    # Or the Idempotency-Key header; one of the two is required.
    idempotency_key: str | None = Field(default=None, max_length=160)
    reason: str = Field(default="", max_length=2000, description="why (free text, recorded in the entry)")


class GrantRequest(_Write):
    points: int = Field(gt=0, le=MAX_POINTS)
    campaign_id: str = Field(default="", max_length=64)
    source_ref: str = Field(default="", max_length=128, description="the order or event that earned them")


class SpendRequest(_Write):
    points: int = Field(gt=0, le=MAX_POINTS)


class AdjustRequest(_Write):
    delta: int = Field(ge=-MAX_POINTS, le=MAX_POINTS, description="points added (> 0) or taken (< 0)")
    reason: str = Field(min_length=1, max_length=2000, description="why the balance is corrected")


class RevokeRequest(Request):
    source_ref: str = Field(min_length=1, max_length=128)
    idempotency_key: str | None = Field(default=None, max_length=160)
    reason: str = Field(default="revoked", max_length=2000)


class PointsEntry(BaseModel):
    seq: int
    person_id: int
    kind: str = Field(description="earn, spend, expire, revoke or adjust")
    delta: int
    balance_after: int
    reason: str
    campaign_id: str
    source_ref: str
    expires_at: UtcDateTime | None
    actor: str
    ts: UtcDateTime
    idempotency_key: str
    duplicate: bool = Field(False, description="an idempotent repeat: the first call's result")


class Expiring(BaseModel):
    expires_at: UtcDateTime
    points: int


class PointsBalance(BaseModel):
    person_id: int
    balance: int
    expiring: list[Expiring] = Field(description="the points of the balance by expiry, soonest first")


PointsVerify = VerifyResult  # one verify report for both hash-chained ledgers
