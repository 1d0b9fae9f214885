"""Proposals: an operator turns one option into a campaign rules version that waits for review.

A proposal holds the full proposed rules and the live version they were made against; nothing in
the campaign changes until a reviewer approves it (then `campaigns.edit_campaign` makes the new
version live). A proposal whose base version is no longer live is refused on approval (re-propose).
Every step is audit-logged.
"""

from __future__ import annotations

import copy
import json
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.auth import service as auth_service
from liebian.campaigns import service as campaigns
from liebian.db.base import utcnow
from liebian.decisions import options as opts
from liebian.decisions.models import Proposal
from liebian.errors import DomainError, code_for


class DecisionError(DomainError):
    """A refused decision request; the body names the field."""

    def __init__(self, message: str, status: int = 422, field: str = ""):
        errors = [{"field": field, "reason": message}] if status == 422 else None
        super().__init__(code_for(status), message, status, field=field or None, errors=errors)


def proposal_view(p: Proposal) -> dict[str, Any]:
    return {
        "id": p.id, "campaign_id": p.campaign_id, "base_version": p.base_version, "option": p.option,
        "source": p.source, "rules": json.loads(p.rules), "expected": json.loads(p.expected or "{}"),
        "status": p.status, "created_by": p.created_by, "created_at": p.created_at.isoformat(),
        "decided_by": p.decided_by, "decided_at": p.decided_at.isoformat() if p.decided_at else None,
        "applied_version": p.applied_version, "reason": p.reason,
    }  # fmt: skip


def propose(session: Session, alert_id: int, option: str, *, actor: str) -> dict[str, Any]:
    """A draft rules version from one option of an alert (not applied: it waits for approval)."""
    offered = {o["option"]: o for o in opts.for_alert(session, alert_id)["options"]}
    chosen = offered.get(option)
    if chosen is None:
        raise DecisionError(f"alert {alert_id} offers {sorted(offered)}, not {option!r}", field="option")
    if not chosen["proposable"]:
        raise DecisionError(
            f"{option!r} is not a rules change of a campaign (use the campaign's own command)", field="option"
        )
    cid = chosen["campaign_id"]
    current = campaigns.get_campaign(session, cid)
    rules = opts.RULE_CHANGES[option](copy.deepcopy(current["rules"]))
    campaigns.parse_rules(rules)  # the proposed rules must be valid rules
    p = Proposal(
        campaign_id=cid, base_version=current["version"], option=option, source=f"alert:{alert_id}",
        rules=json.dumps(rules, ensure_ascii=False, default=str), expected=json.dumps(chosen, ensure_ascii=False),
        status="draft", created_by=actor, created_at=utcnow(), reason="",
    )  # fmt: skip
    session.add(p)
    session.flush()
    auth_service.audit(session, actor, "decision.propose", f"proposal:{p.id}",
                       {"campaign_id": cid, "option": option, "alert_id": alert_id, "base_version": p.base_version})  # fmt: skip
    return proposal_view(p)


def _draft(session: Session, proposal_id: int) -> Proposal:
    p = session.get(Proposal, proposal_id, with_for_update=True)
    if p is None:
        raise DecisionError(f"proposal {proposal_id} not found", 404, "proposal_id")
    if p.status != "draft":
        raise DecisionError(f"proposal {proposal_id} is already {p.status}", 409, "proposal_id")
    return p


def approve(session: Session, proposal_id: int, *, actor: str) -> dict[str, Any]:
    """Apply the proposed rules as the campaign's new live version."""
    p = _draft(session, proposal_id)
    if actor == p.created_by:  # review means a second person
        raise DecisionError(
            f"proposal {p.id} was made by {actor}; another person approves it", 403, "proposal_id"
        )
    live = campaigns.get_campaign(session, p.campaign_id)["version"]
    if live != p.base_version:
        raise DecisionError(
            f"campaign {p.campaign_id} is at version {live}, the proposal was made against {p.base_version}",
            409, "proposal_id",
        )  # fmt: skip
    note = f"proposal {p.id}: {p.option}"
    moved = (
        (json.loads(p.expected or "{}").get("evidence") or {})
        if p.option == "move_budget_to_best_channel"
        else {}
    )
    if moved.get("from_channel"):  # the rules have no channel budget: the version's note carries the move
        note += f" ({moved['moved_fen']} fen of reward budget from {moved['from_channel']} to {moved['to_channel']})"
    view = campaigns.edit_campaign(session, p.campaign_id, json.loads(p.rules), note=note, actor=actor)
    p.status, p.decided_by, p.decided_at, p.applied_version = "approved", actor, utcnow(), view["version"]
    session.flush()
    auth_service.audit(session, actor, "decision.approve", f"proposal:{p.id}",
                       {"campaign_id": p.campaign_id, "version": p.applied_version})  # fmt: skip
    return proposal_view(p)


def reject(session: Session, proposal_id: int, reason: str, *, actor: str) -> dict[str, Any]:
    p = _draft(session, proposal_id)
    p.status, p.decided_by, p.decided_at, p.reason = "rejected", actor, utcnow(), reason
    session.flush()
    auth_service.audit(session, actor, "decision.reject", f"proposal:{p.id}", {"reason": reason})
    return proposal_view(p)


def list_proposals(session: Session, status: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    q = select(Proposal).order_by(Proposal.id.desc()).limit(limit)
    if status:
        q = q.where(Proposal.status == status)
    return [proposal_view(p) for p in session.scalars(q)]
