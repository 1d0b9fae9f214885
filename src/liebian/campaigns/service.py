"""Campaign definitions: rules and their versions, the lifecycle (launch, pause, end, closing what
is past its end), the compliance check, and the campaign's audit log.

One operation per public function; what a friend, an order or a claim does is in `flows`, the read
models in `views`, invites and posters in `invites`, budget and grants in `budget`.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from liebian.campaigns import variants
from liebian.campaigns.common import (
    CampaignError,
    audit,
    effective_status,
    load_campaign,
    rules_of,
)
from liebian.campaigns.compliance import Compliance, check_rules
from liebian.campaigns.models import Campaign, CampaignAudit, CampaignVersion
from liebian.campaigns.outbox import WarehouseAnchor
from liebian.campaigns.schemas import CampaignRules
from liebian.campaigns.strategies import strategy_for
from liebian.db.base import utcnow
from liebian.engine.outbox import OutboxFlusher


def audit_log(session: Session, campaign_id: str | None = None, limit: int = 200) -> list[dict[str, Any]]:
    q = select(CampaignAudit).order_by(CampaignAudit.id.desc()).limit(limit)
    if campaign_id:
        q = q.where(CampaignAudit.campaign_id == campaign_id)
    return [
        {
            "id": a.id,
            "ts": a.ts,
            "actor": a.actor,
            "action": a.action,
            "campaign_id": a.campaign_id,
            "entity": a.entity,
            "entity_id": a.entity_id,
            "detail": json.loads(a.detail),
        }
        for a in session.scalars(q)
    ]


# ---------------------------------------------------------------- rules and versions


def parse_rules(data: dict[str, Any]) -> CampaignRules:
    """Validate a rules document; every problem is reported with its field (422)."""
    try:
        rules = CampaignRules.model_validate(data)
    except ValidationError as exc:
        # type and params: pydantic's error type and its limits, so that a client (the console)
        # can say the reason in its own language
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "rules",
                "reason": e["msg"],
                "type": e["type"],
                "params": {k: v for k, v in (e.get("ctx") or {}).items() if isinstance(v, (str, int, float))},
            }
            for e in exc.errors()
        ]
        raise CampaignError(422, "invalid_rules", _summary(errors), errors=errors) from None
    problems = rule_problems(rules)
    if problems:
        errors = [{"field": f, "reason": r} for f, r in problems]
        raise CampaignError(422, "contradictory_rules", _summary(errors), errors=errors)
    return rules


def rule_problems(r: CampaignRules) -> list[tuple[str, str]]:
    """Contradictory or incomplete rules, each as (field, reason), in the order of the document."""
    p: list[tuple[str, str]] = []
    if r.start_at and r.end_at and r.end_at <= r.start_at:
        p.append(("end_at", "the window ends before it starts"))
    for i in range(1, len(r.tiers)):
        if r.tiers[i].threshold <= r.tiers[i - 1].threshold:
            p.append((f"tiers.{i}.threshold", "tier thresholds must increase"))
        if r.tiers[i].reward.value_fen < r.tiers[i - 1].reward.value_fen:
            p.append((f"tiers.{i}.reward.value_fen", "a higher tier must not be worth less"))
    rewards = r.rewards()
    if r.per_inviter_cap == 0 and rewards:
        p.append(("per_inviter_cap", "a cap of 0 allows no reward although rewards are defined"))
    if r.per_inviter_cap and r.tiers and r.tiers[-1].threshold > r.per_inviter_cap:
        p.append(
            (
                "tiers",
                f"the top tier needs {r.tiers[-1].threshold} friends but the cap is {r.per_inviter_cap}",
            )
        )
    smallest = min((w.value_fen for w in rewards if w.value_fen > 0), default=None)
    if r.budget_fen is not None and smallest is not None and r.budget_fen < smallest:
        p.append(("budget_fen", f"the budget {r.budget_fen} is smaller than one reward ({smallest} fen)"))
    if r.stock == 0 and rewards:
        p.append(("stock", "a stock of 0 allows no reward although rewards are defined"))
    q = r.qualifying_event
    if q.kind == "order_min_amount" and q.min_amount_fen <= 0:
        p.append(("qualifying_event.min_amount_fen", "order_min_amount needs a positive amount"))
    if q.kind == "custom" and not q.event_name:
        p.append(("qualifying_event.event_name", "a custom qualifying event needs its name"))
    p += strategy_for(r.type).problems(r)
    if r.leaderboard and not r.leaderboard.rewards:
        p.append(("leaderboard.rewards", "at least one reward is needed"))
    if r.risk_policy.block_at < r.risk_policy.hold_at:
        p.append(("risk_policy.block_at", "block_at must not be below hold_at"))
    p += variants.problems(r, rule_problems)  # each region / store-type variant's merged rules
    return p


def _summary(errors: list[dict[str, Any]]) -> str:
    return "; ".join(f"{e['field']}: {e['reason']}" for e in errors)


def campaign_view(session: Session, c: Campaign, now: datetime | None = None) -> dict[str, Any]:
    now = now or utcnow()
    try:
        rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
        status, rules_doc = effective_status(c, rules, now), rules.model_dump(mode="json")
    except CampaignError as exc:  # stored rules out of today's bounds: list it as stored, to be edited
        if exc.code != "stored_rules_invalid":
            raise
        text = session.scalar(
            select(CampaignVersion.rules).where(
                CampaignVersion.campaign_id == c.id, CampaignVersion.version == c.version
            )
        )
        status, rules_doc = c.status, json.loads(text or "{}")
    return {
        "id": c.id,
        "type": c.type,
        "title": c.title,
        "status": status,
        "version": c.version,
        "budget_fen": c.budget_fen,
        "budget_used_fen": c.budget_used_fen,
        "stock": c.stock,
        "stock_used": c.stock_used,
        "created_at": c.created_at,
        "launched_at": c.launched_at,
        "rules": rules_doc,
    }


def create_campaign(
    session: Session, rules_data: dict[str, Any], *, campaign_id: str | None = None, actor: str = "operator"
) -> dict[str, Any]:
    rules = parse_rules(rules_data)
    cid = campaign_id or f"cmp_{os.urandom(5).hex()}"
    if session.get(Campaign, cid) is not None:
        raise CampaignError(409, "campaign_exists", f"a campaign {cid!r} exists already", field="id")
    now = utcnow()
    c = Campaign(
        id=cid,
        type=rules.type,
        title=rules.title,
        status="draft",
        version=1,
        budget_fen=rules.budget_fen,
        stock=rules.stock,
        created_at=now,
        updated_at=now,
    )
    session.add(c)
    session.flush()
    session.add(CampaignVersion(campaign_id=cid, version=1, rules=rules.model_dump_json(), created_at=now))
    audit(session, "campaign.create", cid, {"type": rules.type, "title": rules.title}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def edit_campaign(
    session: Session, campaign_id: str, rules_data: dict[str, Any], *, note: str = "", actor: str = "operator"
) -> dict[str, Any]:
    """Change the rules. A draft is edited in place; a launched campaign gets a new version."""
    c = load_campaign(session, campaign_id, lock=True)
    if c.status == "ended":
        raise CampaignError(409, "campaign_ended", f"campaign {campaign_id} has ended and cannot be edited")
    rules = parse_rules(rules_data)
    errors = []
    if c.status != "draft" and rules.type != c.type:
        errors.append({"field": "type", "reason": f"the type of a launched campaign stays {c.type}"})
    if rules.budget_fen is not None and rules.budget_fen < c.budget_used_fen:
        errors.append(
            {"field": "budget_fen", "reason": f"below the {c.budget_used_fen} fen already reserved"}
        )
    if rules.stock is not None and rules.stock < c.stock_used:
        errors.append({"field": "stock", "reason": f"below the {c.stock_used} rewards already reserved"})
    if errors:
        raise CampaignError(422, "contradictory_rules", _summary(errors), errors=errors)
    now = utcnow()
    if c.status == "draft":
        session.execute(
            update(CampaignVersion)
            .where(CampaignVersion.campaign_id == c.id, CampaignVersion.version == c.version)
            .values(rules=rules.model_dump_json(), note=note, created_at=now)
        )
    else:
        c.version += 1
        session.add(
            CampaignVersion(
                campaign_id=c.id, version=c.version, rules=rules.model_dump_json(), note=note, created_at=now
            )
        )
    c.type, c.title, c.budget_fen, c.stock, c.updated_at = (
        rules.type,
        rules.title,
        rules.budget_fen,
        rules.stock,
        now,
    )
    audit(session, "campaign.edit", c.id, {"version": c.version, "note": note}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def get_campaign(session: Session, campaign_id: str) -> dict[str, Any]:
    return campaign_view(session, load_campaign(session, campaign_id))


def campaign_titles(session: Session) -> list[tuple[str, str]]:
    """Every campaign's (id, title), oldest first (the console's campaign filter)."""
    return [
        (cid, title)
        for cid, title in session.execute(select(Campaign.id, Campaign.title).order_by(Campaign.created_at))
    ]


def list_campaigns(
    session: Session, status: str | None = None, *, with_rules: bool = False
) -> list[dict[str, Any]]:
    now = utcnow()
    out = []
    for c in session.scalars(select(Campaign).order_by(Campaign.created_at)):
        view = campaign_view(session, c, now)
        if not with_rules:
            view.pop("rules")
        if status is None or view["status"] == status:
            out.append(view)
    return out


def versions(session: Session, campaign_id: str) -> list[dict[str, Any]]:
    load_campaign(session, campaign_id)
    rows = session.scalars(
        select(CampaignVersion)
        .where(CampaignVersion.campaign_id == campaign_id)
        .order_by(CampaignVersion.version)
    )
    return [
        {"version": v.version, "created_at": v.created_at, "note": v.note, "rules": json.loads(v.rules)}
        for v in rows
    ]


# ---------------------------------------------------------------- compliance and lifecycle


def compliance(rules: CampaignRules) -> Compliance:
    """Hard rules block launch; soft findings add up to a compliance risk score (0–100). The
    check reads the mechanics (`campaigns.compliance.check_rules`, callable per variant)."""
    return check_rules(rules)


def compliance_report(session: Session, campaign_id: str) -> dict[str, Any]:
    c = load_campaign(session, campaign_id)
    report = variants.checked(rules_of(session, c.id, c.version, cache=c.status != "draft"), compliance)
    return {"campaign_id": c.id, "version": c.version, **report}


def launch(
    session: Session, campaign_id: str, *, actor: str = "operator", now: datetime | None = None
) -> dict[str, Any]:
    now = now or utcnow()
    c = load_campaign(session, campaign_id, lock=True)
    rules = rules_of(session, c.id, c.version, cache=False)
    status = effective_status(c, rules, now)
    if status == "ended":
        raise CampaignError(409, "campaign_ended", f"campaign {campaign_id} has ended")
    if status == "live":
        return campaign_view(session, c, now)
    report = variants.checked(rules, compliance)  # the base rules and each variant's
    if not report["passed"]:
        errors = [{"field": h["field"], "reason": h["message"]} for h in report["hard"]]
        raise CampaignError(
            422, "compliance_failed", "compliance check failed: " + _summary(errors), errors=errors
        )
    if rules.end_at and rules.end_at <= now:
        raise CampaignError(422, "window_over", "the campaign window has already ended", field="end_at")
    c.status = "scheduled" if rules.start_at and rules.start_at > now else "live"
    c.launched_at = c.launched_at or now
    c.updated_at = now
    audit(session, "campaign.launch", c.id, {"status": c.status, "version": c.version}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def pause(session: Session, campaign_id: str, *, actor: str = "operator") -> dict[str, Any]:
    now = utcnow()
    c = load_campaign(session, campaign_id, lock=True)
    status = effective_status(c, rules_of(session, c.id, c.version, cache=c.status != "draft"), now)
    if status not in ("scheduled", "live"):
        raise CampaignError(
            409, "not_live", f"campaign {campaign_id} is {status}, only a launched campaign pauses"
        )
    c.status, c.updated_at = "paused", now
    audit(session, "campaign.pause", c.id, {}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def end(
    session: Session, campaign_id: str, *, actor: str = "operator", now: datetime | None = None
) -> dict[str, Any]:
    """End the campaign; its type's end happens once (a leaderboard grants its rank rewards)."""
    now = now or utcnow()
    c = load_campaign(session, campaign_id, lock=True)
    if c.status == "ended" and c.settled:
        return campaign_view(session, c, now)
    c.status, c.updated_at = "ended", now
    audit(session, "campaign.end", c.id, {}, actor=actor)
    rules = rules_of(session, c.id, c.version, cache=False)
    if not c.settled:
        strategy_for(rules.type).at_end(session, c, rules, now)
    c.settled = True
    session.flush()
    session.refresh(c)  # the grants moved the budget columns by UPDATE
    return campaign_view(session, c, now)


def close_due(session: Session, now: datetime | None = None) -> list[str]:
    """Persist `ended` for launched campaigns past their end date; leaderboards grant their ranks.

    Run by the scheduled job campaigns-close-due and by `liebian campaign close-due` (cron)."""
    now = now or utcnow()
    closed = []
    for c in session.scalars(
        select(Campaign).where(Campaign.status.in_(("scheduled", "live", "paused")))
    ).all():
        rules = rules_of(session, c.id, c.version)
        if rules.end_at and now > rules.end_at:
            end(session, c.id, actor="system:close_due", now=now)
            closed.append(c.id)
    return closed


def warehouse_flusher(interval: float = 1.0) -> OutboxFlusher:
    """The server's campaign thread: queued warehouse events every `interval` seconds. Closing
    campaigns past their end and releasing budget are scheduled jobs (`campaigns.jobs`)."""
    anchor = WarehouseAnchor()  # the warehouse stays open between busy rounds (see its docstring)
    return OutboxFlusher("campaign-warehouse-flush", anchor.drain, interval=interval, on_stop=anchor.close)
