"""Staged roll-out of a campaign (001 §4.1 分阶段实施: 试点 → 推广 → 优化) with its exit rule.

- **pilot** admits a share of traffic and/or chosen regions and stores (`admit`, called where a
  friend accepts an invite); anyone else is refused with `outside_pilot`.
- **rollout** and **optimise** admit everyone the campaign's own scope admits.
- Each stage has a **gate**: thresholds on the campaign's own metrics since the stage began
  (`metrics`); `advance` moves on only when the gate is met (or with `force`, audited).
- Each stage may have an **exit rule** (退出机制): fission rate below 10 % (by default) → raise every
  reward by a step within a ceiling (a new rules version), or pause the campaign.

Metrics (operational store, one campaign, measured from `since`):
participants = distinct persons who created an invite or brought a friend since then;
accepts = referrals accepted since then (not blocked, not merged away); qualified = referrals
qualified since then (not blocked, refunded or merged away); fission rate (裂变率) = qualified ÷
participants — the qualified invitees each participant brought, the catalogue's K-factor counted
on qualified referrals (docs/metrics.md).

Every change (plan set, stage entered, gate evaluated, exit rule fired) is a history row
(`StageEvent`), a campaign audit row and an entry of the tamper-evident audit log (`auth`).
The job `campaigns-stages` (`jobs.py`) evaluates gates and exit rules of live staged campaigns.
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError
from sqlalchemy import distinct, func, select, union
from sqlalchemy.orm import Session

from liebian.auth import service as auth_service
from liebian.campaigns import service, variants
from liebian.campaigns.common import CampaignError, audit, effective_status, load_campaign, rules_of, to_json
from liebian.campaigns.models import Campaign, Invite, Referral, StageEvent, StagePlan
from liebian.campaigns.schemas import AcceptRequest, CampaignRules
from liebian.campaigns.stage_schemas import STAGES, ExitRule, Gate, StageName, StagePlanDoc
from liebian.db.base import utcnow

NOT_ACCEPTED = ("blocked", "duplicate")
NOT_QUALIFIED = ("blocked", "refunded", "duplicate")


# ---------------------------------------------------------------- admission (the accept flow)


def in_pilot(campaign_id: str, req: AcceptRequest, doc: StagePlanDoc) -> tuple[bool, str, str]:
    """(admitted, field, why not) for a participant of the pilot. The share is a stable hash of the
    campaign and the participant's first identifier, so a participant is in or out for good."""
    p, place = doc.pilot, variants.Place.of(req)
    if p.regions and place.region not in p.regions:
        return False, "region", f"region {place.region!r} is not in the pilot ({', '.join(p.regions)})"
    if p.stores and place.store not in p.stores:
        return False, "store", f"store {place.store!r} is not in the pilot ({', '.join(p.stores)})"
    if p.share is not None:
        key = f"{campaign_id}:{req.id_type.strip().lower()}:{req.id.strip()}".encode()
        bucket = int.from_bytes(hashlib.sha256(key).digest()[:8], "big") % 10_000
        if bucket >= round(p.share * 10_000):
            return False, "id", f"the participant is outside the pilot's {p.share:.0%} of traffic"
    return True, "", ""


def admit(session: Session, c: Campaign, rules: CampaignRules, req: AcceptRequest) -> CampaignRules:
    """A friend joining through an invite: refused outside the pilot while the campaign is in its
    pilot stage; the rules they are judged under (the variant of where they join)."""
    known = session.info.get("stage_plans", {})
    row = known[c.id] if c.id in known else session.get(StagePlan, c.id)  # verify_code read it
    if row is not None and row.stage == "pilot":
        ok, field, why = in_pilot(c.id, req, _doc(row))
        if not ok:
            raise CampaignError(403, "outside_pilot", f"campaign {c.id} is in its pilot: {why}", field=field)
    return variants.rules_for(rules, variants.Place.of(req))[0]


