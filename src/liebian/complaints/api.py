"""HTTP endpoints under /api/v1/complaints: intake (operators, and front ends with the public key
for their participant's own person), what is due, a case, assign, resolve, the clock."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, Header, Query, Request

from liebian.auth.deps import client_ip, principal_of
from liebian.complaints import service
from liebian.complaints.schemas import AssignIn, ClockOut, ComplaintIn, ComplaintOut, ResolveIn
from liebian.db.session import session_scope
from liebian.privacy import tokens
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1/complaints", tags=["complaints"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "forbidden"},
    404: {"description": "no such complaint or person"},
    409: {"description": "the case is resolved"},
    422: {"description": "invalid"},
}


def _intake(body: ComplaintIn, request: Request) -> service.Intake:
    """The public key files for its participant token's own person only, now, without an owner."""
    caller = tokens.caller_person(request)
    if caller is not None:
        if body.id_type is not None or (body.person_id is not None and body.person_id != caller):
            raise service.ComplaintError(
                "forbidden",
                "person_id: a participant token files for its own person only",
                403,
                field="person_id",
            )
        if body.owner is not None or body.received_at is not None:
            raise service.ComplaintError(
                "forbidden", "owner: only operators assign cases or date them", 403, field="owner"
            )
    return service.Intake(
        kind=body.kind,
        channel=body.channel,
        category=body.category,
        text=body.text,
        person_id=caller if caller is not None else body.person_id,
        id_type=body.id_type,
        id_value=body.id_value,
        owner=body.owner,
        received_at=body.received_at,
    )


@router.post("", status_code=201, response_model=ComplaintOut, responses=ERRORS)
def create(
    body: ComplaintIn,
    request: Request,
    x_participant_token: str | None = Header(None, description="the public key's participant token"),
):
    """Record a complaint or a data-subject request; the response clock starts when it was received."""
    intake = _intake(body, request)
    with session_scope() as s:
        return service.create(s, intake, actor=principal_of(request).name, ip=client_ip(request))


@router.get("", response_model=list[ComplaintOut], responses=ERRORS)
def list_cases(
    status: Literal["open", "resolved"] | None = None,
    kind: Literal["complaint", "subject_request"] | None = None,
    owner: str | None = Query(None, max_length=128),
    limit: int = Query(500, ge=1, le=10_000),
):
    with session_scope() as s:
        return service.list_cases(s, status=status, kind=kind, owner=owner, limit=limit)


@router.get("/due", response_model=list[ComplaintOut], responses=ERRORS)
def due():
    """Every open case, overdue first, then by deadline."""
    with session_scope() as s:
        return service.due(s)


@router.get("/{case_id}", response_model=ComplaintOut, responses=ERRORS)
def get(case_id: Int64):
    with session_scope() as s:
        return service.get(s, case_id)


@router.post("/{case_id}/assign", response_model=ComplaintOut, responses=ERRORS)
def assign(case_id: Int64, body: AssignIn, request: Request):
    with session_scope() as s:
        return service.assign(s, case_id, body.owner, actor=principal_of(request).name, ip=client_ip(request))


@router.post("/{case_id}/resolve", response_model=ComplaintOut, responses=ERRORS)
def resolve(case_id: Int64, body: ResolveIn, request: Request):
    with session_scope() as s:
        return service.resolve(
            s, case_id, body.resolution, body.reason, actor=principal_of(request).name, ip=client_ip(request)
        )


@router.post("/clock", response_model=ClockOut, responses=ERRORS)
def clock():
    """Run the clock now (as the `complaints-escalate` job does): reminders and escalations."""
    with session_scope() as s:
        return service.run_clock(s)
