"""HTTP API of the staged roll-out (`campaigns.stages`): the plan, the gate, moving on, the exit rule."""

from __future__ import annotations

from fastapi import APIRouter, Request

from liebian.auth.deps import principal_of
from liebian.campaigns import stages
from liebian.campaigns.stage_schemas import AdvanceRequest, ExitView, GateView, StagePlanDoc, StageView
from liebian.db.session import session_scope

router = APIRouter(prefix="/api/v1/campaigns/{campaign_id}/stages", tags=["campaigns"])


@router.get("", response_model=StageView)
def stage_view(campaign_id: str):
    """The stage, its gate and exit rule against the metrics, and the history (newest first)."""
    with session_scope() as s:
        return stages.view(s, campaign_id)


@router.put("", response_model=StageView)
def set_plan(campaign_id: str, body: StagePlanDoc, request: Request):
    """Set the stage plan (pilot traffic, gates, exit rules); a campaign without one starts in the pilot."""
    with session_scope() as s:
        return stages.set_plan(s, campaign_id, body, actor=principal_of(request).name)


@router.post("/evaluate", response_model=GateView)
def evaluate(campaign_id: str, request: Request):
    """Evaluate the current stage's gate (recorded in the stage history and the audit log)."""
    with session_scope() as s:
        return stages.evaluate(s, campaign_id, actor=principal_of(request).name)


@router.post("/advance", response_model=StageView)
def advance(campaign_id: str, body: AdvanceRequest, request: Request):
    """Move to the next stage: 409 stage_gate_not_met unless the gate holds (or `force`)."""
    with session_scope() as s:
        return stages.advance(
            s, campaign_id, force=body.force, note=body.note, actor=principal_of(request).name
        )


@router.post("/exit-rule", response_model=ExitView)
def apply_exit_rule(campaign_id: str, request: Request):
    """Apply the current stage's exit rule now (fission rate below its floor → raise rewards or pause)."""
    with session_scope() as s:
        return stages.apply_exit_rule(s, campaign_id, actor=principal_of(request).name)
