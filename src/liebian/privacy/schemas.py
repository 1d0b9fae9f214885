"""Shapes at the edges of the privacy API."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from liebian.auth.schemas import UtcDateTime
from liebian.shapes import Open

Purpose = Literal["collection", "marketing", "analytics", "sharing"]


class NoticeCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=200_000)
    purposes: list[Purpose] = Field(min_length=1, max_length=4)
    reconsent_purposes: list[Purpose] = Field(default_factory=list, max_length=4)


class NoticeOut(BaseModel):
    version: int
    title: str
    body: str
    purposes: list[str]
    reconsent_purposes: list[str]
    published_by: str
    published_at: UtcDateTime


class ConsentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: int = Field(ge=-(2**63), le=2**63 - 1)
    purpose: Purpose
    granted: bool
    notice_version: int | None = Field(default=None, ge=0, le=2**31 - 1)
    source: str = Field(default="", max_length=64)


class ConsentOut(BaseModel):
    id: int
    person_id: int
    purpose: str
    granted: bool
    notice_version: int
    recorded_at: UtcDateTime


class ConsentState(BaseModel):
    purpose: str
    granted: bool
    effective: bool
    notice_version: int | None = None
    recorded_at: UtcDateTime | None = None
    source: str | None = None


class SubjectRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    person_id: int = Field(ge=-(2**63), le=2**63 - 1)
    reason: str = Field(default="", max_length=2000)


class RevealRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id_type: Literal["phone", "payment_account"] = "phone"
    reason: str = Field(min_length=1, max_length=2000)


class RevealOut(BaseModel):
    person_id: int
    id_type: str
    values: list[str]


class DeletionRecord(BaseModel):
    request_id: int
    record_hash: str
    person_ids: list[int]
    identifiers_removed: list[dict]
    operational: dict[str, int]
    warehouse: dict[str, int]
    files: dict[str, int] = Field(
        default_factory=dict, description="data files rewritten: rows removed per file"
    )
    kept: dict
    traces_after: dict[str, int]


class RequestOut(BaseModel):
    id: int
    kind: str
    person_id: int
    requested_by: str
    status: str
    record: dict
    record_hash: str
    created_at: UtcDateTime
    completed_at: UtcDateTime | None = None


class InventoryRow(BaseModel):
    data: str = Field(description="what was found: identifiers in clear, hashed, sealed, pseudonymous ids")
    where: str = Field(description="store: table.column, or file: path in the data directory")
    purpose: str
    protection: str
    retention: str
    rows: int = Field(0, description="non-empty values scanned")
    clear: int = Field(0, description="identifiers found in clear text (should be 0)")


class PersonExport(Open):
    """Everything liebian holds about one person, by store and table (the tables vary with the data)."""

    person_id: int
