"""The fission campaign engine: definitions, lifecycle, invites, attribution, qualification, caps.

Concurrency: every limit (per-inviter, per-device, per-IP, budget, stock, group completion, a
referral's qualification) moves by one conditional UPDATE (`… SET used = used + 1 WHERE … AND
used + 1 <= cap`) or an INSERT that ignores a unique conflict, never by reading a count and
writing it back, so it holds with many workers on SQLite and PostgreSQL alike.

Rewards are granted through `liebian.rewards.service` (the ledger); the campaign owns its budget
and stock, reserves them before a grant and releases them in `on_reward_final`.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import bindparam, delete, event, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from liebian import ports
from liebian.campaigns.models import (
    Campaign,
    CampaignAudit,
    CampaignOrder,
    CampaignVersion,
    CapCounter,
    Group,
    Invite,
    Outbox,
    Referral,
    Reservation,
)
from liebian.campaigns.schemas import CampaignRules, Participant, Reward, rule_problems
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.identity import service as identity
from liebian.identity.keys import IdentifierError
from liebian.privacy.crypto import keys

log = logging.getLogger(__name__)

LAUNCHED = ("scheduled", "live")


class CampaignError(Exception):
    """A request the engine refuses: HTTP status, a stable code, and the fields at fault."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None, errors=None):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message
        self.errors = errors or ([{"field": field, "reason": message}] if field else [])

    def body(self) -> dict:
        return {"detail": self.message, "code": self.code, "errors": self.errors}


# ---------------------------------------------------------------- small helpers


def _ins(session: Session, model):
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(model)


def _json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


# Statements of the referral hot path (accept, conversion, grant), built once per dialect:
# constructing and compiling SQLAlchemy expressions costs more than SQLite takes to run them.
# Executed as Core statements, they do not synchronise loaded objects: the callers set or expire
# the attributes they change.
_C, _REF, _ORD, _CNT, _RES = (
    Campaign.__table__,
    Referral.__table__,
    CampaignOrder.__table__,
    CapCounter.__table__,
    Reservation.__table__,
)


def _build_statements(insert) -> dict[str, Any]:
    b = bindparam
    counter = insert(_CNT).values(
        campaign_id=b("b_cid"), scope=b("b_scope"), key=b("b_key"), used=b("b_n"), updated_at=b("b_now")
    )
    raise_by = {"used": _CNT.c.used + counter.excluded.used, "updated_at": counter.excluded.updated_at}
    conflict = ["campaign_id", "scope", "key"]
    return {
        # one statement per counter: insert it, or raise it unless that passes the cap
        "bump": counter.on_conflict_do_update(
            index_elements=conflict, set_=raise_by, where=_CNT.c.used + counter.excluded.used <= b("b_cap")
        ).returning(_CNT.c.used),
        "bump_uncapped": counter.on_conflict_do_update(index_elements=conflict, set_=raise_by).returning(
            _CNT.c.used
        ),
        "reserve": insert(_RES).on_conflict_do_nothing().returning(_RES.c.id),
        "take_budget": update(_C)
        .where(
            _C.c.id == b("b_cid"),
            or_(_C.c.budget_fen.is_(None), _C.c.budget_used_fen + b("b_value") <= _C.c.budget_fen),
            or_(_C.c.stock.is_(None), _C.c.stock_used + 1 <= _C.c.stock),
        )
        .values(budget_used_fen=_C.c.budget_used_fen + b("b_value"), stock_used=_C.c.stock_used + 1),
        "reservation_reward": update(_RES).where(_RES.c.id == b("b_id")).values(reward_id=b("b_reward")),
        "qualify": update(_REF)
        .where(_REF.c.id == b("b_id"), _REF.c.qualified_at.is_(None))
        .values(qualified_at=b("b_now"), qualifying_order=b("b_order"), counted=b("b_counted")),
        "uncount": update(_REF).where(_REF.c.id == b("b_id")).values(counted=False),
        "insert_referral": insert(_REF).on_conflict_do_nothing().returning(_REF.c.id),
        "insert_order": insert(_ORD).on_conflict_do_nothing().returning(_ORD.c.id),
        "order_outcome": update(_ORD)
        .where(_ORD.c.id == b("b_id"))
        .values(status=b("b_status"), reason=b("b_reason"), referral_id=b("b_ref")),
        "parent": select(_REF.c.id, _REF.c.generation, _REF.c.group_id).where(
            _REF.c.campaign_id == b("b_cid"), _REF.c.friend_person_id == b("b_pid")
        ),
        "referral_of_friend": select(Referral).where(
            Referral.campaign_id == b("b_cid"), Referral.friend_person_id == b("b_pid")
        ),
        "invite_by_token": select(Invite, Campaign)
        .join(Campaign, Campaign.id == Invite.campaign_id)
        .where(Invite.token == b("b_token")),
    }


_statements: dict[str, dict[str, Any]] = {}


def _stmt(session: Session, name: str):
    dialect = session.get_bind().dialect.name
    built = _statements.get(dialect)
    if built is None:
        built = _statements[dialect] = _build_statements(
            pg_insert if dialect == "postgresql" else sqlite_insert
        )
    return built[name]


def _expire_campaign(session: Session, campaign_id: str) -> None:
    """A loaded campaign's budget and stock changed by a Core UPDATE: read them again when used."""
    for obj in session.identity_map.values():
        if isinstance(obj, Campaign) and obj.id == campaign_id:
            session.expire(obj, ["budget_used_fen", "stock_used"])


def _audit(
    session: Session,
    action: str,
    campaign_id: str | None,
    detail: dict | None = None,
    *,
    actor: str = "system",
    entity: str = "campaign",
    entity_id: str | int = "",
) -> None:
    """One audit row per state change, written at the transaction's commit (one INSERT for all rows
    of a request) and dropped with its rollback. `liebian.auth` has no audit service yet: the table
    campaign_audit stands in."""
    session.info.setdefault("campaign_audit", []).append(
        {
            "ts": utcnow(),
            "actor": actor[:64],
            "action": action,
            "campaign_id": campaign_id,
            "entity": entity,
            "entity_id": str(entity_id),
            "detail": _json(detail or {}),
        }
    )


@event.listens_for(Session, "before_commit")
def _write_audit(session: Session) -> None:
    session.info.pop("campaign_refs", None)
    rows = session.info.pop("campaign_audit", None)
    if rows:
        session.execute(CampaignAudit.__table__.insert(), rows)


@event.listens_for(Session, "after_rollback")
def _drop_audit(session: Session) -> None:
    session.info.pop("campaign_audit", None)
    session.info.pop("campaign_refs", None)


def audit_log(session: Session, campaign_id: str | None = None, limit: int = 200) -> list[dict]:
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


def parse_rules(data: dict) -> CampaignRules:
    """Validate a rules document; every problem is reported with its field (422)."""
    try:
        rules = CampaignRules.model_validate(data)
    except ValidationError as exc:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]) or "rules", "reason": e["msg"]} for e in exc.errors()
        ]
        raise CampaignError(422, "invalid_rules", _summary(errors), errors=errors) from None
    problems = rule_problems(rules)
    if problems:
        errors = [{"field": f, "reason": r} for f, r in problems]
        raise CampaignError(422, "contradictory_rules", _summary(errors), errors=errors)
    return rules


def _summary(errors: list[dict]) -> str:
    return "; ".join(f"{e['field']}: {e['reason']}" for e in errors)


_rules_cache: dict[tuple[str, int], CampaignRules] = {}


def rules_of(session: Session, campaign_id: str, version: int, *, cache: bool = True) -> CampaignRules:
    """The rules of one version. Launched versions never change, so they are cached per process."""
    key = (campaign_id, version)
    if cache and key in _rules_cache:
        return _rules_cache[key]
    text = session.scalar(
        select(CampaignVersion.rules).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == version
        )
    )
    if text is None:
        raise CampaignError(404, "unknown_version", f"campaign {campaign_id} has no version {version}")
    rules = CampaignRules.model_validate_json(text)
    if cache:
        _rules_cache[key] = rules
    return rules


def _campaign(session: Session, campaign_id: str, *, lock: bool = False) -> Campaign:
    if lock:
        q = select(Campaign).where(Campaign.id == campaign_id).with_for_update()
        c = session.scalar(q.execution_options(populate_existing=True))
    else:  # sessions live for one request: the identity map (filled by verify_code) is fresh
        c = session.get(Campaign, campaign_id)
    if c is None:
        raise CampaignError(404, "unknown_campaign", f"no campaign {campaign_id!r}", field="campaign_id")
    return c


