"""HTTP endpoints under /api/v1/tags: definitions, validation, recomputation, members, history, health."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from liebian.db.session import session_scope
from liebian.errors import blame
from liebian.predict.common import PredictError
from liebian.schemas import Int64
from liebian.tags import schemas, service
from liebian.tags.schemas import RuleIn, TagIn

router = APIRouter(prefix="/api/v1/tags", tags=["tags"])


@router.get("/features", response_model=list[schemas.Feature])
def features() -> list[dict]:
    """The rule language's vocabulary: feature names, types and meanings."""
    return [{"name": k, "type": t, "description": d} for k, (t, d) in service.FEATURES.items()]


@router.post("/validate", response_model=schemas.RuleCheck)
def validate(body: RuleIn):
    rule = service.check_rule(body.rule)
    return {"valid": True, "features": sorted(rule.features)}


@router.get("", response_model=list[schemas.Tag])
def list_tags(all_versions: bool = False) -> list[schemas.Tag]:
    with session_scope() as session:
        return service.list_tags(session, all_versions)


@router.post("", status_code=201, response_model=schemas.Tag)
def define(body: TagIn):
    with session_scope() as session:
        return service.tag_view(
            service.define_tag(session, body.name, body.rule, body.level, body.description)
        )


@router.post("/defaults", response_model=list[schemas.Tag])
def install_defaults() -> list[schemas.Tag]:
    with session_scope() as session:
        return [service.tag_view(t) for t in service.install_defaults(session)]


@router.post("/recompute", response_model=schemas.Recompute)
def recompute():
    with blame("warehouse"), session_scope() as session:
        return service.recompute(session)


@router.get("/runs", response_model=list[schemas.Run])
def runs(limit: int = Query(20, ge=1, le=1000)) -> list[schemas.Run]:
    with session_scope() as session:
        return service.runs(session, limit)


@router.get("/persons/{person_id}", response_model=schemas.PersonTags)
def person(person_id: Annotated[int, Path(ge=0, le=2**63 - 1)]):
    """A person's current tags and health score (health is null while the warehouse has no activity)."""
    with session_scope() as session:
        tags = service.person_tags(session, person_id)
    try:
        health = service.person_health(person_id)
    except PredictError:
        health = None
    return {"person_id": person_id, "tags": tags, "health": health}


@router.get("/history", response_model=list[schemas.HistoryRow])
def history(tag: str | None = None, person: Int64 | None = None, limit: int = Query(1000, ge=1, le=100000)):
    with session_scope() as session:
        return service.history(session, tag, person, limit)


@router.get("/{name}/members", response_model=schemas.Members)
def members(name: str, limit: int = Query(1000, ge=1, le=100000), offset: int = Query(0, ge=0)):
    with session_scope() as session:
        return {"tag": name, "person_ids": service.members(session, name, limit, offset)}


@router.delete("/{name}", response_model=schemas.Tag)
def retire(name: str):
    with session_scope() as session:
        return service.tag_view(service.retire_tag(session, name))
