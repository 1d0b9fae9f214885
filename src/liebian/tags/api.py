"""HTTP endpoints under /api/v1/tags: definitions, validation, recomputation, members, history, health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from liebian.db.session import session_scope
from liebian.predict.common import PredictError
from liebian.tags import service
from liebian.tags.rules import RuleError
from liebian.tags.schemas import RuleIn, TagIn
from liebian.tags.service import TagError

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])


def _error(exc: TagError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=exc.as_dict())


@router.get("/features")
def features() -> list[dict]:
    """The rule language's vocabulary: feature names, types and meanings."""
    return [{"name": k, "type": t, "description": d} for k, (t, d) in service.FEATURES.items()]


@router.post("/validate")
def validate(body: RuleIn):
    try:
        rule = service.check_rule(body.rule)
    except RuleError as exc:
        return JSONResponse(
            status_code=422,
            content={
                "detail": "invalid rule",
                "errors": [{"field": "rule", "reason": str(exc), **exc.as_dict()}],
            },
        )
    return {"valid": True, "features": sorted(rule.features)}


@router.get("")
def list_tags(all_versions: bool = False) -> list[dict]:
    with session_scope() as session:
        return service.list_tags(session, all_versions)


@router.post("", status_code=201)
def define(body: TagIn):
    try:
        with session_scope() as session:
            return service._tag_dict(
                service.define_tag(session, body.name, body.rule, body.level, body.description)
            )
    except TagError as exc:
        return _error(exc)


@router.post("/defaults")
def install_defaults() -> list[dict]:
    with session_scope() as session:
        return [service._tag_dict(t) for t in service.install_defaults(session)]


@router.post("/recompute")
def recompute():
    try:
        with session_scope() as session:
            return service.recompute(session)
    except PredictError as exc:
        return JSONResponse(
            status_code=422,
            content={"detail": "invalid request", "errors": [{"field": "warehouse", "reason": str(exc)}]},
        )


@router.get("/runs")
def runs(limit: int = Query(20, ge=1, le=1000)) -> list[dict]:
    with session_scope() as session:
        return service.runs(session, limit)


@router.get("/persons/{person_id}")
def person(person_id: Annotated[int, Path(ge=0, le=2**63 - 1)]):
    """A person's current tags and health score (health is null while the warehouse has no activity)."""
    try:
        with session_scope() as session:
            tags = service.person_tags(session, person_id)
        try:
            health = service.person_health(person_id)
        except PredictError:
            health = None
        return {"person_id": person_id, "tags": tags, "health": health}
    except TagError as exc:
        return _error(exc)


@router.get("/history")
def history(tag: str | None = None, person: int | None = None, limit: int = Query(1000, ge=1, le=100000)):
    try:
        with session_scope() as session:
            return service.history(session, tag, person, limit)
    except TagError as exc:
        return _error(exc)


@router.get("/{name}/members")
def members(name: str, limit: int = Query(1000, ge=1, le=100000), offset: int = Query(0, ge=0)):
    try:
        with session_scope() as session:
            return {"tag": name, "person_ids": service.members(session, name, limit, offset)}
    except TagError as exc:
        return _error(exc)


@router.delete("/{name}")
def retire(name: str):
    try:
        with session_scope() as session:
            return service._tag_dict(service.retire_tag(session, name))
    except TagError as exc:
        return _error(exc)
