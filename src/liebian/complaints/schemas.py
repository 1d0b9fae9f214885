"""Shapes at the edges of complaints: intake, assignment, resolution, the case as answered."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, Field, model_validator

from liebian.schemas import EdgeDateTime, InTimeRange, Request, UtcDateTime

Name = Annotated[str, Field(min_length=1, max_length=32, pattern=r"^[a-z][a-z0-9_]*$")]
Owner = Annotated[str, Field(min_length=1, max_length=128)]
PersonId = Annotated[int, Field(ge=1, le=2**63 - 1)]


class ComplaintIn(Request):
    """A complaint or a data-subject request as received. The person is named by id or by one
    identifier (resolved through identity; the identifier itself is not kept)."""

    kind: Literal["complaint", "subject_request"] = "complaint"
    channel: Name = Field(description="where it came in: wecom, miniprogram, app, phone, store, …")
    category: Name = Field(
        description="complaint: reward, product, food_safety, …; request: access, deletion, …"
    )
    text: str = Field(min_length=1, max_length=4000, description="what the person said (PII is masked)")
    person_id: PersonId | None = None
    id_type: str | None = Field(None, min_length=1, max_length=32)
    id_value: str | None = Field(None, min_length=1, max_length=256)
    owner: Owner | None = Field(None, description="the console user who handles it")
    received_at: Annotated[EdgeDateTime, InTimeRange] | None = Field(
        None, description="when it was received (default: now); the clock starts here"
    )

    @model_validator(mode="after")
    def _person(self) -> ComplaintIn:
        if (self.id_type is None) != (self.id_value is None):
            raise ValueError("id_type and id_value: give both or neither")
        if self.person_id is not None and self.id_type is not None:
            raise ValueError("person_id: give a person id or an identifier, not both")
        if self.kind == "subject_request" and self.person_id is None and self.id_type is None:
            raise ValueError(
                "person_id: a data-subject request names its person (person_id or id_type + id_value)"
            )
        return self


class AssignIn(Request):
    owner: Owner


class ResolveIn(Request):
    resolution: Literal["upheld", "rejected", "fulfilled", "withdrawn"]
    reason: str = Field(min_length=1, max_length=2000, description="why, as told to the person (audited)")


class ComplaintOut(BaseModel):
    id: int
    kind: str
    channel: str
    category: str
    person_id: int | None
    text: str
    owner: str
    status: str
    state: str = Field(description="open, due_soon (reminded), overdue, resolved")
    received_at: UtcDateTime
    due_at: UtcDateTime
    reminded_at: UtcDateTime | None
    escalated_at: UtcDateTime | None
    escalations: int
    resolution: str
    resolution_reason: str
    resolved_by: str
    resolved_at: UtcDateTime | None
    created_by: str


class ClockOut(BaseModel):
    """What one run of the clock did: reminders sent before the deadline, escalations after it."""

    reminded: list[int]
    escalated: list[int]
