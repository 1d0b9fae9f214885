"""OneID over HTTP: look a person up by id or identifier, link two identifiers."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager

from fastapi import APIRouter, Depends, Query
from sqlalchemy.orm import Session

from liebian.db.session import session_scope
from liebian.errors import NotFound
from liebian.identity import service
from liebian.identity.keys import IdentifierError, display_value
from liebian.identity.schemas import LinkIn, LinkOut, PersonOut
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1", tags=["identity"])


def get_session() -> Iterator[Session]:
    with session_scope() as session:
        yield session


@contextmanager
def blame_identifier(rename: Callable[[str], str]) -> Iterator[None]:
    """An IdentifierError names the request's field (`id`, `a.id`…), not the service's."""
    try:
        yield
    except IdentifierError as exc:
        exc.field = rename(exc.field or "")
        raise


def _named(field: str) -> Callable[[str], str]:
    """A renamer for `blame_identifier` that names one request field whatever the service called it."""
    return lambda _service_field: field


def _person(session: Session, person_id: int) -> PersonOut:
    view = service.person_view(session, person_id)
    if view is None:
        raise NotFound("not_found", f"no person {person_id}")
    return PersonOut(**view.__dict__)


@router.get("/persons/lookup", response_model=PersonOut)
def lookup_person(
    id_type: str = Query(..., description="unionid, openid, phone, external_userid, …"),
    id: str = Query(..., min_length=1, description="the identifier as the channel gives it"),
    session: Session = Depends(get_session),
):
    """The person holding an identifier (phones are matched by their HMAC, never stored in clear)."""
    with blame_identifier(lambda field: "id" if field != "id_type" else "id_type"):
        person_id = service.find_person(session, id_type, id)
    if person_id is None:
        id_type = id_type.strip().lower()
        raise NotFound("not_found", f"no person has {id_type} {display_value(id_type, id)}")
    return _person(session, person_id)


@router.get("/persons/{person_id}", response_model=PersonOut)
def get_person(person_id: Int64, session: Session = Depends(get_session)) -> PersonOut:
    """A person and all their identifiers; an id merged away leads to the surviving person."""
    return _person(session, person_id)


@router.post("/identities/link", response_model=LinkOut)
def link_identities(body: LinkIn, session: Session = Depends(get_session)):
    """Record evidence that two identifiers are one human: merge, already the same, or conflict."""
    sides = {}
    for side, given in (("a", body.a), ("b", body.b)):
        with blame_identifier(_named(f"{side}.id")):
            sides[side] = service.RawIdentifier(given.id_type, given.id)
            sides[side].key  # noqa: B018 — hashing validates the value (empty, not a phone…)
    result = service.link_pair(session, sides["a"], sides["b"], body.source, body.observed_at)
    session.commit()  # durable before the client hears "merged"
    return LinkOut(**result.__dict__)