def effective_status(c: Campaign, rules: CampaignRules, now: datetime) -> str:
    """The stored status, moved on by the clock: scheduled → live at start, live → ended after end."""
    status = c.status
    if status in LAUNCHED and rules.end_at and now > rules.end_at:
        return "ended"
    if status == "scheduled" and (rules.start_at is None or now >= rules.start_at):
        return "live"
    return status


def campaign_view(session: Session, c: Campaign, now: datetime | None = None) -> dict:
    now = now or utcnow()
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return {
        "id": c.id,
        "type": c.type,
        "title": c.title,
        "status": effective_status(c, rules, now),
        "version": c.version,
        "budget_fen": c.budget_fen,
        "budget_used_fen": c.budget_used_fen,
        "stock": c.stock,
        "stock_used": c.stock_used,
        "created_at": c.created_at,
        "launched_at": c.launched_at,
        "rules": rules.model_dump(mode="json"),
    }


def create_campaign(
    session: Session, rules_data: dict, *, campaign_id: str | None = None, actor: str = "operator"
) -> dict:
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
    _audit(session, "campaign.create", cid, {"type": rules.type, "title": rules.title}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def edit_campaign(
    session: Session, campaign_id: str, rules_data: dict, *, note: str = "", actor: str = "operator"
) -> dict:
    """Change the rules. A draft is edited in place; a launched campaign gets a new version."""
    c = _campaign(session, campaign_id, lock=True)
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
    _audit(session, "campaign.edit", c.id, {"version": c.version, "note": note}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def get_campaign(session: Session, campaign_id: str) -> dict:
    return campaign_view(session, _campaign(session, campaign_id))


def campaign_ids(session: Session) -> list[str]:
    """Every campaign's id, oldest first (cheap: no views)."""
    return list(session.scalars(select(Campaign.id).order_by(Campaign.created_at)))


def list_campaigns(session: Session, status: str | None = None, *, with_rules: bool = False) -> list[dict]:
    now = utcnow()
    out = []
    for c in session.scalars(select(Campaign).order_by(Campaign.created_at)):
        view = campaign_view(session, c, now)
        if not with_rules:
            view.pop("rules")
        if status is None or view["status"] == status:
            out.append(view)
    return out


def campaign_stats(session: Session, campaign_id: str | None = None) -> dict[str, dict]:
    """Per campaign (or for one): participants (inviters holding a code), referrals, qualified ones
    and referrals by state — two GROUP BY queries however many campaigns (the console's list)."""
    out: dict[str, dict] = {}

    def entry(cid: str) -> dict:
        return out.setdefault(cid, {"participants": 0, "referrals": 0, "qualified": 0, "states": {}})

    inviters = select(Invite.campaign_id, func.count(func.distinct(Invite.inviter_person_id)))
    referrals = select(Referral.campaign_id, Referral.state, func.count(), func.count(Referral.qualified_at))
    if campaign_id is not None:
        inviters = inviters.where(Invite.campaign_id == campaign_id)
        referrals = referrals.where(Referral.campaign_id == campaign_id)
    for cid, n in session.execute(inviters.group_by(Invite.campaign_id)):
        entry(cid)["participants"] = int(n)
    rows = session.execute(referrals.group_by(Referral.campaign_id, Referral.state))
    for cid, state, n, qualified in rows:
        e = entry(cid)
        e["states"][state] = int(n)
        e["referrals"] += int(n)
        e["qualified"] += int(qualified)
    return out


def versions(session: Session, campaign_id: str) -> list[dict]:
    _campaign(session, campaign_id)
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


def compliance(rules: CampaignRules) -> dict:
    """Hard rules block launch; soft findings add up to a compliance risk score (0–100)."""
    hard, soft = [], []
    if rules.per_inviter_cap is None:
        hard.append(
            {
                "rule": "invite_cap",
                "field": "per_inviter_cap",
                "message": "no per-inviter invite cap (邀请上限)",
            }
        )
    if len(rules.rules_text.strip()) < 10:
        hard.append(
            {"rule": "rules_text", "field": "rules_text", "message": "no published rules text (活动规则)"}
        )
    if rules.collects and not rules.consent_step:
        hard.append(
            {
                "rule": "consent",
                "field": "consent_step",
                "message": f"collects {', '.join(rules.collects)} without a consent step (用户授权)",
            }
        )
    if not rules.reward_value_disclosed:
        hard.append(
            {
                "rule": "reward_disclosure",
                "field": "reward_value_disclosed",
                "message": "reward value not disclosed",
            }
        )
    if rules.forced_sharing:
        hard.append(
            {
                "rule": "forced_sharing",
                "field": "forced_sharing",
                "message": "forced sharing (诱导分享) is not allowed",
            }
        )

    def add(rule: str, fld: str, message: str, score: int) -> None:
        soft.append({"rule": rule, "field": fld, "message": message, "score": score})

    if rules.per_inviter_cap and rules.per_inviter_cap > 3:
        add("invite_cap_high", "per_inviter_cap", f"cap {rules.per_inviter_cap} above the recommended 3", 20)
    if rules.budget_fen is None and rules.stock is None:
        add("no_budget", "budget_fen", "no budget or stock cap", 15)
    if rules.hold_days < 7:
        add("short_hold", "hold_days", f"hold {rules.hold_days} d is shorter than a 7-day refund window", 10)
    if rules.end_at is None:
        add("open_ended", "end_at", "no end date", 10)
    if rules.per_device_cap is None and rules.per_ip_cap is None:
        add("no_device_cap", "per_device_cap", "no per-device or per-IP cap", 10)
    if "phone" in rules.collects:
        add("collects_phone", "collects", "collects phone numbers", 5)
    if not rules.regions and not rules.stores:
        add("no_scope", "regions", "no region/store scoping (regional rules may differ)", 5)
    score = min(100, sum(s["score"] for s in soft))
    return {
        "passed": not hard,
        "hard": hard,
        "soft": soft,
        "risk_score": score,
        "risk_level": "high" if score >= 40 else "medium" if score >= 20 else "low",
    }


def compliance_report(session: Session, campaign_id: str) -> dict:
    c = _campaign(session, campaign_id)
    report = compliance(rules_of(session, c.id, c.version, cache=c.status != "draft"))
    return {"campaign_id": c.id, "version": c.version, **report}


def launch(
    session: Session, campaign_id: str, *, actor: str = "operator", now: datetime | None = None
) -> dict:
    now = now or utcnow()
    c = _campaign(session, campaign_id, lock=True)
    rules = rules_of(session, c.id, c.version, cache=False)
    status = effective_status(c, rules, now)
    if status == "ended":
        raise CampaignError(409, "campaign_ended", f"campaign {campaign_id} has ended")
    if status == "live":
        return campaign_view(session, c, now)
    report = compliance(rules)
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
    _audit(session, "campaign.launch", c.id, {"status": c.status, "version": c.version}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def pause(session: Session, campaign_id: str, *, actor: str = "operator") -> dict:
    now = utcnow()
    c = _campaign(session, campaign_id, lock=True)
    status = effective_status(c, rules_of(session, c.id, c.version, cache=c.status != "draft"), now)
    if status not in ("scheduled", "live"):
        raise CampaignError(
            409, "not_live", f"campaign {campaign_id} is {status}, only a launched campaign pauses"
        )
    c.status, c.updated_at = "paused", now
    _audit(session, "campaign.pause", c.id, {}, actor=actor)
    session.flush()
    return campaign_view(session, c, now)


def end(session: Session, campaign_id: str, *, actor: str = "operator", now: datetime | None = None) -> dict:
    """End the campaign; a leaderboard campaign grants its rank rewards once."""
    now = now or utcnow()
    c = _campaign(session, campaign_id, lock=True)
    if c.status == "ended" and c.settled:
        return campaign_view(session, c, now)
    c.status, c.updated_at = "ended", now
    _audit(session, "campaign.end", c.id, {}, actor=actor)
    rules = rules_of(session, c.id, c.version, cache=False)
    if rules.type == "leaderboard" and not c.settled:
        settle_leaderboard(session, c, rules, now)
    c.settled = True
    session.flush()
    session.refresh(c)  # the grants moved the budget columns by UPDATE
    return campaign_view(session, c, now)


def close_due(session: Session, now: datetime | None = None) -> list[str]:
    """Persist `ended` for launched campaigns past their end date; leaderboards grant their ranks.

    Run by the server's background thread and by `liebian campaign close-due` (cron)."""
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


# ---------------------------------------------------------------- participants


def _keys_of(p: Participant, device_id: str | None = None) -> list[identity.Key]:
    try:
        found = [identity.key_of(p.id_type, p.id)]
        for id_type, raw in p.other_ids.items():
            found.append(identity.key_of(id_type, raw))
        if device_id:
            found.append(identity.key_of("device_id", device_id))
    except IdentifierError as exc:
        raise CampaignError(422, "bad_identifier", str(exc), field=exc.field) from None
    return list(dict.fromkeys(found))


def _raw_ids(p: Participant, device_id: str | None = None) -> list[identity.RawIdentifier]:
    raws = [identity.RawIdentifier(p.id_type.strip().lower(), p.id)]
    raws += [identity.RawIdentifier(t.strip().lower(), v) for t, v in p.other_ids.items()]
    if device_id:
        raws.append(identity.RawIdentifier("device_id", device_id))
    return raws


def _resolve_person(
    session: Session, p: Participant, source: str, device_id: str | None = None, known: dict | None = None
) -> int:
    """The participant's person, registering new identifiers and linking all they presented
    (`known`: the caller's look-up of the same identifiers in this transaction)."""
    keys_ = _keys_of(p, device_id)
    raws = _raw_ids(p, device_id)
    persons = identity.resolve(session, raws, source=source, known=known)
    if len(keys_) > 1 and len({persons[k] for k in keys_}) > 1:
        evidence = [identity.LinkEvidence(raws[0], r, source=source) for r in raws[1:]]
        identity.link(session, evidence)
        persons = identity.lookup(session, keys_)
    return persons[keys_[0]]


def _find_person(session: Session, p: Participant) -> int:
    key = _keys_of(p)[0]
    pid = identity.lookup(session, [key]).get(key)
    if pid is None:
        raise CampaignError(404, "unknown_participant", f"no participant with this {key[0]}", field="id")
    return pid


# ---------------------------------------------------------------- invite codes

CODE_RE = re.compile(r"^[a-z2-7]{23}$")


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _code_mac(token: str, campaign_id: str, inviter: int) -> str:
    msg = f"invite|{token}|{campaign_id}|{inviter}".encode()
    return _b32(hmac.new(keys().hmac_key, msg, hashlib.sha256).digest()[:6])


def invite_code(inv: Invite) -> str:
    return inv.token + _code_mac(inv.token, inv.campaign_id, inv.inviter_person_id)


def invite_link(code: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}/i/{code}"


def _invite_view(inv: Invite) -> dict:
    code = invite_code(inv)
    return {
        "code": code,
        "link": invite_link(code),
        "poster_url": f"/api/v1/invites/{code}/poster.png",
        "campaign_id": inv.campaign_id,
        "channel": inv.channel,
        "inviter_person_id": inv.inviter_person_id,
        "clicks": inv.clicks,
        "expires_at": inv.expires_at,
    }


def verify_code(session: Session, code: str, now: datetime | None = None) -> Invite:
    """The invite a code stands for: 400 malformed or forged, 404 unknown, 410 expired."""
    code = (code or "").strip().lower()
    if not CODE_RE.match(code):
        raise CampaignError(400, "malformed_code", "the invite code is malformed", field="code")
    # The campaign comes in the same query and stays in the identity map for _campaign().
    row = session.execute(_stmt(session, "invite_by_token"), {"b_token": code[:13]}).first()
    inv = row[0] if row else None
    if row:  # the identity map holds objects weakly: keep the campaign for this session
        session.info.setdefault("campaign_refs", []).append(row[1])
    if inv is None:
        raise CampaignError(404, "unknown_code", "no such invite code", field="code")
    expected = _code_mac(inv.token, inv.campaign_id, inv.inviter_person_id)
    if not hmac.compare_digest(expected, code[13:]):
        raise CampaignError(400, "forged_code", "the invite code's signature does not match", field="code")
    if (now or utcnow()) > inv.expires_at:
        raise CampaignError(
            410,
            "expired_code",
            f"the invite code expired at {inv.expires_at:%Y-%m-%d %H:%M} UTC",
            field="code",
        )
    return inv


def _live_rules(session: Session, c: Campaign, now: datetime) -> CampaignRules:
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    status = effective_status(c, rules, now)
    if status != "live":
        raise CampaignError(409, "campaign_not_live", f"campaign {c.id} is {status}", field="campaign_id")
    return rules


def get_invite(
    session: Session, campaign_id: str, p: Participant, *, channel: str = "share", now: datetime | None = None
) -> dict:
    """My invite link for a campaign and channel (渠道活码): the same code until it expires."""
    now = now or utcnow()
    c = _campaign(session, campaign_id)
    rules = _live_rules(session, c, now)
    pid = _resolve_person(session, p, source=f"campaign:{c.id}")
    inv = session.scalar(
        select(Invite)
        .where(
            Invite.campaign_id == c.id,
            Invite.inviter_person_id == pid,
            Invite.channel == channel,
            Invite.expires_at > now,
        )
        .order_by(Invite.id)
        .limit(1)
    )
    if inv is None:
        expires = now + timedelta(days=rules.invite_ttl_days)
        if rules.end_at:
            expires = min(expires, rules.end_at)
        inv = Invite(
            token=_b32(os.urandom(8)),
            campaign_id=c.id,
            inviter_person_id=pid,
            channel=channel,
            nickname=p.nickname or "",
            created_at=now,
            expires_at=expires,
        )
        session.add(inv)
        session.flush()
        _audit(session, "invite.create", c.id, {"channel": channel}, entity="invite", entity_id=inv.id)
    elif p.nickname and p.nickname != inv.nickname:
        inv.nickname = p.nickname
    return _invite_view(inv)


def click(
    session: Session, code: str, *, ip: str | None = None, user_agent: str | None = None
) -> tuple[Invite, str]:
    """Record a click on an invite link (an `invite_click` event) and return where to send the browser."""
    now = utcnow()
    inv = verify_code(session, code, now)
    session.execute(update(Invite).where(Invite.id == inv.id).values(clicks=Invite.clicks + 1))
    code = invite_code(inv)
    _outbox_event(
        session,
        event="invite_click",
        ts=now,
        person_id=inv.inviter_person_id,
        campaign_id=inv.campaign_id,
        code=code,
        channel=inv.channel,
        ip=ip,
        props={"user_agent": user_agent or ""},
        key=f"click:{inv.id}:{os.urandom(6).hex()}",
    )
    c = session.get(Campaign, inv.campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    target = rules.landing_url or f"{get_settings().public_url.rstrip('/')}/api/v1/invites/{code}"
    sep = "&" if "?" in target else "?"
    return inv, f"{target}{sep}code={code}" if rules.landing_url else target


def invite_info(session: Session, code: str) -> dict:
    inv = verify_code(session, code)
    c = _campaign(session, inv.campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return {
        **_invite_view(inv),
        "title": rules.title,
        "rules_text": rules.rules_text,
        "nickname": inv.nickname,
        "status": effective_status(c, rules, utcnow()),
    }


# ---------------------------------------------------------------- risk seam


@dataclass
class RiskContext:
    stage: str  # accept | conversion
    campaign_id: str
    version: int
    rules: CampaignRules
    inviter: int | None
    friend: int | None
    device_id: str | None = None
    ip: str | None = None
    user_agent: str | None = None
    phone: str | None = None
    payment_account: str | None = None
    ts: datetime = field(default_factory=utcnow)
    referral_id: int | None = None
    friend_is_new: bool = False  # founded by this request: no history in OneID


@dataclass
class RiskSignal:
    code: str
    score: int
    detail: str = ""


RiskCheck = Callable[[Session, RiskContext], list[RiskSignal]]


def check_device_ip_caps(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """Per-device and per-IP caps: counted by conditional UPDATE at accept; over the cap is a signal."""
    if ctx.stage != "accept":
        return []
    out = []
    for scope, value, cap in (
        ("device", ctx.device_id, ctx.rules.per_device_cap),
        ("ip", ctx.ip, ctx.rules.per_ip_cap),
    ):
        if value and cap is not None and _bump(session, ctx.campaign_id, scope, value, cap) is None:
            out.append(RiskSignal(f"{scope}_cap", 100, f"more than {cap} friends from one {scope}"))
    return out


def check_circular(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """The friend already brought the inviter (directly or further up the chain): a circular referral."""
    if ctx.stage != "accept" or ctx.inviter is None or ctx.friend is None or ctx.friend_is_new:
        return []
    person, seen = ctx.inviter, set()
    while person is not None and person not in seen:
        seen.add(person)
        parent = session.scalar(
            select(Referral.inviter_person_id).where(
                Referral.campaign_id == ctx.campaign_id, Referral.friend_person_id == person
            )
        )
        if parent == ctx.friend:
            return [RiskSignal("circular_referral", 100, "the friend is upstream of the inviter")]
        person = parent
    return []


def _assess(session: Session, ctx: RiskContext) -> tuple[str, int, list[RiskSignal]]:
    """Run the wired inline checks (liebian/bootstrap.py: the engine's own and fraud's)."""
    signals: list[RiskSignal] = []
    for check in ports.current().risk_checks:
        signals.extend(check(session, ctx))
    score = sum(s.score for s in signals)
    policy = ctx.rules.risk_policy
    decision = "block" if score >= policy.block_at else "hold" if score >= policy.hold_at else "allow"
    return decision, score, signals


# ---------------------------------------------------------------- counters, budget, grants


def _bump(
    session: Session, campaign_id: str, scope: str, key: str, cap: int | None, n: int = 1
) -> int | None:
    """Raise a counter by n unless that passes the cap: the new value, or None when capped."""
    if cap is not None and n > cap:
        return None
    params = {"b_cid": campaign_id, "b_scope": scope, "b_key": key, "b_n": n, "b_now": utcnow()}
    if cap is None:
        row = session.execute(_stmt(session, "bump_uncapped"), params).first()
    else:
        row = session.execute(_stmt(session, "bump"), {**params, "b_cap": cap}).first()
    return None if row is None else row[0]


def _unbump(session: Session, campaign_id: str, scope: str, key: str, n: int = 1) -> None:
    session.execute(
        update(CapCounter)
        .where(
            CapCounter.campaign_id == campaign_id,
            CapCounter.scope == scope,
            CapCounter.key == key,
            CapCounter.used >= n,
        )
        .values(used=CapCounter.used - n)
    )


def _rewards():
    from liebian.rewards import service as rewards

    return rewards


@dataclass
class Grant:
    person_id: int
    role: str
    reward_code: str
    value_fen: int
    reward_id: int | None
    state: str  # granted | budget_exhausted


def _grant(
    session: Session,
    campaign_id: str,
    person_id: int,
    reward: Reward,
    *,
    role: str,
    key: str,
    source_ref: str,
    hold_until: datetime | None,
    held: bool,
    reason: str,
) -> Grant:
    """Reserve budget and stock atomically, then grant through the ledger (idempotent by key)."""
    idem = f"{campaign_id}:{key}"
    row = session.execute(
        _stmt(session, "reserve"),
        {
            "campaign_id": campaign_id,
            "idempotency_key": idem,
            "value_fen": reward.value_fen,
            "released": False,
            "created_at": utcnow(),
        },
    ).first()
    if row is not None:  # first time: take budget and stock or give the reservation back
        took = session.execute(
            _stmt(session, "take_budget"), {"b_cid": campaign_id, "b_value": reward.value_fen}
        ).rowcount
        _expire_campaign(session, campaign_id)
        if not took:
            session.execute(delete(Reservation).where(Reservation.id == row[0]))
            _audit(
                session,
                "reward.budget_exhausted",
                campaign_id,
                {"key": key, "person_id": person_id},
                entity="reservation",
            )
            return Grant(person_id, role, reward.code, reward.value_fen, None, "budget_exhausted")
    view = _rewards().grant(
        session,
        campaign_id=campaign_id,
        person_id=person_id,
        reward_code=reward.code,
        value_fen=reward.value_fen,
        reason=reason,
        source_ref=source_ref,
        idempotency_key=idem,
        hold_until=hold_until,
        held_for_review=held,
    )
    if row is not None:
        session.execute(_stmt(session, "reservation_reward"), {"b_id": row[0], "b_reward": view.id})
        _audit(
            session,
            "reward.reserve",
            campaign_id,
            {
                "key": key,
                "person_id": person_id,
                "value_fen": reward.value_fen,
                "reward_id": view.id,
                "held": held,
            },
            entity="reservation",
            entity_id=row[0],
        )
    return Grant(person_id, role, reward.code, reward.value_fen, view.id, "granted")


def on_reward_final(session: Session, reward: Any) -> bool:
    """A reward was rejected or revoked: give its budget and stock back, once."""
    res = session.execute(
        update(Reservation)
        .where(Reservation.reward_id == reward.id, Reservation.released.is_(False))
        .values(released=True)
        .returning(Reservation.campaign_id, Reservation.value_fen)
    ).first()
    if res is None:
        return False
    session.execute(
        update(Campaign)
        .where(Campaign.id == res[0])
        .values(budget_used_fen=Campaign.budget_used_fen - res[1], stock_used=Campaign.stock_used - 1)
    )
    _audit(
        session, "reward.release", res[0], {"reward_id": reward.id, "value_fen": res[1]}, entity="reservation"
    )
    return True


def reconcile_reservations(session: Session, campaign_id: str | None = None) -> int:
    """Release the budget of rewards rejected or revoked through the ledger directly (operator review),
    in case the ledger did not call `on_reward_final`. Idempotent; run with close_due."""
    open_ids = set(
        session.scalars(
            select(Reservation.reward_id).where(
                Reservation.released.is_(False),
                Reservation.reward_id.is_not(None),
                *([Reservation.campaign_id == campaign_id] if campaign_id else []),
            )
        )
    )
    released = 0
    for state in ("rejected", "revoked"):
        offset = 0
        while open_ids:
            page = _rewards().list_rewards(
                session, state=state, campaign_id=campaign_id, limit=1000, offset=offset
            )
            for reward in page:
                if reward.id in open_ids and on_reward_final(session, reward):
                    open_ids.discard(reward.id)
                    released += 1
            if len(page) < 1000:
                break
            offset += 1000
    return released


# ---------------------------------------------------------------- warehouse outbox


def _outbox_event(
    session: Session,
    *,
    event: str,
    ts: datetime,
    person_id: int,
    campaign_id: str,
    code: str | None,
    channel: str,
    key: str,
    referrer: int | None = None,
    device_id: str | None = None,
    ip: str | None = None,
    props: dict | None = None,
    edge: bool = False,
) -> None:
    payload = {
        "event_id": f"cmp:{key}",
        "ts": ts.isoformat(),
        "person_id": person_id,
        "event": event,
        "channel": channel,
        "campaign_id": campaign_id,
        "invite_code": code,
        "referrer_person_id": referrer,
        "device_id": device_id,
        "ip": ip,
        "props": props or {},
    }
    rows = [{"kind": "event", "payload": _json(payload), "created_at": utcnow()}]
    if edge:
        rows.append({"kind": "edge", "payload": _json(payload), "created_at": utcnow()})
    session.execute(Outbox.__table__.insert(), rows)


# Outbox payloads are parsed by DuckDB, not Python: a flush then holds the GIL only to fetch the
# rows, so requests served meanwhile do not queue behind it (with a Python loop over 5000 payloads,
# requests waited up to ~0.5 s after a burst).
_EVENTS_FROM_OUTBOX = """
INSERT INTO events BY NAME
SELECT * FROM (
    SELECT payload->>'$.event_id' AS event_id, (payload->>'$.ts')::TIMESTAMP AS ts,
           (payload->>'$.person_id')::BIGINT AS person_id, 'person' AS id_type,
           payload->>'$.person_id' AS user_id, payload->>'$.event' AS event, payload->>'$.channel' AS channel,
           payload->>'$.campaign_id' AS campaign_id, payload->>'$.invite_code' AS invite_code,
           (payload->>'$.referrer_person_id')::BIGINT AS referrer_person_id,
           payload->>'$.device_id' AS device_id, payload->>'$.ip' AS ip,
           (payload->'$.props')::VARCHAR AS props, (payload->>'$.ts')::TIMESTAMP AS received_at,
           'campaigns' AS batch_id, $now AS ingested_at
    FROM outbox_rows WHERE kind = 'event'
) n
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = n.event_id)
"""
_EDGES_FROM_OUTBOX = """
INSERT INTO referral_edges BY NAME
SELECT * FROM (
    SELECT (payload->>'$.referrer_person_id')::BIGINT AS inviter_person_id,
           (payload->>'$.person_id')::BIGINT AS invitee_person_id, payload->>'$.campaign_id' AS campaign_id,
           payload->>'$.channel' AS channel, (payload->>'$.ts')::TIMESTAMP AS ts, payload->>'$.event_id' AS event_id
    FROM outbox_rows WHERE kind = 'edge'
) n
WHERE NOT EXISTS (SELECT 1 FROM referral_edges r WHERE r.invitee_person_id = n.invitee_person_id
                  AND r.campaign_id = n.campaign_id)
"""
FLUSH_ROWS = 1000  # outbox rows per flush transaction


_flush_lock = threading.Lock()


def flush_warehouse(session: Session, limit: int = FLUSH_ROWS) -> int:
    """Move queued events and referral edges into the DuckDB warehouse; safe to re-run after a crash.

    Connections of one process share one DuckDB instance whose transactions do not serialise
    appends, hence the lock; other processes wait on the file lock instead.
    """
    with _flush_lock:
        return _flush(session, limit)


def _flush(session: Session, limit: int) -> int:
    import pyarrow as pa

    from liebian.engine import warehouse

    rows = session.execute(
        select(Outbox.id, Outbox.kind, Outbox.payload).order_by(Outbox.id).limit(limit)
    ).all()
    if not rows:
        return 0
    ids, kinds, payloads = zip(*rows, strict=True)
    batch = pa.table({"kind": pa.array(kinds, pa.string()), "payload": pa.array(payloads, pa.string())})
    with warehouse.connect() as con:
        con.register("outbox_rows", batch)
        try:
            con.execute("BEGIN")
            con.execute(_EVENTS_FROM_OUTBOX, {"now": utcnow()})
            con.execute(_EDGES_FROM_OUTBOX)
            con.execute("COMMIT")
        finally:
            con.unregister("outbox_rows")
    session.execute(delete(Outbox).where(Outbox.id.in_(ids)))
    return len(rows)


class WarehouseFlusher:
    """A background thread that flushes the outbox every `interval` seconds (one per server process)."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="campaign-warehouse-flush", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        rounds = 0
        while not self._stop.wait(self.interval):
            self.flush_once()
            rounds += 1
            if rounds % 30 == 0:
                self.close_once()

    def close_once(self) -> None:
        from liebian.db.session import session_scope

        try:
            with session_scope() as s:
                close_due(s)
                reconcile_reservations(s)
        except Exception:
            log.exception("closing campaigns past their end date failed")

    def flush_once(self) -> None:
        from liebian.db.session import session_scope

        try:
            while True:
                with session_scope() as s:
                    if flush_warehouse(s) < FLUSH_ROWS:
                        break
        except Exception:  # keep serving; the rows stay queued for the next round
            log.exception("flushing campaign events to the warehouse failed")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush_once()


# ---------------------------------------------------------------- accept an invite


@dataclass
class AcceptResult:
    referral_id: int
    campaign_id: str
    version: int
    inviter_person_id: int
    friend_person_id: int
    state: str
    generation: int
    channel: str
    risk_score: int = 0
    signals: list[dict] = field(default_factory=list)
    grants: list[dict] = field(default_factory=list)
    reattributed: bool = False


def accept_invite(session: Session, req, *, now: datetime | None = None) -> AcceptResult:
    """A friend arrives through an invite (signs up): attribute, check the rules and the risk checks."""
    now = now or utcnow()
    inv = verify_code(session, req.code, now)
    c = _campaign(session, inv.campaign_id)
    rules = _live_rules(session, c, now)
    inviter = inv.inviter_person_id
    keys_ = _keys_of(req, req.device_id)
    known = identity.lookup(session, keys_)
    if inviter in known.values():
        raise CampaignError(409, "own_invite", "an inviter cannot accept their own invite", field="code")
    if known:
        existing = session.scalar(
            select(Referral).where(
                Referral.campaign_id == c.id, Referral.friend_person_id.in_(set(known.values()))
            )
        )
        if existing is not None:
            if existing.inviter_person_id == inviter or rules.attribution == "first_touch":
                raise CampaignError(
                    409,
                    "already_accepted",
                    "this friend has already accepted an invite in this campaign",
                    field="code",
                )
            if existing.qualified_at is not None or existing.state in ("blocked", "refunded"):
                raise CampaignError(
                    409, "already_qualified", "the friend is already attributed and qualified", field="code"
                )
            return _reattribute(session, existing, inv, c, rules, now)
        if rules.require_new_friend:
            seen = sorted({k[0] for k in known})
            raise CampaignError(
                409, "friend_not_new", f"the friend is not new: {', '.join(seen)} seen before", field=seen[0]
            )
    friend = _resolve_person(session, req, source=f"campaign:{c.id}", device_id=req.device_id, known=known)
    if friend == inviter:
        raise CampaignError(409, "own_invite", "an inviter cannot accept their own invite", field="code")
    parent = session.execute(_stmt(session, "parent"), {"b_cid": c.id, "b_pid": inviter}).first()
    group_id = (
        _group_for(session, c.id, rules, inviter, parent, inv, now) if rules.type == "group_buy" else None
    )
    ctx = RiskContext(
        stage="accept",
        campaign_id=c.id,
        version=c.version,
        rules=rules,
        inviter=inviter,
        friend=friend,
        device_id=req.device_id,
        ip=req.ip,
        user_agent=req.user_agent,
        phone=req.id if req.id_type == "phone" else req.other_ids.get("phone"),
        ts=now,
        friend_is_new=not known,
    )
    decision, score, signals = _assess(session, ctx)
    state = {"allow": "accepted", "hold": "held", "block": "blocked"}[decision]
    row = session.execute(
        _stmt(session, "insert_referral"),
        {
            "campaign_id": c.id,
            "version": c.version,
            "invite_id": inv.id,
            "inviter_person_id": inviter,
            "friend_person_id": friend,
            "channel": inv.channel,
            "parent_referral_id": parent[0] if parent else None,
            "generation": parent[1] + 1 if parent else 1,
            "group_id": group_id,
            "state": state,
            "risk_score": score,
            "risk_signals": _json([asdict(s) for s in signals]),
            "device_id": req.device_id,
            "ip": req.ip,
            "accepted_at": now,
            "counted": False,
            "note": "",
        },
    ).first()
    if row is None:  # a concurrent request for the same friend won
        raise CampaignError(
            409,
            "already_accepted",
            "this friend has already accepted an invite in this campaign",
            field="code",
        )
    code = invite_code(inv)
    _outbox_event(
        session,
        event="invite_accept",
        ts=now,
        person_id=friend,
        campaign_id=c.id,
        code=code,
        channel=inv.channel,
        referrer=inviter,
        device_id=req.device_id,
        ip=req.ip,
        props={"generation": parent[1] + 1 if parent else 1, "state": state},
        key=f"accept:{row[0]}",
        edge=state != "blocked",
    )
    _audit(
        session,
        "referral.accept",
        c.id,
        {"state": state, "version": c.version, "score": score, "signals": [s.code for s in signals]},
        entity="referral",
        entity_id=row[0],
    )
    result = AcceptResult(
        referral_id=row[0],
        campaign_id=c.id,
        version=c.version,
        inviter_person_id=inviter,
        friend_person_id=friend,
        state=state,
        generation=parent[1] + 1 if parent else 1,
        channel=inv.channel,
        risk_score=score,
        signals=[asdict(s) for s in signals],
    )
    if state != "blocked" and rules.qualifying_event.kind == "signup":
        ref = session.get(Referral, row[0])
        _ok, result.grants = _qualify(
            session, ref, rules, source_ref=f"referral:{c.id}:{ref.id}", order_id=None, now=now
        )
    return result


def _reattribute(
    session: Session, ref: Referral, inv: Invite, c: Campaign, rules: CampaignRules, now: datetime
) -> AcceptResult:
    """Last touch: a not yet qualified friend within the claim window moves to the newer inviter."""
    if now - ref.accepted_at > timedelta(days=rules.claim_window_days):
        raise CampaignError(
            409, "claim_window_over", "the claim window of the first invite is over", field="code"
        )
    if ref.friend_person_id == inv.inviter_person_id:
        raise CampaignError(409, "own_invite", "an inviter cannot accept their own invite", field="code")
    old = ref.inviter_person_id
    ref.inviter_person_id, ref.invite_id, ref.channel, ref.version = (
        inv.inviter_person_id,
        inv.id,
        inv.channel,
        c.version,
    )
    ref.accepted_at = now
    _audit(
        session,
        "referral.reattribute",
        c.id,
        {"from": old, "to": inv.inviter_person_id},
        entity="referral",
        entity_id=ref.id,
    )
    _outbox_event(
        session,
        event="invite_accept",
        ts=now,
        person_id=ref.friend_person_id,
        campaign_id=c.id,
        code=invite_code(inv),
        channel=inv.channel,
        referrer=inv.inviter_person_id,
        props={"reattributed_from": old},
        key=f"accept:{ref.id}:{inv.id}",
    )
    session.flush()
    return AcceptResult(
        referral_id=ref.id,
        campaign_id=c.id,
        version=ref.version,
        inviter_person_id=ref.inviter_person_id,
        friend_person_id=ref.friend_person_id,
        state=ref.state,
        generation=ref.generation,
        channel=ref.channel,
        reattributed=True,
    )


def _group_for(
    session: Session, campaign_id: str, rules: CampaignRules, inviter: int, parent, inv: Invite, now: datetime
) -> int:
    """The group a new joiner enters: the inviter's own group, or the group the inviter joined."""
    if parent is not None and parent[2] is not None:
        gid = parent[2]
    else:
        session.execute(
            _ins(session, Group)
            .values(
                campaign_id=campaign_id,
                initiator_person_id=inviter,
                opened_at=inv.created_at,
                deadline=inv.created_at + timedelta(hours=rules.group.window_hours),
                members_done=0,
                state="open",
            )
            .on_conflict_do_nothing()
        )
        gid = session.scalar(
            select(Group.id).where(Group.campaign_id == campaign_id, Group.initiator_person_id == inviter)
        )
    g = session.get(Group, gid)
    if g.state != "open":
        raise CampaignError(409, "group_complete", "this group is already complete", field="code")
    if now > g.deadline:
        raise CampaignError(
            409, "group_expired", f"the group closed at {g.deadline:%Y-%m-%d %H:%M} UTC", field="code"
        )
    return gid


# ---------------------------------------------------------------- qualification and rewards


def _inviter_spend_ok(session: Session, rules: CampaignRules, inviter: int) -> bool:
    if rules.referrer_min_spend_fen <= 0:
        return True
    spent = session.scalar(
        select(func.coalesce(func.sum(CampaignOrder.amount_fen), 0)).where(
            CampaignOrder.person_id == inviter,
            CampaignOrder.event == "order",
            CampaignOrder.status != "refunded",
        )
    )
    return spent >= rules.referrer_min_spend_fen


def _qualify(
    session: Session,
    ref: Referral,
    rules: CampaignRules,
    *,
    source_ref: str,
    order_id: str | None,
    now: datetime,
) -> tuple[bool, list[dict]]:
    """The friend met the qualifying event: count it once and grant what the version's rules give."""
    if now - ref.accepted_at > timedelta(days=rules.claim_window_days):
        return False, [{"role": "friend", "state": "outside_claim_window"}]
    counts = rules.type != "group_buy"
    won = session.execute(
        _stmt(session, "qualify"), {"b_id": ref.id, "b_now": now, "b_order": order_id, "b_counted": counts}
    ).rowcount
    if not won:
        return False, []
    for name, value in (("qualified_at", now), ("qualifying_order", order_id), ("counted", counts)):
        set_committed_value(ref, name, value)
    cid, inviter, friend = ref.campaign_id, ref.inviter_person_id, ref.friend_person_id
    held = ref.state == "held"
    hold_until = now + timedelta(days=rules.hold_days)
    grants: list[Grant] = []
    notes: list[dict] = []

    def give(person: int, reward: Reward | None, role: str, key: str) -> None:
        if reward is not None:
            grants.append(
                _grant(
                    session,
                    cid,
                    person,
                    reward,
                    role=role,
                    key=key,
                    source_ref=source_ref,
                    hold_until=hold_until,
                    held=held,
                    reason=f"{rules.type}:{role}",
                )
            )

    # Lock order everywhere: referral → inviter counter → campaign row (budget) → ledger head.
    count = None
    if counts:  # counted=True was set optimistically above; undone when the inviter does not count
        if not _inviter_spend_ok(session, rules, inviter):
            notes.append({"role": "inviter", "state": "referrer_spend_below_threshold"})
        else:
            count = _bump(session, cid, "inviter", str(inviter), rules.per_inviter_cap)
            if count is None:
                notes.append({"role": "inviter", "state": "inviter_cap_reached"})
        if count is None:
            session.execute(_stmt(session, "uncount"), {"b_id": ref.id})
            set_committed_value(ref, "counted", False)
    give(friend, rules.friend_reward, "friend", f"friend:{ref.id}")
    if count is not None:
        if rules.type == "invite_task":
            for tier in rules.tiers:
                if tier.threshold == count:
                    give(inviter, tier.reward, f"tier{tier.threshold}", f"tier:{inviter}:{tier.threshold}")
        elif rules.type == "double_sided":
            give(inviter, rules.inviter_reward, "inviter", f"inviter:{ref.id}")
        elif rules.type == "assist" and count == rules.assist.required:
            give(inviter, rules.assist.reward, "assist", f"assist:{inviter}")
    if rules.type == "group_buy" and ref.group_id is not None:
        grants.extend(_group_progress(session, ref, rules, source_ref, hold_until, held, now))
    _audit(
        session,
        "referral.qualify",
        cid,
        {"order_id": order_id, "count": count, "grants": [g.reward_id for g in grants]},
        entity="referral",
        entity_id=ref.id,
    )
    return True, [asdict(g) for g in grants] + notes


def _group_progress(
    session: Session,
    ref: Referral,
    rules: CampaignRules,
    source_ref: str,
    hold_until: datetime,
    held: bool,
    now: datetime,
) -> list[Grant]:
    g = rules.group
    done = session.execute(
        update(Group)
        .where(Group.id == ref.group_id, Group.state == "open", Group.deadline >= now)
        .values(members_done=Group.members_done + 1)
        .returning(Group.members_done)
    ).first()
    if done is None or done[0] < g.size - 1:
        return []
    won = session.execute(
        update(Group)
        .where(Group.id == ref.group_id, Group.state == "open", Group.members_done >= g.size - 1)
        .values(state="complete", completed_at=now)
    ).rowcount
    if not won:
        return []
    group = session.get(Group, ref.group_id)
    members = session.execute(
        select(Referral.friend_person_id, Referral.inviter_person_id, Referral.state).where(
            Referral.group_id == group.id, Referral.qualified_at.is_not(None)
        )
    ).all()
    out = []
    cid = ref.campaign_id

    def give(person: int, reward: Reward | None, role: str, key: str, hold: bool) -> None:
        if reward is not None:
            out.append(
                _grant(
                    session,
                    cid,
                    person,
                    reward,
                    role=role,
                    key=f"group:{group.id}:{key}",
                    source_ref=source_ref,
                    hold_until=hold_until,
                    held=hold,
                    reason=f"group_buy:{role}",
                )
            )

    give(group.initiator_person_id, g.initiator_reward, "initiator", "initiator", held)
    for friend, inviter, state in members:
        give(friend, g.joiner_reward, "joiner", f"joiner:{friend}", state == "held")
        if inviter != group.initiator_person_id:
            give(inviter, g.bringer_reward, "bringer", f"bringer:{friend}", state == "held")
    _audit(session, "group.complete", cid, {"members": len(members)}, entity="group", entity_id=group.id)
    return out


# ---------------------------------------------------------------- conversions and refunds


def report_conversion(session: Session, campaign_id: str, req, *, now: datetime | None = None) -> dict:
    """An order or custom event of a participant; idempotent by order id, judged by the referral's version."""
    now = now or utcnow()
    c = _campaign(session, campaign_id)
    if c.status == "draft":
        raise CampaignError(409, "campaign_not_live", f"campaign {c.id} is a draft", field="campaign_id")
    person = _resolve_person(session, req, source=f"campaign:{c.id}")
    ts = req.ts or now
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    row = session.execute(
        _stmt(session, "insert_order"),
        {
            "campaign_id": c.id,
            "order_id": req.order_id,
            "person_id": person,
            "event": req.event,
            "amount_fen": req.amount_fen,
            "status": "received",
            "reason": "",
            "region": req.region,
            "store": req.store,
            "ts": ts,
            "created_at": now,
        },
    ).first()
    if row is None:
        existing = session.scalar(
            select(CampaignOrder).where(
                CampaignOrder.campaign_id == c.id, CampaignOrder.order_id == req.order_id
            )
        )
        if existing.person_id != person:
            raise CampaignError(
                409,
                "order_conflict",
                f"order {req.order_id} was reported for another participant",
                field="order_id",
            )
        return {**_order_view(existing), "duplicate": True, "grants": []}
    order_pk = row[0]
    ref = session.scalar(_stmt(session, "referral_of_friend"), {"b_cid": c.id, "b_pid": person})
    status, reason, grants = "unattributed", "", []
    if ref is not None:
        rules = rules_of(session, c.id, ref.version)
        status, reason = _judge(rules, ref, req, ts)
        if status == "qualifying":
            ctx = RiskContext(
                stage="conversion",
                campaign_id=c.id,
                version=ref.version,
                rules=rules,
                inviter=ref.inviter_person_id,
                friend=person,
                device_id=req.device_id,
                ip=req.ip,
                user_agent=req.user_agent,
                phone=req.id if req.id_type == "phone" else req.other_ids.get("phone"),
                payment_account=req.payment_account,
                ts=now,
                referral_id=ref.id,
            )
            decision, score, signals = _assess(session, ctx)
            if decision == "block":
                status, reason = "blocked", ", ".join(s.code for s in signals)
            else:
                if decision == "hold" and ref.state == "accepted":
                    session.execute(
                        update(Referral)
                        .where(Referral.id == ref.id)
                        .values(state="held", risk_score=Referral.risk_score + score)
                    )
                    ref.state = "held"
                ok, grants = _qualify(
                    session,
                    ref,
                    rules,
                    source_ref=_order_ref(c.id, req.order_id),
                    order_id=req.order_id,
                    now=now,
                )
                status = "qualified" if ok else "not_qualifying"
                reason = ", ".join(g["state"] for g in grants if g["state"] != "granted")
                if not ok and not grants:
                    reason = "the referral qualified already"
    session.execute(
        _stmt(session, "order_outcome"),
        {"b_id": order_pk, "b_status": status, "b_reason": reason, "b_ref": ref.id if ref else None},
    )
    _audit(
        session,
        "order.report",
        c.id,
        {"order_id": req.order_id, "status": status},
        entity="order",
        entity_id=order_pk,
    )
    view = {
        "order_id": req.order_id,
        "campaign_id": c.id,
        "person_id": person,
        "referral_id": ref.id if ref else None,
        "event": req.event,
        "amount_fen": req.amount_fen,
        "status": status,
        "reason": reason,
        "ts": ts,
    }
    return {**view, "duplicate": False, "grants": grants}


def _judge(rules: CampaignRules, ref: Referral, req, ts: datetime) -> tuple[str, str]:
    if ref.state in ("blocked", "refunded", "duplicate"):
        return "not_qualifying", f"referral is {ref.state}"
    if rules.regions and req.region not in rules.regions:
        return "out_of_scope", f"region {req.region!r} is outside {', '.join(rules.regions)}"
    if rules.stores and req.store not in rules.stores:
        return "out_of_scope", f"store {req.store!r} is outside the campaign's stores"
    q = rules.qualifying_event
    if q.kind == "signup":
        return "not_qualifying", "qualified at signup"
    if q.kind == "custom":
        ok = req.event == q.event_name
    else:
        ok = req.event == "order" and (q.kind != "order_min_amount" or req.amount_fen >= q.min_amount_fen)
    if not ok:
        return "not_qualifying", f"not a qualifying {q.kind} event"
    if ts < ref.accepted_at - timedelta(minutes=5):
        return "not_qualifying", "the order is older than the invite"
    return "qualifying", ""


def _order_ref(campaign_id: str, order_id: str) -> str:
    return f"order:{campaign_id}:{order_id}"


def _order_view(o: CampaignOrder) -> dict:
    return {
        "order_id": o.order_id,
        "campaign_id": o.campaign_id,
        "person_id": o.person_id,
        "referral_id": o.referral_id,
        "event": o.event,
        "amount_fen": o.amount_fen,
        "status": o.status,
        "reason": o.reason,
        "ts": o.ts,
    }


def refund(
    session: Session, campaign_id: str, order_id: str, *, note: str = "", actor: str = "system"
) -> dict:
    """A refunded order: within the hold its rewards are revoked (clawback) and the counts given back."""
    now = utcnow()
    c = _campaign(session, campaign_id)
    o = session.scalar(
        select(CampaignOrder).where(CampaignOrder.campaign_id == c.id, CampaignOrder.order_id == order_id)
    )
    if o is None:
        raise CampaignError(
            404, "unknown_order", f"no order {order_id!r} was reported in campaign {c.id}", field="order_id"
        )
    was = o.status
    won = session.execute(
        update(CampaignOrder)
        .where(CampaignOrder.id == o.id, CampaignOrder.status != "refunded")
        .values(status="refunded", refunded_at=now)
    ).rowcount
    if not won:
        return {**_order_view(o), "revoked": [], "duplicate": True}
    revoked = []
    ref = session.get(Referral, o.referral_id) if o.referral_id else None
    if was == "qualified" and ref is not None and ref.qualifying_order == order_id:
        rules = rules_of(session, c.id, ref.version)
        within = ref.qualified_at is not None and now <= ref.qualified_at + timedelta(days=rules.hold_days)
        if within:
            # Lock order as in _qualify: referral → inviter counter → campaign row → ledger head.
            uncounted = session.execute(
                update(Referral)
                .where(Referral.id == ref.id, Referral.counted.is_(True))
                .values(counted=False)
            ).rowcount
            session.execute(update(Referral).where(Referral.id == ref.id).values(state="refunded"))
            if uncounted:
                _unbump(session, c.id, "inviter", str(ref.inviter_person_id))
            _campaign(session, c.id, lock=True)
            views = _rewards().revoke_for_source(
                session,
                _order_ref(c.id, order_id),
                idempotency_key=f"refund:{c.id}:{order_id}",
                actor=actor,
                note=note or "order refunded within the hold",
            )
            for v in views:
                on_reward_final(session, v)
            revoked = [v.id for v in views]
    _audit(
        session,
        "order.refund",
        c.id,
        {"order_id": order_id, "revoked": revoked},
        actor=actor,
        entity="order",
        entity_id=o.id,
    )
    session.refresh(o)
    return {**_order_view(o), "revoked": revoked, "duplicate": False}


# ---------------------------------------------------------------- share-for-coupon claims


def claim(session: Session, campaign_id: str, p: Participant, *, now: datetime | None = None) -> dict:
    """Share-for-coupon: a participant whose link was opened `shares_required` times claims the coupon."""
    now = now or utcnow()
    c = _campaign(session, campaign_id)
    rules = _live_rules(session, c, now)
    if rules.type != "share_coupon":
        raise CampaignError(
            409, "not_share_coupon", f"campaign {c.id} is a {rules.type} campaign", field="campaign_id"
        )
    pid = _find_person(session, p)
    clicks = session.scalar(
        select(func.coalesce(func.sum(Invite.clicks), 0)).where(
            Invite.campaign_id == c.id, Invite.inviter_person_id == pid
        )
    )
    if clicks < rules.shares_required:
        raise CampaignError(
            409,
            "not_shared",
            f"the link was opened {clicks} times, {rules.shares_required} needed",
            field="id",
        )
    g = _grant(
        session,
        c.id,
        pid,
        rules.inviter_reward,
        role="sharer",
        key=f"claim:{pid}",
        source_ref=f"claim:{c.id}:{pid}",
        hold_until=now,
        held=False,
        reason="share_coupon:claim",
    )
    if g.state == "budget_exhausted":
        raise CampaignError(
            409, "budget_exhausted", "the campaign's budget or stock is used up", field="campaign_id"
        )
    _audit(
        session,
        "coupon.claim",
        c.id,
        {"person_id": pid, "reward_id": g.reward_id},
        entity="person",
        entity_id=pid,
    )
    return asdict(g)


# ---------------------------------------------------------------- progress and leaderboard


def progress(session: Session, campaign_id: str, p: Participant) -> dict:
    c = _campaign(session, campaign_id)
    pid = _find_person(session, p)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    counts = dict(
        session.execute(
            select(Referral.state, func.count())
            .where(Referral.campaign_id == c.id, Referral.inviter_person_id == pid)
            .group_by(Referral.state)
        ).all()
    )
    qualified = session.scalar(
        select(func.count()).where(
            Referral.campaign_id == c.id, Referral.inviter_person_id == pid, Referral.counted.is_(True)
        )
    )
    invites = [
        _invite_view(i)
        for i in session.scalars(
            select(Invite).where(Invite.campaign_id == c.id, Invite.inviter_person_id == pid)
        )
    ]
    next_tier = next((t.threshold for t in rules.tiers if t.threshold > qualified), None)
    try:
        rewards = [_reward_dict(r) for r in _rewards().rewards_for(session, pid) if r.campaign_id == c.id]
    except ImportError:
        rewards = []
    return {
        "campaign_id": c.id,
        "person_id": pid,
        "invited": sum(counts.values()),
        "by_state": counts,
        "qualified": qualified,
        "cap": rules.per_inviter_cap,
        "next_tier": next_tier,
        "invites": invites,
        "rewards": rewards,
    }


def _reward_dict(r: Any) -> dict:
    return {
        k: getattr(r, k)
        for k in (
            "id",
            "campaign_id",
            "person_id",
            "reward_code",
            "value_fen",
            "state",
            "source_ref",
            "created_at",
        )
    }


def leaderboard(session: Session, campaign_id: str, limit: int = 20) -> list[dict]:
    """Rank by qualified (counted) invites; ties go to whoever reached the count first."""
    _campaign(session, campaign_id)
    rows = session.execute(
        select(CapCounter.key, CapCounter.used, CapCounter.updated_at)
        .where(CapCounter.campaign_id == campaign_id, CapCounter.scope == "inviter", CapCounter.used > 0)
        .order_by(CapCounter.used.desc(), CapCounter.updated_at, CapCounter.key)
        .limit(limit)
    ).all()
    names = {}
    if rows:
        for pid, nick in session.execute(
            select(Invite.inviter_person_id, Invite.nickname).where(
                Invite.campaign_id == campaign_id, Invite.inviter_person_id.in_([int(r[0]) for r in rows])
            )
        ):
            names[pid] = nick or names.get(pid, "")
    return [
        {
            "rank": i + 1,
            "person_id": int(k),
            "nickname": names.get(int(k), ""),
            "qualified": used,
            "reached_at": at,
        }
        for i, (k, used, at) in enumerate(rows)
    ]


def settle_leaderboard(session: Session, c: Campaign, rules: CampaignRules, now: datetime) -> list[dict]:
    lb = rules.leaderboard
    out = []
    for row in leaderboard(session, c.id, lb.top_n):
        reward = lb.rewards[min(row["rank"], len(lb.rewards)) - 1]
        g = _grant(
            session,
            c.id,
            row["person_id"],
            reward,
            role=f"rank{row['rank']}",
            key=f"rank:{row['person_id']}",
            source_ref=f"leaderboard:{c.id}",
            hold_until=now,
            held=False,
            reason=f"leaderboard:rank{row['rank']}",
        )
        out.append(asdict(g))
    _audit(session, "leaderboard.settle", c.id, {"winners": [g["person_id"] for g in out]})
    return out


def referral_tree(session: Session, campaign_id: str, limit: int | None = None) -> list[dict]:
    """The campaign's referrals in acceptance order (the first `limit` of them when given)."""
    _campaign(session, campaign_id)
    query = select(Referral).where(Referral.campaign_id == campaign_id).order_by(Referral.id)
    rows = session.scalars(query if limit is None else query.limit(limit))
    return [
        {
            "referral_id": r.id,
            "inviter_person_id": r.inviter_person_id,
            "friend_person_id": r.friend_person_id,
            "parent_referral_id": r.parent_referral_id,
            "generation": r.generation,
            "state": r.state,
            "version": r.version,
            "channel": r.channel,
            "qualified_at": r.qualified_at,
        }
        for r in rows
    ]


# ---------------------------------------------------------------- OneID merges


def _follow_merges(session: Session, final: dict[int, int]) -> None:
    """Person ids in campaign tables follow OneID merges (a merge follower, liebian/bootstrap.py)."""
    # Most merges (bulk identity imports) touch persons who never took part in a campaign: find
    # the few that did with a handful of set-based queries, then rewrite only those.
    involved = _campaign_participants(session, list(final))
    for merged, survivor in final.items():
        if merged not in involved:
            continue
        session.execute(
            update(Invite).where(Invite.inviter_person_id == merged).values(inviter_person_id=survivor)
        )
        session.execute(
            update(Referral).where(Referral.inviter_person_id == merged).values(inviter_person_id=survivor)
        )
        dup_campaigns = select(Referral.campaign_id).where(Referral.friend_person_id == survivor)
        session.execute(
            update(Referral)
            .where(Referral.friend_person_id == merged, Referral.campaign_id.in_(dup_campaigns))
            .values(state="duplicate", note="friend merged into a person already referred")
        )
        session.execute(
            update(Referral)
            .where(Referral.friend_person_id == merged, Referral.state != "duplicate")
            .values(friend_person_id=survivor)
        )
        # A merge can reveal that inviter and friend are one human: such referrals are blocked.
        session.execute(
            update(Referral)
            .where(Referral.friend_person_id == survivor, Referral.inviter_person_id == survivor)
            .values(state="blocked", note="self-referral found by a OneID merge")
        )
        session.execute(
            update(CampaignOrder).where(CampaignOrder.person_id == merged).values(person_id=survivor)
        )
        session.execute(
            update(Group).where(Group.initiator_person_id == merged).values(initiator_person_id=survivor)
        )
        for counter in session.scalars(
            select(CapCounter).where(CapCounter.scope == "inviter", CapCounter.key == str(merged))
        ).all():
            _bump(session, counter.campaign_id, "inviter", str(survivor), None, counter.used)
            session.delete(counter)
    session.flush()


def review_referral(session: Session, referral_id: int, approved: bool, *, actor: str, note: str = "") -> str:
    """Apply a fraud reviewer's decision to a held referral and return its state afterwards.

    Approved → accepted (rewards it earns from now on are not held); rejected → blocked and no
    longer counted towards the inviter's tiers. Referrals not held are left as they are.
    """
    target = "accepted" if approved else "blocked"
    values: dict = {"state": target, "note": note or f"fraud review: {target}"}
    if not approved:
        values["counted"] = False
    changed = session.execute(
        update(Referral).where(Referral.id == referral_id, Referral.state == "held").values(**values)
    ).rowcount
    ref = session.get(Referral, referral_id)
    if ref is None:
        raise CampaignError(404, "not_found", f"referral {referral_id} does not exist", "referral_id")
    session.refresh(ref)
    if changed:
        _audit(
            session,
            "referral_reviewed",
            ref.campaign_id,
            {"from": "held", "to": target, "note": note},
            actor=actor,
            entity="referral",
            entity_id=referral_id,
        )
    return ref.state


def _campaign_participants(session: Session, person_ids: list[int]) -> set[int]:
    columns = (
        Invite.inviter_person_id,
        Referral.inviter_person_id,
        Referral.friend_person_id,
        CampaignOrder.person_id,
        Group.initiator_person_id,
    )
    found: set[int] = set()
    for start in range(0, len(person_ids), 500):
        chunk = person_ids[start : start + 500]
        for column in columns:
            found.update(session.scalars(select(column).where(column.in_(chunk)).distinct()))
        keys = session.scalars(
            select(CapCounter.key).where(
                CapCounter.scope == "inviter", CapCounter.key.in_([str(p) for p in chunk])
            )
        )
        found.update(int(k) for k in keys)
    return found


def poster_png(session: Session, code: str) -> bytes:
    """The share poster of an invite: campaign title, the inviter's nickname, a QR code of the link."""
    from liebian.campaigns import poster

    inv = verify_code(session, code)
    c = _campaign(session, inv.campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return poster.render(rules.title, inv.nickname, invite_link(invite_code(inv)), rules.poster_template)


def poster_preview(session: Session, campaign_id: str) -> bytes:
    """The campaign's poster as its participants will get it, for the operator to check before
    launch: the current version's title and template, a placeholder nickname and a sample link."""
    from liebian.campaigns import poster

    c = _campaign(session, campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return poster.render(rules.title, "", invite_link("preview"), rules.poster_template)
