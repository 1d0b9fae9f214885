"""HTTP endpoints under /api/v1/community: group health, negative share, KOC candidates, sentiment."""

from __future__ import annotations

from datetime import date

from fastapi import APIRouter, Query

from liebian.community import schemas, sentiment, service
from liebian.community.schemas import SentimentIn
from liebian.engine import warehouse

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
        out.append({"text": text, "label": r.label, "score": r.score, "terms": list(r.terms)})
    return out
