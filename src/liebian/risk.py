"""The risk seam between the campaign engine and the fraud domain.

The campaign flows describe what happens (`RiskContext`: an invite accepted, a conversion
reported) and call `assess` with the checks the wiring gives them (`liebian.ports.current()
.risk_checks`; the fraud domain implements them, `liebian.fraud.inline.RISK_CHECKS`). Each check
returns `RiskSignal`s with a stable code and a score; the campaign's risk policy adds the scores up
and decides allow, hold (rewards wait for a reviewer) or block.

This module imports no domain service: campaigns and fraud both depend on it, not on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from sqlalchemy.orm import Session

from liebian.campaigns.schemas import CampaignRules
from liebian.db.base import utcnow

Decision = Literal["allow", "hold", "block"]


@dataclass
class RiskContext:
    stage: str  # accept | conversion
    campaign_id: str
    version: int
    rules: CampaignRules
    inviter: int | None
    friend: int | None
    device_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    phone: str | None = None
    payment_account: str | None = None
    ts: datetime = field(default_factory=utcnow)
    referral_id: int | None = None
    friend_is_new: bool = False  # founded by this request: no history in OneID


@dataclass
class RiskSignal:
    code: str
    score: int
    detail: str = ""


RiskCheck = Callable[[Session, RiskContext], list[RiskSignal]]


@dataclass(frozen=True)
class Assessment:
    decision: Decision
    score: int
    signals: list[RiskSignal]


def assess(session: Session, ctx: RiskContext, checks: Iterable[RiskCheck]) -> Assessment:
    """Run every check in order; the summed score against the campaign's policy decides."""
    signals: list[RiskSignal] = []
    for check in checks:
        signals.extend(check(session, ctx))
    score = sum(s.score for s in signals)
    policy = ctx.rules.risk_policy
    decision: Decision = (
        "block" if score >= policy.block_at else "hold" if score >= policy.hold_at else "allow"
    )
    return Assessment(decision, score, signals)
