"""Fraud API: the review queue (list, get, approve, reject, bulk), fraud rate, reasons, scan."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Path, Query, Request

from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.fraud import graph, schemas, service
from liebian.fraud.reasons import REASONS

DB_INT_MAX = 2**63 - 1  # larger ids cannot exist and would overflow the database driver


router = APIRouter(prefix="/api/v1/fraud", tags=["fraud"])


@router.get("/cases", response_model=list[schemas.Case])
def list_cases(
    status: Literal["open", "approved", "rejected", "all"] = "open",
    campaign_id: str | None = None,
    pattern: str | None = None,
    min_score: float = Query(0.0, ge=0, le=100),
    limit: int = Query(100, ge=1, le=1000),
    offset: int = Query(0, ge=0, le=2**31),
    lang: Literal["zh-CN", "en"] = "zh-CN",
) -> list[dict]:
    with session_scope() as session:
        return service.list_cases(
            session, status=None if status == "all" else status, campaign_id=campaign_id, pattern=pattern,
            min_score=min_score, limit=limit, offset=offset, lang=lang,
        )  # fmt: skip


@router.get("/cases/{case_id}", response_model=schemas.Case)
def get_case(
    case_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)], lang: Literal["zh-CN", "en"] = "zh-CN"
) -> dict:
    with session_scope() as session:
        return service.get_case(session, case_id, lang)


def _decide(
    request: Request, case_id: int, action: str, body: schemas.Decision, header_key: str | None
) -> dict:
    with session_scope() as session:
        return service.decide(
            session, case_id, action, actor=principal_of(request).name, note=body.note,
            idempotency_key=body.idempotency_key or header_key,
        )  # fmt: skip


@router.post("/cases/{case_id}/approve", response_model=schemas.Decided)
def approve(
    request: Request,
    case_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    body: schemas.Decision,
    idempotency_key: str | None = Header(None),
) -> dict:
    """Not fraud: the referral's rewards leave the review hold."""
    return _decide(request, case_id, "approve", body, idempotency_key)


@router.post("/cases/{case_id}/reject", response_model=schemas.Decided)
def reject(
    request: Request,
    case_id: Annotated[int, Path(ge=1, le=DB_INT_MAX)],
    body: schemas.Decision,
    idempotency_key: str | None = Header(None),
) -> dict:
    """Fraud: the referral's rewards are rejected (issued ones revoked)."""
    return _decide(request, case_id, "reject", body, idempotency_key)


@router.post("/cases/bulk", response_model=list[schemas.BulkOutcome])
def bulk(
    request: Request, body: schemas.BulkDecision, idempotency_key: str | None = Header(None)
) -> list[dict]:
    with session_scope() as session:
        return service.bulk_decide(
            session, body.case_ids, body.action, actor=principal_of(request).name, note=body.note,
            idempotency_key=body.idempotency_key or idempotency_key,
        )  # fmt: skip


@router.get("/rate", response_model=list[schemas.Rate])
def fraud_rate(by: Literal["campaign", "channel"] = "campaign") -> list[dict]:
    """Rejected referrals / all referrals (the plan's reference point: 0.5%)."""
    with session_scope() as session:
        return service.fraud_rate(session, by)


@router.get("/reasons", response_model=list[schemas.ReasonCode])
def reasons() -> list[dict]:
    return [
        {"code": r.code, "weight": r.weight, "pattern": r.pattern, "zh": r.zh, "en": r.en}
        for r in REASONS.values()
    ]


@router.get("/persons/{person_id}", response_model=schemas.PersonRisk)
def person_risk(person_id: Annotated[int, Path(ge=0, le=DB_INT_MAX)]) -> dict:
    """The last graph scan's score and reasons for one person (score 0 when nothing was found)."""
    with warehouse.connect(read_only=True) as con:
        row = graph.person_risk(con, person_id=person_id)
    if row.empty:
        return {"person_id": person_id, "score": 0.0, "reasons": [], "details": []}
    r = row.iloc[0]
    return {"person_id": person_id, "score": float(r.score), "reasons": list(r.reasons), "details": list(r.details),
            "pattern": r.pattern}  # fmt: skip


@router.post("/scan", response_model=schemas.ScanResult)
def scan() -> dict:
    """Run the graph scan now (the scheduler also runs it hourly) and refresh the review queue."""
    with session_scope() as session, warehouse.connect() as con:
        return service.run_scan(session, con).as_dict()
