"""The data-quality report: scores, per-field null rates, problems found, late data, anomalies."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from liebian.schemas import UtcDateTime


class FieldFill(BaseModel):
    table: str
    field: str
    required: bool = Field(
        description="required fields make the completeness score; optional ones are reported"
    )
    rows: int
    missing: int = Field(description="NULL or blank values")
    null_rate: float


class Completeness(BaseModel):
    score: float
    required_cells: int
    missing_cells: int
    fields: list[FieldFill]


class Consistency(BaseModel):
    score: float
    rows_checked: int = Field(description="events, orders, messages, referral edges (+ identity evidence)")
    rows_with_problems: int
    duplicate_content_events: int = Field(
        description="same person, event, channel within 1 s of the previous"
    )
    duplicate_order_ids: int = Field(description="rows beyond the first of one order_id")
    out_of_range_amounts: int = Field(
        description="orders with amount_fen ≤ 0, above the maximum, or 100× off the median order"
    )
    future_timestamps: int
    too_old_timestamps: int
    refunds_without_payment: int = Field(description="refunded orders whose refund precedes their payment")
    orders_without_events: int = Field(description="orders of persons with no behaviour event at all")
    edges_to_unknown_persons: int = Field(description="referral edges with an inviter or invitee never seen")
    identity_conflicts: int | None = Field(
        description="conflicting OneID evidence; None without a store session"
    )


class ChannelTimeliness(BaseModel):
    table: str
    channel: str
    rows: int
    late_rows: int
    late_rate: float
    median_delay_hours: float | None
    p95_delay_hours: float | None


class Timeliness(BaseModel):
    score: float
    late_hours: float
    rows: int
    late_rows: int
    late_events: int
    late_orders: int
    channels: list[ChannelTimeliness]


class VolumeAnomaly(BaseModel):
    table: str
    channel: str
    date: date
    observed: int
    expected: float = Field(description="median of the same weekday in the surrounding weeks")
    z: float = Field(description="robust z-score of log(observed / expected) against the channel's MAD")
    ratio: float | None = Field(description="observed / expected")
    explained_by: str | None = Field(
        default=None,
        description="the holiday calendar's name for the day (双11, 春节…): labelled, not an error",
    )


class RejectGroup(BaseModel):
    kind: str
    field: str | None
    reason: str
    category: str
    rows: int


class Quarantine(BaseModel):
    rejected_rows: int
    by_category: dict[str, int] = Field(
        description="bad_timestamp, missing_id, negative_amount, unknown_channel, bad_identifier, bad_amount, other"
    )
    by_reason: list[RejectGroup]


class ErrorRate(BaseModel):
    rows_received: int = Field(description="rows loaded into events/orders/messages plus rows rejected")
    rejected_rows: int
    problem_rows: int = Field(description="loaded rows with an out-of-range value or a duplicate")
    error_rate: float
    target: float
    passed: bool


class Scores(BaseModel):
    completeness: float
    consistency: float
    timeliness: float
    overall: float = Field(description="mean of the three")


class Finding(BaseModel):
    check: str
    table: str | None = None
    channel: str | None = None
    count: int
    detail: str
    # the numbers and names in `detail`, so that a client (the console) can say it in its language
    params: dict[str, float | int | str] = {}


class QualityReport(BaseModel):
    generated_at: UtcDateTime
    start: UtcDateTime | None
    end: UtcDateTime | None
    scores: Scores
    error_rate: ErrorRate
    completeness: Completeness
    consistency: Consistency
    timeliness: Timeliness
    volume_anomalies: list[VolumeAnomaly]
    quarantine: Quarantine
    findings: list[Finding]
