"""Request and response shapes of the OneID API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from liebian.identity.keys import IdentifierError, check_id_type
from liebian.schemas import EdgeDateTime


class IdentifierOut(BaseModel):
    id_type: str
    value: str = Field(description="masked for phones (138****1234) and long identifiers")
    source: str
    first_seen_at: datetime


class PersonOut(BaseModel):
    person_id: int = Field(description="the person now holding the identifiers (a merged id is followed)")
    created_at: datetime
    merged_from: list[int] = Field(description="person ids merged into this one")
    identifiers: list[IdentifierOut]


class IdentifierIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_type: str = Field(examples=["phone"])
    id: str = Field(min_length=1, max_length=128, examples=["13800001234"])

    @field_validator("id_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        try:
            return check_id_type(value)
        except IdentifierError as exc:
            raise ValueError(exc.reason) from None


class LinkIn(BaseModel):
    """Evidence that two identifiers belong to one human (e.g. a WeCom contact bound a phone)."""

    model_config = ConfigDict(extra="forbid")
    a: IdentifierIn
    b: IdentifierIn
    source: str = Field("api", max_length=64)
    observed_at: EdgeDateTime | None = Field(
        None, description="when the evidence was seen (Z, an offset, or the display zone); default now"
    )


class LinkOut(BaseModel):
    outcome: Literal["merged", "already_same", "conflict"]
    person_id: int | None = Field(description="the person of identifier a after the link")
    person_id_b: int | None = Field(description="the person of identifier b (differs only on conflict)")
    detail: str = ""
    merges: dict[int, int] = Field(default_factory=dict, description="merged person id → survivor")