# ---------------------------------------------------------------- metrics, gates


def metrics(session: Session, campaign_id: str, since: datetime, now: datetime) -> dict[str, Any]:
    """The stage metrics of one campaign from `since` (see the module's docstring)."""
    sharers = union(
        select(Invite.inviter_person_id.label("pid")).where(
            Invite.campaign_id == campaign_id, Invite.created_at >= since
        ),
        select(Referral.inviter_person_id.label("pid")).where(
            Referral.campaign_id == campaign_id, Referral.accepted_at >= since
        ),
    ).subquery()
    participants = session.scalar(select(func.count(distinct(sharers.c.pid)))) or 0
    accepts = (
        session.scalar(
            select(func.count()).where(
                Referral.campaign_id == campaign_id,
                Referral.accepted_at >= since,
                Referral.state.not_in(NOT_ACCEPTED),
            )
        )
        or 0
    )
    qualified = (
        session.scalar(
            select(func.count()).where(
                Referral.campaign_id == campaign_id,
                Referral.qualified_at >= since,
                Referral.state.not_in(NOT_QUALIFIED),
            )
        )
        or 0
    )
    return {
        "since": since,
        "participants": participants,
        "accepts": accepts,
        "qualified": qualified,
        "fission_rate": qualified / participants if participants else None,
        "qualify_rate": qualified / accepts if accepts else None,
        "days": max(0.0, (now - since).total_seconds() / 86_400),
    }


_GATE_METRICS = (
    ("min_days", "days"),
    ("min_participants", "participants"),
    ("min_accepts", "accepts"),
    ("min_qualified", "qualified"),
    ("min_fission_rate", "fission_rate"),
)


def gate_result(stage: str, gate: Gate, m: dict[str, Any]) -> dict[str, Any]:
    """Each threshold of the gate against its metric; passed when all hold."""
    checks = []
    for threshold_name, metric in _GATE_METRICS:
        threshold = getattr(gate, threshold_name)
        if threshold is None or (threshold == 0 and metric != "fission_rate"):
            continue
        value = m[metric]
        checks.append(
            {
                "metric": metric,
                "value": value,
                "threshold": threshold,
                "ok": value is not None and value >= threshold,
            }
        )
    return {"stage": stage, "passed": all(ch["ok"] for ch in checks), "checks": checks, "metrics": m}


def _doc(row: StagePlan) -> StagePlanDoc:
    return StagePlanDoc.model_validate_json(row.plan)


def _plan(session: Session, campaign_id: str, *, lock: bool = False) -> StagePlan:
    load_campaign(session, campaign_id)
    q = select(StagePlan).where(StagePlan.campaign_id == campaign_id)
    row = session.scalar(q.with_for_update() if lock else q)
    if row is None:
        raise CampaignError(
            404, "no_stage_plan", f"campaign {campaign_id} has no stage plan", field="campaign_id"
        )
    return row


def _stage(row: StagePlan) -> StageName:
    return cast(StageName, row.stage)  # written only from STAGES


def _next(stage: str) -> str | None:
    i = STAGES.index(stage)
    return STAGES[i + 1] if i + 1 < len(STAGES) else None


def _gate_of(row: StagePlan, doc: StagePlanDoc, session: Session, now: datetime) -> dict[str, Any]:
    gate = doc.gates.get(_stage(row)) or Gate()
    return gate_result(row.stage, gate, metrics(session, row.campaign_id, row.entered_at, now))


# ---------------------------------------------------------------- history and audit


