"""Request bodies of the tags API."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from liebian.schemas import Request
from liebian.shapes import Open


class TagIn(Request):
    name: str = Field(min_length=1, max_length=64)
    rule: str = Field(min_length=1, max_length=2000, examples=['orders_90d >= 3 and channel in ["wecom"]'])
    level: Literal["attribute", "behaviour", "value"]
    description: str = ""


class RuleIn(Request):
    rule: str = Field(min_length=1, max_length=2000)


# ------------------------------------------------------------------ responses


class Feature(BaseModel):
    name: str
    type: str
    description: str


class RuleCheck(BaseModel):
    valid: bool
    features: list[str]


class Tag(Open):
    """A tag version; listings add `members` (the current member count)."""

    name: str
    version: int
    level: str
    rule: str
    description: str | None = None
    created_by: str | None = None
    created_at: str | None = None
    retired_at: str | None = None


class Run(Open):
    run_id: int
    started_at: str
    finished_at: str | None = None
    data_at: str | None = None
    persons: int | None = None
    tags: Any = None


class PersonTag(BaseModel):
    tag: str
    version: int
    level: str
    since: str


class PersonTags(BaseModel):
    person_id: int
    tags: list[PersonTag]
    health: dict[str, Any] | None = None


class HistoryRow(BaseModel):
    tag: str
    version: int
    person_id: int
    assigned_at: str
    removed_at: str | None = None
    run_id: int | None = None


class Members(BaseModel):
    tag: str
    person_ids: list[int]


class Recompute(Open):
    """A recomputation run's summary (run id, persons, per-tag counts)."""
