"""Shapes of the collector API: a batch in, one result per item out."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

from liebian.schemas import Request

MAX_ITEMS = 1000


class Batch(Request):
    """1–1000 items in the generic format (see docs/formats.md); each item is checked on its own."""

    items: list[Any] = Field(min_length=1, description=f"1 to {MAX_ITEMS} events or orders")


class ItemError(BaseModel):
    field: str
    reason: str


class ItemResultOut(BaseModel):
    index: int
    status: Literal["accepted", "duplicate", "rejected"]
    errors: list[ItemError] = Field(default_factory=list)


class BatchResult(BaseModel):
    batch_id: str
    accepted: int
    duplicate: int
    rejected: int
    items: list[ItemResultOut]
