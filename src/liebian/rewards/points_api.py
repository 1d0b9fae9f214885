"""Points (积分) API for operators: grant, spend, adjust, revoke; a person's balance and history;
verify the chain (thin over rewards/points.py).

The actor of every entry is the authenticated principal; the caller's words go into `reason`.
There is no participant-facing route: the public front-end key cannot prove which person is
calling (no participant token yet), so a person's balance is an operator read.
"""

from __future__ import annotations

from typing import TypedDict

from fastapi import APIRouter, Header, Query, Request

from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.rewards import points
from liebian.rewards import points_schemas as schemas
from liebian.rewards.points import PointsError
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1/points", tags=["points"])


def _key(body_key: str | None, header_key: str | None) -> str:
    key = body_key or header_key
    if not key:
        raise PointsError(
            "invalid", "idempotency_key: required (in the body or the Idempotency-Key header)", 422
        )
    return key


class _WrittenBy(TypedDict):
    idempotency_key: str
    actor: str


def _written_by(request: Request, body_key: str | None, header_key: str | None) -> _WrittenBy:
    """The idempotency key and the actor every write carries."""
    return {"idempotency_key": _key(body_key, header_key), "actor": principal_of(request).name}


@router.post("/grant", response_model=schemas.PointsEntry)
def grant(
    body: schemas.GrantRequest,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Credit points to a person; they expire after `points_expire_days`. Idempotent by key."""
    with session_scope() as s:
        return points.earn(
            s,
            person_id=body.person_id,
            points=body.points,
            reason=body.reason,
            campaign_id=body.campaign_id,
            source_ref=body.source_ref,
            **_written_by(request, body.idempotency_key, idempotency_key),
        ).as_dict()


@router.post("/spend", response_model=schemas.PointsEntry)
def spend(
    body: schemas.SpendRequest,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Debit points, those that expire first first; 409 `insufficient_points` beyond the balance."""
    with session_scope() as s:
        return points.spend(
            s,
            person_id=body.person_id,
            points=body.points,
            reason=body.reason,
            **_written_by(request, body.idempotency_key, idempotency_key),
        ).as_dict()


@router.post("/adjust", response_model=schemas.PointsEntry)
def adjust(
    body: schemas.AdjustRequest,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Correct a balance up or down (never below zero), saying why."""
    with session_scope() as s:
        return points.adjust(
            s,
            person_id=body.person_id,
            delta=body.delta,
            reason=body.reason,
            **_written_by(request, body.idempotency_key, idempotency_key),
        ).as_dict()


@router.post("/revoke", response_model=list[schemas.PointsEntry])
def revoke(
    body: schemas.RevokeRequest,
    request: Request,
    idempotency_key: str | None = Header(default=None, alias="Idempotency-Key"),
):
    """Take back the points an order or event earned (what is left of them), once per earner."""
    with session_scope() as s:
        return [
            r.as_dict()
            for r in points.revoke_source(
                s,
                body.source_ref,
                **_written_by(request, body.idempotency_key, idempotency_key),
                reason=body.reason,
            )
        ]


@router.get("/persons/{person_id}", response_model=schemas.PointsBalance)
def balance(person_id: Int64):
    """A person's points (merged OneID persons included) and when they expire."""
    with session_scope() as s:
        return points.balance(s, person_id)


@router.get("/persons/{person_id}/history", response_model=list[schemas.PointsEntry])
def history(person_id: Int64, limit: int = Query(100, ge=1, le=1000), offset: int = Query(0, ge=0, le=10**9)):
    """A person's points entries, newest first."""
    with session_scope() as s:
        return [r.as_dict() for r in points.history(s, person_id, limit=limit, offset=offset)]


@router.get("/verify", response_model=schemas.PointsVerify)
def verify():
    """Replay the points chain; `first_bad_seq` names the first edited, deleted or inserted entry."""
    with session_scope() as s:
        return points.verify(s).as_dict()
