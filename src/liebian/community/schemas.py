"""Request and response shapes of the community API."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from liebian.shapes import Open


class SentimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, max_length=1000)


class Sentiment(BaseModel):
    text: str
    label: str
    score: float
    terms: list[str]


class GroupHealth(Open):
    """One group's activity and health measures over the window."""


class NegativeShare(Open):
    """One group's share of negative messages, and whether it crosses the alert line."""

    alert: bool


class Contributor(Open):
    """A KOC candidate: a member whose messages draw replies and referrals."""
