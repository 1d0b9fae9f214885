"""OneID over HTTP: look a person up by id or identifier, link two identifiers."""

from __future__ import annotations

from collections.abc import Iterator

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from liebian.db.session import session_scope
from liebian.identity import service
from liebian.identity.keys import IdentifierError, display_value
from liebian.identity.schemas import LinkIn, LinkOut, PersonOut

router = APIRouter(prefix="/api/v1", tags=["identity"])


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


def _invalid(field: str, reason: str) -> JSONResponse:
    # the same shape as the app's validation errors
    return JSONResponse(
        status_code=422, content={"detail": "invalid request", "errors": [{"field": field, "reason": reason}]}
    )


def _person(session: Session, person_id: int) -> PersonOut:
    view = service.person_view(session, person_id)
    if view is None:
        raise HTTPException(404, detail=f"no person {person_id}")
    return PersonOut(**view.__dict__)


@router.get("/persons/lookup", response_model=PersonOut)
def lookup_person(
    id_type: str = Query(..., description="unionid, openid, phone, external_userid, …"),
    id: str = Query(..., min_length=1, description="the identifier as the channel gives it"),
    session: Session = Depends(get_session),
):
    """The person holding an identifier (phones are matched by their HMAC, never stored in clear)."""
    try:
        person_id = service.find_person(session, id_type, id)
    except IdentifierError as exc:
        return _invalid("id" if exc.field != "id_type" else "id_type", exc.reason)
    if person_id is None:
        id_type = id_type.strip().lower()
        raise HTTPException(404, detail=f"no person has {id_type} {display_value(id_type, id)}")
    return _person(session, person_id)


@router.get("/persons/{person_id}", response_model=PersonOut)
def get_person(person_id: int, session: Session = Depends(get_session)) -> PersonOut:
    """A person and all their identifiers; an id merged away leads to the surviving person."""
    return _person(session, person_id)


@router.post("/identities/link", response_model=LinkOut)
def link_identities(body: LinkIn, session: Session = Depends(get_session)):
    """Record evidence that two identifiers are one human: merge, already the same, or conflict."""
    sides = {}
    for side, given in (("a", body.a), ("b", body.b)):
        try:
            sides[side] = service.RawIdentifier(given.id_type, given.id)
            sides[side].key  # noqa: B018 — hashing validates the value (empty, not a phone…)
        except IdentifierError as exc:
            return _invalid(f"{side}.id", exc.reason)
    result = service.link_pair(session, sides["a"], sides["b"], body.source, body.observed_at)
    session.commit()  # durable before the client hears "merged"
    return LinkOut(**result.__dict__)
