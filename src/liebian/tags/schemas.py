"""Request bodies of the tags API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class TagIn(BaseModel):
    name: str = Field(min_length=1, max_length=64)
    rule: str = Field(min_length=1, max_length=2000, examples=['orders_90d >= 3 and channel in ["wecom"]'])
    level: Literal["attribute", "behaviour", "value"]
    description: str = ""


class RuleIn(BaseModel):
    rule: str = Field(min_length=1, max_length=2000)
