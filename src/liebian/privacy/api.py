"""HTTP API of privacy: notices, consent, data-subject requests, reveal, the data inventory.
Who may call what is decided by auth.policy (enforced centrally), not here."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse

from liebian.auth.deps import client_ip, principal_of
from liebian.auth.schemas import encode
from liebian.db.session import session_scope
from liebian.privacy import inventory as data_inventory
from liebian.privacy import service, subject_requests, tokens
from liebian.privacy.schemas import (
    ConsentIn,
    ConsentOut,
    ConsentState,
    DeletionRecord,
    InventoryRow,
    NoticeCreate,
    NoticeOut,
    PersonExport,
    RequestOut,
    RevealOut,
    RevealRequest,
    SubjectRequest,
)
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1/privacy", tags=["privacy"])
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "forbidden"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {**ERRORS, 404: {"description": "no such person"}}


def _run(fn, *args, status: int = 200, **kwargs):
    with session_scope() as s:
        result = fn(s, *args, **kwargs)
    return JSONResponse(status_code=status, content=encode(result))


@router.get("/notices", response_model=list[NoticeOut], responses=ERRORS)
def notices():
    return _run(service.list_notices)


@router.get(
    "/notices/current", response_model=NoticeOut, responses={**ERRORS, 404: {"description": "none yet"}}
)
def notice_current():
    """The notice a front end shows before asking for consent."""
    with session_scope() as s:
        current = service.current_notice(s)
    if current is None:
        raise service.PrivacyError("not_found", "no privacy notice has been published", 404)
    return JSONResponse(encode(current))


@router.post(
    "/notices",
    response_model=NoticeOut,
    status_code=201,
    responses={**ERRORS, 422: {"description": "invalid"}},
)
def publish(body: NoticeCreate, request: Request):
    return _run(
        service.publish_notice,
        title=body.title,
        body=body.body,
        purposes=list(body.purposes),
        reconsent_purposes=list(body.reconsent_purposes),
        actor=principal_of(request).name,
        ip=client_ip(request),
        status=201,
    )


@router.post(
    "/consents",
    response_model=ConsentOut,
    status_code=201,
    responses={**NOT_FOUND, 422: {"description": "invalid"}},
)
def consent(
    body: ConsentIn,
    request: Request,
    x_participant_token: str | None = Header(None, description="the public key's participant token"),
):
    """Record a grant or a withdrawal; a withdrawal counts from this moment. With the public key,
    only for the participant token's own person."""
    caller = tokens.caller_person(request)
    if caller is not None and body.person_id != caller:
        raise service.PrivacyError(
            "forbidden", "person_id: a participant token records its own person's consent only", 403
        )
    return _run(
        service.record_consent,
        body.person_id,
        body.purpose,
        body.granted,
        notice_version=body.notice_version,
        source=body.source,
        actor=principal_of(request).name,
        status=201,
    )


@router.get("/consents/{person_id}", response_model=list[ConsentState], responses=NOT_FOUND)
def consent_state(person_id: Int64):
    return _run(service.consent_state, person_id)


@router.get("/inventory", response_model=list[InventoryRow], responses=ERRORS)
def inventory() -> list[dict]:
    """Which personal data liebian holds, where, protected how, for which purpose, kept how long:
    measured by scanning every table of both stores and every data file (slow on a large warehouse)."""
    return data_inventory.data_inventory()


@router.post("/requests/export", response_model=PersonExport, responses=NOT_FOUND)
def export(body: SubjectRequest, request: Request) -> dict:
    """Everything about a person across both stores (JSON). Audited."""
    return _run(
        subject_requests.export_person,
        body.person_id,
        actor=principal_of(request).name,
        ip=client_ip(request),
        reason=body.reason,
    )


@router.post("/requests/delete", response_model=DeletionRecord, responses=NOT_FOUND)
def delete(body: SubjectRequest, request: Request):
    """Erase a person's identifiers from both stores; returns the verifiable record."""
    return subject_requests.erase_person(
        body.person_id, actor=principal_of(request).name, ip=client_ip(request), reason=body.reason
    )


@router.get("/requests", response_model=list[RequestOut], responses=ERRORS)
def requests():
    return _run(subject_requests.list_requests)


@router.post("/persons/{person_id}/reveal", response_model=RevealOut, responses=NOT_FOUND)
def reveal(person_id: Int64, body: RevealRequest, request: Request):
    """Decrypt a person's phone (or payment account). Audited with the reason given."""
    with session_scope() as s:
        values = subject_requests.reveal(
            s,
            person_id,
            body.id_type,
            actor=principal_of(request).name,
            ip=client_ip(request),
            reason=body.reason,
        )
    return {"person_id": person_id, "id_type": body.id_type, "values": values}
