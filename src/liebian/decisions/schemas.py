"""Request and response shapes of the decisions API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from liebian.schemas import Int64, Request
from liebian.shapes import Open

OptionCode = Literal[
    "raise_invitee_reward",
    "shorten_window",
    "cap_per_inviter",
    "pause_campaign",
    "move_budget_to_best_channel",
]


class ProposeIn(Request):
    alert_id: Int64
    option: OptionCode


class RejectIn(Request):
    reason: str = Field(min_length=1, max_length=4000)


class OptionOut(Open):
    option: str
    title_zh: str
    title_en: str
    campaign_id: str | None = None
    proposable: bool
    expected: dict[str, Any]
    evidence: dict[str, Any]


class AlertOptionsOut(Open):
    alert_id: int
    finding: str
    options: list[OptionOut]


class ProposalOut(Open):
    id: int
    campaign_id: str
    base_version: int
    option: str
    source: str
    rules: dict[str, Any]
    status: str
    created_by: str
    applied_version: int | None = None
