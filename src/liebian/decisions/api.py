"""HTTP endpoints under /api/v1/decisions: options for an alert, proposals and their review."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request

from liebian.auth.deps import principal_of
from liebian.db.session import session_scope
from liebian.decisions import options, schemas, service
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1/decisions", tags=["decisions"])


@router.get("/options", response_model=schemas.AlertOptionsOut)
def alert_options(alert_id: Int64 = Query(description="the monitoring alert")) -> dict:
    """Two or three options for the alert, each with its simulated effect, range and evidence."""
    with session_scope() as s:
        return options.for_alert(s, alert_id)


@router.post("/proposals", status_code=201, response_model=schemas.ProposalOut)
def propose(body: schemas.ProposeIn, request: Request) -> dict:
    with session_scope() as s:
        return service.propose(s, body.alert_id, body.option, actor=principal_of(request).name)


@router.get("/proposals", response_model=list[schemas.ProposalOut])
def list_proposals(
    status: Literal["draft", "approved", "rejected"] | None = None, limit: int = Query(200, ge=1, le=10000)
) -> list[dict]:
    with session_scope() as s:
        return service.list_proposals(s, status, limit)


@router.post("/proposals/{proposal_id}/approve", response_model=schemas.ProposalOut)
def approve(proposal_id: Int64, request: Request) -> dict:
    with session_scope() as s:
        return service.approve(s, proposal_id, actor=principal_of(request).name)


@router.post("/proposals/{proposal_id}/reject", response_model=schemas.ProposalOut)
def reject(proposal_id: Int64, body: schemas.RejectIn, request: Request) -> dict:
    with session_scope() as s:
        return service.reject(s, proposal_id, body.reason, actor=principal_of(request).name)
