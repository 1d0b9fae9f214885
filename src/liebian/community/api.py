"""HTTP endpoints under /api/v1/community: group health, negative share, KOC candidates, sentiment,
and the programme: weekly-active share against targets, check-ins with streaks, UGC share, the KOC
programme (nominate, tasks, rewards through the ledger, results)."""

from __future__ import annotations

from dataclasses import asdict
from datetime import date, timedelta
from typing import Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from liebian.auth.deps import principal_of
from liebian.community import content_calendar, days, koc, programme, schemas, sentiment, service
from liebian.community.schemas import SentimentIn
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.errors import NotFound

router = APIRouter(prefix="/api/v1/community", tags=["community"])


@router.get("/groups", response_model=list[schemas.GroupHealth])
def groups(start: date | None = None, end: date | None = None, group_id: str | None = None):
    with warehouse.connect() as con:
        return service.group_health(con, start, end, group_id)


@router.get("/negative", response_model=list[schemas.NegativeShare])
def negative(
    start: date | None = None, end: date | None = None, group_id: str | None = None, only_alerts: bool = False
):
    with warehouse.connect() as con:
        rows = service.negative_share(con, start, end, group_id)
    return [r for r in rows if r["alert"]] if only_alerts else rows


@router.get("/contributors", response_model=list[schemas.Contributor])
def contributors(
    start: date | None = None, end: date | None = None, group_id: str | None = None,
    limit: int = Query(20, ge=1, le=1000),
):  # fmt: skip
    with warehouse.connect() as con:
        return service.top_contributors(con, start, end, group_id, limit)


@router.post("/sentiment", response_model=list[schemas.Sentiment])
def classify(body: SentimentIn) -> list[dict]:
    out = []
    for text in body.texts:
        r = sentiment.classify(text)
        out.append(
            {
                "text": text,
                "label": r.label,
                "score": r.score,
                "terms": list(r.terms),
                "marketing": r.marketing,
            }
        )
    return out


GROUP = Query(None, max_length=programme.MAX_GROUP_ID)
GROUP_PATH = Path(min_length=1, max_length=programme.MAX_GROUP_ID)
SERIES_WEEKS = 8  # the default window of the weekly series


@router.get("/weekly-active", response_model=list[schemas.WeekActivity])
def weekly_active(
    start: date | None = None, end: date | None = None, group_id: str | None = GROUP
) -> list[dict]:
    end = end or days.today()
    start = start or end - timedelta(weeks=SERIES_WEEKS - 1)
    with warehouse.connect() as con, session_scope() as s:
        return [asdict(w) for w in programme.weekly_active(con, s, start, end, group_id)]


@router.get("/targets", response_model=schemas.Targets)
def list_targets() -> dict:
    settings = get_settings()
    with session_scope() as s:
        groups = [{"group_id": g, "target": t} for g, t in programme.targets(s).items()]
    return {"default": settings.community_weekly_active_target, "goal": settings.community_weekly_active_goal,
            "groups": groups}  # fmt: skip


@router.put("/targets/{group_id}", response_model=schemas.Target)
def set_target(body: schemas.TargetIn, request: Request, group_id: str = GROUP_PATH) -> dict:
    with session_scope() as s:
        return programme.set_target(s, group_id, body.target, principal_of(request).name)


@router.delete("/targets/{group_id}", status_code=204, response_class=Response)
def clear_target(request: Request, group_id: str = GROUP_PATH) -> None:
    with session_scope() as s:
        if not programme.clear_target(s, group_id, principal_of(request).name):
            raise NotFound("not_found", f"group_id: {group_id!r} has no target of its own", field="group_id")


@router.get("/checkins", response_model=schemas.Checkins)
def checkins(
    start: date | None = None, end: date | None = None, group_id: str | None = GROUP,
    limit: int = Query(100, ge=1, le=10_000),
) -> dict:  # fmt: skip
    with warehouse.connect() as con:
        return asdict(programme.checkins(con, start, end, group_id, limit))


@router.get("/ugc", response_model=list[schemas.GroupUgc])
def ugc(start: date | None = None, end: date | None = None, group_id: str | None = GROUP) -> list[dict]:
    with warehouse.connect() as con:
        return [asdict(g) for g in programme.ugc_share(con, start, end, group_id)]


@router.get("/calendar", response_model=list[schemas.CalendarItem])
def calendar(
    start: date | None = None, end: date | None = None, group_id: str | None = GROUP
) -> list[schemas.CalendarItem]:
    with warehouse.connect() as con, session_scope() as s:
        return content_calendar.calendar(con, s, start, end, group_id)


@router.post("/calendar", status_code=201, response_model=schemas.CalendarItemCreated)
def add_calendar_item(body: schemas.CalendarItemIn, request: Request) -> dict:
    with session_scope() as s:
        item_id = content_calendar.add_item(
            s, body.group_id, body.day, body.kind, body.title, body.theme, principal_of(request).name
        )
    return {"id": item_id}


@router.delete("/calendar/{item_id}", status_code=204, response_class=Response)
def remove_calendar_item(request: Request, item_id: int = Path(ge=1, le=2**31 - 1)) -> None:
    with session_scope() as s:
        content_calendar.remove_item(s, item_id, principal_of(request).name)


# ------------------------------------------------------------------ the KOC programme


@router.get("/koc", response_model=list[schemas.KocOut])
def list_kocs(
    group_id: str | None = GROUP, status: Literal["nominated", "active", "retired"] | None = None
) -> list[dict]:
    with session_scope() as s:
        return koc.list_kocs(s, group_id, status)


@router.post("/koc", status_code=201, response_model=schemas.KocOut)
def nominate_koc(body: schemas.KocIn, request: Request) -> dict:
    with warehouse.connect() as con, session_scope() as s:
        return koc.nominate(s, con, body.person_id, body.group_id, principal_of(request).name)


@router.post("/koc/{koc_id}/status", response_model=schemas.KocOut)
def koc_status(body: schemas.KocStatusIn, request: Request, koc_id: int = Path(ge=1, le=2**31 - 1)) -> dict:
    with session_scope() as s:
        return koc.set_status(s, koc_id, body.status, principal_of(request).name)


@router.get("/koc/tasks", response_model=list[schemas.KocTaskOut])
def koc_tasks(koc_id: int | None = Query(None, ge=1, le=2**31 - 1)) -> list[dict]:
    with warehouse.connect() as con, session_scope() as s:
        return koc.list_tasks(s, con, koc_id)


@router.post("/koc/tasks", status_code=201, response_model=schemas.KocTaskOut)
def add_koc_task(body: schemas.KocTaskIn, request: Request) -> dict:
    with session_scope() as s:
        return koc.add_task(s, body.koc_id, body.kind, body.target, body.start, body.end, body.reward_fen,
                            principal_of(request).name)  # fmt: skip


@router.post("/koc/settle", response_model=list[schemas.KocTaskOut])
def settle_koc_tasks(request: Request) -> list[dict]:
    """Grant the rewards of completed tasks through the reward ledger (once per KOC and task)."""
    with warehouse.connect() as con, session_scope() as s:
        return koc.settle(s, con, principal_of(request).name)


@router.get("/koc/results", response_model=list[schemas.KocResult])
def koc_results(
    start: date | None = None, end: date | None = None, group_id: str | None = GROUP
) -> list[schemas.KocResult]:
    end = end or days.today()
    start = start or end - timedelta(days=29)
    with warehouse.connect() as con, session_scope() as s:
        return koc.results(s, con, start, end, group_id)
