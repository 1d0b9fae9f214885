"""Request and response shapes of the rewards API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from liebian.schemas import Int64, Request, UtcDateTime


class Reward(BaseModel):
    id: int
    campaign_id: str
    person_id: int
    reward_code: str
    value_fen: int
    state: str
    source_ref: str
    created_at: UtcDateTime
    reason: str = ""
    hold_until: UtcDateTime | None = None
    held_for_review: bool = False
    updated_at: UtcDateTime | None = None


class Entry(BaseModel):
    seq: int
    reward_id: int
    kind: str
    from_state: str | None
    to_state: str
    amount_fen: int
    campaign_id: str
    person_id: int
    actor: str
    note: str
    ts: UtcDateTime
    idempotency_key: str
    prev_hash: str
    hash: str
    v: int = 1
    # v2: the reward row after this entry, as sealed by its hash (rewards/ledger_hash.py)
    reward_after: str | None = None


class RewardDetail(Reward):
    entries: list[Entry]


class TransitionRequest(Request):
    """The ledger records the authenticated caller as the entry's actor; `note` is free text."""

    # Or the Idempotency-Key header; one of the two is required.
    idempotency_key: str | None = Field(default=None, max_length=160)
    note: str = Field(default="", max_length=2000, description="the caller's note, kept in the entry")


class ReviewHoldRequest(Request):
    held: bool
    note: str = Field(default="", max_length=2000, description="the caller's note, kept in the entry")


class VerifyResult(BaseModel):
    ok: bool
    entries_checked: int
    head_seq: int
    first_bad_seq: int | None
    reason: str
    projection_mismatches: list[dict]


class Balance(BaseModel):
    key: str
    state: str
    value_fen: int
    rewards: int


class IssueBatchRequest(Request):
    """Exactly one of `reward_ids` (the exported ids) or `all_approved: true` (every payable
    approved reward, of `campaign_id` if given); nothing is ever issued by default."""

    idempotency_key: str | None = Field(default=None, max_length=160)
    reward_ids: list[Int64] | None = Field(default=None, min_length=1, max_length=100_000)
    all_approved: bool = False
    campaign_id: str | None = Field(default=None, max_length=64)
    note: str = Field(default="", max_length=2000, description="the caller's note, kept in the entries")


class Batch(BaseModel):
    id: int
    idempotency_key: str
    actor: str
    created_at: UtcDateTime
    reward_count: int
    total_fen: int
    reward_ids: list[int]


class EndpointCreate(Request):
    url: str = Field(max_length=500)
    event_types: list[str] = Field(default_factory=lambda: ["*"])
    secret: str | None = Field(default=None, min_length=16, max_length=200)
    description: str = Field(default="", max_length=200)


class EndpointUpdate(Request):
    url: str | None = Field(default=None, max_length=500)
    event_types: list[str] | None = None
    active: bool | None = None
    description: str | None = Field(default=None, max_length=200)


class Endpoint(BaseModel):
    id: int
    url: str
    event_types: list[str]
    active: bool
    description: str
    created_at: UtcDateTime


class EndpointCreated(Endpoint):
    # Shown once, at creation; stored encrypted.
    secret: str


class Delivery(BaseModel):
    id: int
    delivery_uid: str
    endpoint_id: int
    event_type: str
    ledger_seq: int
    status: str
    attempts: int
    next_attempt_at: UtcDateTime
    last_status_code: int | None
    last_error: str
    created_at: UtcDateTime
    delivered_at: UtcDateTime | None


class DeliveryDetail(Delivery):
    payload: dict
    log: list[dict]


class MyBalance(BaseModel):
    state: str
    value_fen: int
    rewards: int


class MyReward(Reward):
    """A reward as the participant's page reads it (times as stored: naive UTC)."""

    created_at: datetime
    hold_until: datetime | None = None
    updated_at: datetime | None = None


class MyRewards(BaseModel):
    rewards: list[MyReward]
    balances: list[MyBalance]


class Released(BaseModel):
    released: int


class DeliveryRound(BaseModel):
    attempted: int
