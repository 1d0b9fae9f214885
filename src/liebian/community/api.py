"""HTTP endpoints under /api/v1/community: group health, negative share, KOC candidates, sentiment."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from liebian.community import sentiment, service
from liebian.engine import warehouse

router = APIRouter(prefix="/api/v1/community", tags=["community"])


@router.get("/groups")
def groups(start: date | None = None, end: date | None = None, group_id: str | None = None):
    with warehouse.connect() as con:
        return service.group_health(con, start, end, group_id)


@router.get("/negative")
def negative(
    start: date | None = None, end: date | None = None, group_id: str | None = None, only_alerts: bool = False
):
    with warehouse.connect() as con:
        rows = service.negative_share(con, start, end, group_id)
    return [r for r in rows if r["alert"]] if only_alerts else rows


@router.get("/contributors")
def contributors(
    start: date | None = None, end: date | None = None, group_id: str | None = None,
    limit: int = Query(20, ge=1, le=1000),
):  # fmt: skip
    with warehouse.connect() as con:
        return service.top_contributors(con, start, end, group_id, limit)


class SentimentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    texts: list[str] = Field(min_length=1, max_length=1000)


@router.post("/sentiment")
def classify(body: SentimentIn) -> list[dict]:
    out = []
    for text in body.texts:
        r = sentiment.classify(text)
        out.append({"text": text, "label": r.label, "score": r.score, "terms": list(r.terms)})
    return out
