"""The stage section of a campaign's detail page (campaigns.stages): the current stage, its gate's
metrics against their thresholds, the exit rule and the history; the operator's buttons to
evaluate the gate, move on and apply the exit rule. What it shows is the stage service's view."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from liebian.campaigns import stages
from liebian.campaigns.common import CampaignError
from liebian.db.session import session_scope
from liebian.web.console import _principal as principal
from liebian.web.console import flash_fragment, htmx_redirect
from liebian.web.pages.campaign_form import local_time

router = APIRouter(include_in_schema=False)

PCT_METRICS = ("fission_rate", "qualify_rate")


def stage_section(session: Session, campaign_id: str) -> dict[str, Any] | None:
    """The stage view for the detail page (times in the brand's zone), or None when not staged."""
    view = stages.maybe_view(session, campaign_id)
    if view is None:
        return None
    view["entered_at"] = local_time(view["entered_at"])
    for event in view["history"]:
        event["ts"] = local_time(event["ts"])
    for check in view["gate"]["checks"]:
        check["kind"] = (
            "pct" if check["metric"] in PCT_METRICS else "float" if check["metric"] == "days" else "int"
        )
    return view


def _act(request: Request, campaign_id: str, action: str) -> Response:
    actor = principal(request).name
    try:
        with session_scope() as s:
            if action == "advance":
                stages.advance(s, campaign_id, actor=actor)
            elif action == "evaluate":
                stages.evaluate(s, campaign_id, actor=actor)
            else:
                stages.apply_exit_rule(s, campaign_id, actor=actor)
    except CampaignError as exc:
        reasons = [f"{e['field']}: {e['reason']}" for e in exc.errors] or [exc.message]
        return flash_fragment(" · ".join(reasons), ok=False, retarget="#stage-result")
    return htmx_redirect(f"/campaigns/{campaign_id}")


@router.post("/campaigns/{campaign_id}/stages/evaluate")
def stage_evaluate(request: Request, campaign_id: str) -> Response:
    """Evaluate the gate now (recorded in the history)."""
    return _act(request, campaign_id, "evaluate")


@router.post("/campaigns/{campaign_id}/stages/advance")
def stage_advance(request: Request, campaign_id: str) -> Response:
    """Move to the next stage; refused, saying which metric fails, while the gate is not met."""
    return _act(request, campaign_id, "advance")


@router.post("/campaigns/{campaign_id}/stages/exit-rule")
def stage_exit_rule(request: Request, campaign_id: str) -> Response:
    return _act(request, campaign_id, "exit-rule")