def _record(
    session: Session,
    row: StagePlan,
    kind: str,
    actor: str,
    now: datetime,
    *,
    passed: bool | None = None,
    action: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """One history row, one campaign audit row, one entry in the audit log."""
    detail = detail or {}
    session.add(
        StageEvent(
            campaign_id=row.campaign_id,
            ts=now,
            actor=actor[:128],
            kind=kind,
            stage=row.stage,
            passed=passed,
            action=action,
            detail=to_json(detail),
        )
    )
    summary = {"stage": row.stage, "passed": passed, "action": action, **detail}
    audit(
        session, f"stage.{kind}", row.campaign_id, summary, actor=actor, entity="stage", entity_id=row.stage
    )
    auth_service.audit(
        session, actor, f"campaign.stage.{kind}", f"campaign:{row.campaign_id}", json.loads(to_json(summary))
    )
    session.flush()


def history(session: Session, campaign_id: str, limit: int = 50) -> list[dict[str, Any]]:
    q = (
        select(StageEvent)
        .where(StageEvent.campaign_id == campaign_id)
        .order_by(StageEvent.id.desc())
        .limit(limit)
    )
    return [
        {
            "id": e.id,
            "ts": e.ts,
            "actor": e.actor,
            "kind": e.kind,
            "stage": e.stage,
            "passed": e.passed,
            "action": e.action,
            "detail": json.loads(e.detail),
        }
        for e in session.scalars(q)
    ]


# ---------------------------------------------------------------- operations


def set_plan(
    session: Session,
    campaign_id: str,
    doc: StagePlanDoc,
    *,
    actor: str = "operator",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Set (or change) the stage plan; a campaign without one starts in the pilot."""
    now = now or utcnow()
    load_campaign(session, campaign_id)
    row = session.get(StagePlan, campaign_id)
    created = row is None
    if row is None:
        row = StagePlan(campaign_id=campaign_id, stage="pilot", entered_at=now, exit_window_from=now)
        session.add(row)
    row.plan, row.updated_at = doc.model_dump_json(), now
    session.flush()
    _record(
        session,
        row,
        "plan",
        actor,
        now,
        action="created" if created else "changed",
        detail={"plan": doc.model_dump(mode="json")},
    )
    return view(session, campaign_id, now=now)


def evaluate(
    session: Session,
    campaign_id: str,
    *,
    actor: str = "operator",
    now: datetime | None = None,
    record: bool = True,
) -> dict[str, Any]:
    """The current stage's gate against the metrics since the stage began (recorded in the history)."""
    now = now or utcnow()
    row = _plan(session, campaign_id)
    result = _gate_of(row, _doc(row), session, now)
    if record:
        _record(session, row, "gate", actor, now, passed=result["passed"], detail=_gate_detail(result))
    return result


def _gate_detail(result: dict[str, Any]) -> dict[str, Any]:
    return {
        "checks": result["checks"],
        "metrics": {k: v for k, v in result["metrics"].items() if k != "since"},
    }


def advance(
    session: Session,
    campaign_id: str,
    *,
    force: bool = False,
    note: str = "",
    actor: str = "operator",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Move to the next stage once the gate is met (`force` moves on regardless; audited as such)."""
    now = now or utcnow()
    row = _plan(session, campaign_id, lock=True)
    nxt = _next(row.stage)
    if nxt is None:
        raise CampaignError(409, "last_stage", f"campaign {campaign_id} is in its last stage ({row.stage})")
    result = _gate_of(row, _doc(row), session, now)
    if not result["passed"] and not force:
        failing = ", ".join(
            f"{ch['metric']} {_fmt(ch['value'], ch['metric'])} < {_fmt(ch['threshold'], ch['metric'])}"
            for ch in result["checks"]
            if not ch["ok"]
        )
        raise CampaignError(
            409, "stage_gate_not_met", f"the {row.stage} gate is not met: {failing}", errors=[
                {"field": ch["metric"], "reason": f"{_fmt(ch['value'], ch['metric'])} < {_fmt(ch['threshold'], ch['metric'])}"}
                for ch in result["checks"] if not ch["ok"]
            ]
        )  # fmt: skip
    _record(session, row, "gate", actor, now, passed=result["passed"], detail=_gate_detail(result))
    previous = row.stage
    row.stage, row.entered_at, row.exit_window_from, row.exit_fired_at, row.updated_at = (
        nxt,
        now,
        now,
        None,
        now,
    )
    detail = {"from": previous, "forced": force and not result["passed"], "note": note}
    _record(
        session, row, "enter", actor, now, passed=result["passed"], action=f"{previous}→{nxt}", detail=detail
    )
    return view(session, campaign_id, now=now)


def _fmt(value: float | None, metric: str = "fission_rate") -> str:
    if value is None:
        return "n/a"
    return f"{value:.1%}" if metric.endswith("_rate") else f"{value:.3g}"


# ---------------------------------------------------------------- the exit rule


def _raised(rules: dict[str, Any], step: float, ceiling: int) -> list[str]:
    """Raise, in place, every reward of the rules document (base and variants) by `step`, never above
    `ceiling`; what changed."""
    changed: list[str] = []

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            if "code" in node and isinstance(node.get("value_fen"), int):
                old = node["value_fen"]
                new = min(ceiling, round(old * (1 + step)))
                if new > old:
                    node["value_fen"] = new
                    changed.append(f"{path or 'reward'} {node['code']}: {old}→{new} fen")
                return
            for key, value in node.items():
                walk(value, f"{path}.{key}" if path else key)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}.{i}")

    walk(rules, "")
    return changed


def _fire(session: Session, c: Campaign, rule: ExitRule, why: str, actor: str) -> tuple[str, list[str]]:
    """Apply the exit rule's action: (raised | paused | failed…, what changed)."""
    if rule.action == "raise" and rule.max_reward_fen is not None:
        doc = rules_of(session, c.id, c.version, cache=False).model_dump(mode="json")
        changes = _raised(doc, rule.step_pct, rule.max_reward_fen)
        if changes:
            try:
                service.edit_campaign(session, c.id, doc, note=f"exit rule: {why}", actor=actor)
                return "raised", changes
            except CampaignError as exc:
                changes = [f"raise refused: {exc.message}"]
        else:
            changes = [f"every reward is at the ceiling of {rule.max_reward_fen} fen"]
    else:
        changes = []
    service.pause(session, c.id, actor=actor)
    return "paused", changes


def apply_exit_rule(
    session: Session, campaign_id: str, *, actor: str = "operator", now: datetime | None = None
) -> dict[str, Any]:
    """Check the current stage's exit rule; when the fission rate is below its floor on a large enough
    sample, raise the rewards within the ceiling (or pause). Fired rules are recorded and audited."""
    now = now or utcnow()
    row = _plan(session, campaign_id, lock=True)
    doc = _doc(row)
    rule = doc.exit_rules.get(_stage(row))
    m = metrics(session, campaign_id, row.exit_window_from, now)
    out = {
        "stage": row.stage,
        "enabled": bool(rule and rule.enabled),
        "fired": False,
        "rule": rule,
        "metrics": m,
    }
    c = load_campaign(session, campaign_id, lock=True)
    status = effective_status(c, rules_of(session, c.id, c.version, cache=c.status != "draft"), now)
    action, reason = _exit_blocker(rule, row, m, status, now)
    if action:
        return {**out, "action": action, "reason": reason, "changes": []}
    assert rule is not None  # _exit_blocker said why otherwise
    why = f"fission rate {_fmt(m['fission_rate'])} < {_fmt(rule.min_fission_rate)} ({m['participants']} participants)"
    action, changes = _fire(session, c, rule, why, actor)
    row.exit_fired_at, row.exit_window_from, row.updated_at = now, now, now
    detail = {"reason": why, "changes": changes, "metrics": {k: v for k, v in m.items() if k != "since"}}
    _record(session, row, "exit", actor, now, passed=False, action=action, detail=detail)
    return {**out, "fired": True, "action": action, "reason": why, "changes": changes}


def _exit_blocker(
    rule: ExitRule | None, row: StagePlan, m: dict[str, Any], status: str, now: datetime
) -> tuple[str, str]:
    """Why the exit rule does not fire now ("" when it does)."""
    if rule is None or not rule.enabled:
        return "none", f"no exit rule for the {row.stage} stage"
    if status != "live":
        return "not_live", f"the campaign is {status}"
    if row.exit_fired_at and now < row.exit_fired_at + timedelta(hours=rule.cooldown_hours):
        return (
            "cooldown",
            f"fired at {row.exit_fired_at:%Y-%m-%d %H:%M} UTC; resting {rule.cooldown_hours:g} h",
        )
    if m["participants"] < rule.min_participants:
        return "small_sample", f"{m['participants']} participants, {rule.min_participants} needed"
    if m["fission_rate"] is not None and m["fission_rate"] >= rule.min_fission_rate:
        return "none", f"fission rate {_fmt(m['fission_rate'])} ≥ {_fmt(rule.min_fission_rate)}"
    return "", ""


# ---------------------------------------------------------------- views and the job


def view(session: Session, campaign_id: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The stage, its gate and exit rule against the live metrics, and the history (newest first)."""
    now = now or utcnow()
    row = _plan(session, campaign_id)
    doc = _doc(row)
    rule = doc.exit_rules.get(_stage(row))
    m = metrics(session, campaign_id, row.exit_window_from, now)
    c = load_campaign(session, campaign_id)
    status = effective_status(c, rules_of(session, c.id, c.version, cache=c.status != "draft"), now)
    action, reason = _exit_blocker(rule, row, m, status, now)
    exit_view = {
        "stage": row.stage,
        "enabled": bool(rule and rule.enabled),
        "fired": False,
        "action": action or "due",
        "reason": reason or "the fission rate is below the floor: the rule fires at its next check",
        "metrics": m,
        "rule": rule,
    }
    return {
        "campaign_id": campaign_id,
        "stage": row.stage,
        "next_stage": _next(row.stage),
        "entered_at": row.entered_at,
        "plan": doc,
        "gate": _gate_of(row, doc, session, now),
        "exit_rule": exit_view,
        "history": history(session, campaign_id),
    }


def maybe_view(session: Session, campaign_id: str) -> dict[str, Any] | None:
    """The view, or None for a campaign that is not staged (the console's detail page)."""
    if session.get(StagePlan, campaign_id) is None:
        return None
    return view(session, campaign_id)


def run_due(session: Session, now: datetime | None = None) -> dict[str, list[str]]:
    """The scheduled check of every live staged campaign: the gate (recorded when its outcome
    changed since the last record), moving on when `auto_advance` is set and it is met, and the
    exit rule."""
    now = now or utcnow()
    out: dict[str, list[str]] = {"advanced": [], "exit_fired": [], "gates_recorded": []}
    actor = "system:campaigns-stages"
    for row in session.scalars(select(StagePlan).order_by(StagePlan.campaign_id)).all():
        c = session.get(Campaign, row.campaign_id)
        if (
            c is None
            or effective_status(c, rules_of(session, c.id, c.version, cache=c.status != "draft"), now)
            != "live"
        ):
            continue
        try:
            doc = _doc(row)
        except ValidationError:
            continue
        result = _gate_of(row, doc, session, now)
        last = session.scalar(
            select(StageEvent.passed)
            .where(StageEvent.campaign_id == c.id, StageEvent.kind == "gate", StageEvent.stage == row.stage)
            .order_by(StageEvent.id.desc())
            .limit(1)
        )
        if last is None or bool(last) != result["passed"]:
            _record(session, row, "gate", actor, now, passed=result["passed"], detail=_gate_detail(result))
            out["gates_recorded"].append(c.id)
        if doc.auto_advance and result["passed"] and _next(row.stage):
            advance(session, c.id, actor=actor, now=now)
            out["advanced"].append(c.id)
        if apply_exit_rule(session, c.id, actor=actor, now=now)["fired"]:
            out["exit_fired"].append(c.id)
    return out
