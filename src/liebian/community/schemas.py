"""Request and response shapes of the community API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from liebian.schemas import Request
from liebian.shapes import Open


class SentimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, max_length=1000)


class Sentiment(BaseModel):
    text: str
    label: str
    score: float
    terms: list[str]
    marketing: bool = Field(default=False, description="promotion copy (labelled neutral)")


class GroupHealth(Open):
    """One group's activity and health measures over the window; `membership_basis` says whether
    members come from join/leave events (`members`) or are the posters (`posters_only`, no speaking
    share)."""


class NegativeShare(Open):
    """One group's share of negative messages, and whether it crosses the alert line."""

    alert: bool


class Contributor(Open):
    """A KOC candidate: a member whose messages draw replies and referrals."""


class WeekActivity(BaseModel):
    """One group's week (its Monday): members, distinct posters, their share, the target."""

    group_id: str
    week: date
    members: int
    active: int
    share: float | None
    basis: str  # members (from join/leave events) | posters_only
    target: float
    below_target: bool


class TargetIn(Request):
    target: float = Field(ge=0, le=1, description="weekly-active share the group should reach")


class Target(BaseModel):
    group_id: str
    target: float


class Targets(BaseModel):
    default: float
    goal: float
    groups: list[Target]


class PersonCheckins(BaseModel):
    person_id: int
    days: int
    current_streak: int
    longest_streak: int
    last_day: date


class GroupCheckins(BaseModel):
    group_id: str
    checked_in: int
    members: int
    rate: float | None
    basis: str


class Checkins(BaseModel):
    persons: list[PersonCheckins]
    groups: list[GroupCheckins]


class GroupUgc(BaseModel):
    group_id: str
    messages: int
    member_messages: int
    staff_messages: int
    ugc_share: float | None


class CalendarItemIn(Request):
    group_id: str = Field(min_length=1, max_length=128)
    day: date
    kind: Literal["post", "theme_day"]
    title: str = Field(min_length=1, max_length=200)
    theme: str | None = Field(default=None, max_length=32, description="a content theme, e.g. 打卡互动")


class CalendarItemCreated(BaseModel):
    id: int


class CalendarItem(BaseModel):
    """A planned post or theme day with its results on the day and the 7 days before's average."""

    id: int
    group_id: str
    day: date
    kind: str
    title: str
    theme: str | None
    messages: int
    posters: int
    checkins: int
    theme_messages: int | None
    baseline_messages: float
    baseline_posters: float


class KocIn(Request):
    person_id: int = Field(ge=1, le=2**63 - 1, description="a contributor of the group's ranking")
    group_id: str = Field(min_length=1, max_length=128)


class KocStatusIn(Request):
    status: Literal["nominated", "active", "retired"]


class KocOut(BaseModel):
    id: int
    person_id: int
    group_id: str
    status: str
    nominated_by: str
    nominated_at: datetime
    updated_at: datetime


class KocTaskIn(Request):
    koc_id: int = Field(ge=1, le=2**31 - 1)
    kind: Literal["ugc_messages", "invitees", "checkin_hosted"]
    target: int = Field(ge=1, le=100_000)
    start: date
    end: date
    reward_fen: int = Field(ge=0, le=10_000_000, description="the reward in fen, granted through the ledger")


class KocTaskOut(BaseModel):
    id: int
    koc_id: int
    person_id: int
    group_id: str
    kind: str
    target: int
    start: date
    end: date
    reward_fen: int
    progress: int | None
    done: bool
    reward_id: int | None
    completed_at: datetime | None


class KocResult(BaseModel):
    """One KOC's results over a window: tasks (of the window) and those done, UGC messages and their
    share of the group's member messages, invitees who joined, reward granted and its cost (issued)."""

    koc_id: int
    person_id: int
    group_id: str
    status: str
    tasks: int
    tasks_done: int
    ugc_messages: int
    ugc_share: float | None
    invitees: int
    reward_fen: int
    reward_cost_fen: int
