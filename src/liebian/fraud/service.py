"""Anti-fraud service: graph scan → review cases; review decisions → reward ledger; fraud rate; evaluation.

Cases
- One case per suspicious referral (`referral:<campaign>:<inviter>:<friend>`). A scan opens a case
  for every referral scoring at least the case threshold, updates the score of a case still open,
  and never touches a decided one. Referrals the campaign engine held inline get a case too
  (`sync_held_referrals`), so the queue holds everything waiting for a human.
- approve → the case's rewards leave the review hold (the ledger releases them when due);
  reject → its pending/approved rewards become `rejected`, issued ones are revoked (clawback).
- Every open, rescore and decision writes a `fraud_audit` row. A decision repeated with the same
  idempotency key returns the first outcome; the same decision again without a key is a no-op;
  the opposite decision on a decided case is refused (409) — a rejected reward cannot come back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import Select, func, select, update
from sqlalchemy.orm import Session

from liebian.campaigns import flows as campaigns
from liebian.campaigns.models import Campaign, Referral
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.fraud import graph, graph_spark, imported
from liebian.fraud.graph_inputs import conflict_links
from liebian.fraud.inline import is_virtual_phone
from liebian.fraud.models import FraudAudit, FraudCase
from liebian.fraud.reasons import REASONS, describe, explain
from liebian.identity.models import Identifier
from liebian.lazy import lazy_import
from liebian.privacy.crypto import decrypt
from liebian.rewards import service as ledger
from liebian.scalars import as_int

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")

CASE_THRESHOLD = 50.0
STATUSES = ("open", "approved", "rejected")
ACTIONS = {"approve": "approved", "reject": "rejected"}
_Query = TypeVar("_Query", bound=Select[Any])  # the case list and its count share their filters


class FraudError(DomainError):
    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        super().__init__(code, message, status, field=field)


# ------------------------------------------------------------------ scan → cases


def virtual_phone_persons(session: Session, prefixes: list[str] | None = None) -> np.ndarray:
    """Persons holding a virtual-operator phone. Phones are HMACs in the warehouse, so the prefix is
    read from the registry's ciphertext; the clear number lives only inside this loop."""
    found = []
    rows = session.execute(
        select(Identifier.person_id, Identifier.encrypted_value).where(
            Identifier.id_type == "phone", Identifier.encrypted_value.is_not(None)
        )
    )
    for person_id, token in rows:
        if token is None:  # excluded by the query already
            continue
        try:
            if is_virtual_phone(decrypt(token), prefixes):
                found.append(person_id)
        except Exception:  # a ciphertext under a rotated key cannot be judged; it is skipped
            continue
    return np.asarray(found, dtype=np.int64)


@dataclass
class ScanReport:
    scan: dict[str, Any]
    cases_opened: int
    cases_updated: int
    held_synced: int

    def as_dict(self) -> dict[str, Any]:
        return {**self.scan, "cases_opened": self.cases_opened, "cases_updated": self.cases_updated,
                "held_synced": self.held_synced}  # fmt: skip


def run_scan(
    session: Session,
    con: duckdb.DuckDBPyConnection,
    params: graph.GraphParams | None = None,
    case_threshold: float = CASE_THRESHOLD,
    actor: str = "system:fraud-scan",
    engine: str = "duckdb",
) -> ScanReport:
    """Graph scan over the warehouse, then open/refresh review cases for the risky referrals.
    `engine="spark"` extracts the graph features on Spark from the event store (graph_spark.py);
    the scoring, the tables written and the cases are the same."""
    scanner = graph_spark.scan if engine == "spark" else graph.scan
    result = scanner(
        con,
        params,
        virtual_phone_persons=virtual_phone_persons(session),
        identity_links=conflict_links(session),
    )
    risky = graph.referral_risk(con, min_score=case_threshold)
    opened, updated = upsert_cases(session, risky, source="graph", actor=actor)
    held = sync_held_referrals(session, actor=actor)
    return ScanReport(result.as_dict(), opened, updated, held)


def _case_key(campaign_id: str | None, inviter: int | None, person: int) -> str:
    return f"referral:{campaign_id or '-'}:{inviter if inviter is not None else '-'}:{person}"


def _audit(session: Session, case: FraudCase, action: str, actor: str, from_status: str | None, note: str = "",
           effects: dict[str, Any] | None = None, key: str | None = None) -> FraudAudit:  # fmt: skip
    row = FraudAudit(
        case_id=case.id, action=action, actor=actor, from_status=from_status, to_status=case.status,
        note=note, effects=json.dumps(effects or {}, ensure_ascii=False), idempotency_key=key, ts=utcnow(),
    )  # fmt: skip
    session.add(row)
    return row


def upsert_cases(session: Session, risky: pd.DataFrame, *, source: str, actor: str) -> tuple[int, int]:
    """Open a case per risky referral row; refresh open ones whose score changed. Returns (opened, updated)."""
    if risky.empty:
        return 0, 0
    keys = [
        _case_key(c, int(i), int(p))
        for c, i, p in zip(risky.campaign_id, risky.inviter_person_id, risky.invitee_person_id, strict=True)
    ]
    existing: dict[str, FraudCase] = {}
    for start in range(0, len(keys), 500):
        for found in session.scalars(
            select(FraudCase).where(FraudCase.case_key.in_(keys[start : start + 500]))
        ):
            existing[found.case_key] = found
    referral_ids = _referral_ids(session, risky)
    opened = updated = 0
    now = utcnow()
    for key, row in zip(keys, risky.to_dict("records"), strict=True):
        reasons = [str(x) for x in row["reasons"]]
        details = [str(x) for x in row["details"]]
        case = existing.get(key)
        if case is None:
            case = FraudCase(
                case_key=key, subject="referral", campaign_id=row["campaign_id"], channel=row["channel"],
                person_id=int(row["invitee_person_id"]), inviter_person_id=int(row["inviter_person_id"]),
                referral_id=referral_ids.get((row["campaign_id"], int(row["invitee_person_id"]))),
                source=source, score=float(row["score"]), reasons=json.dumps(reasons), details=json.dumps(details),
                pattern=row["pattern"] or "", status="open", created_at=now, updated_at=now,
            )  # fmt: skip
            session.add(case)
            session.flush()
            _audit(session, case, "open", actor, None, note=f"score {row['score']}: {', '.join(reasons)}")
            opened += 1
        elif case.status == "open" and (
            abs(case.score - float(row["score"])) > 0.05 or json.loads(case.reasons) != reasons
        ):
            old = case.score
            case.score, case.reasons, case.details = (
                float(row["score"]),
                json.dumps(reasons),
                json.dumps(details),
            )
            case.pattern, case.updated_at = row["pattern"] or "", now
            _audit(session, case, "rescore", actor, "open", note=f"score {old} → {row['score']}")
            updated += 1
    session.flush()
    return opened, updated


def _referral_ids(session: Session, risky: pd.DataFrame) -> dict[tuple[str, int], int]:
    """The campaign engine's referral ids for (campaign, friend) pairs, where the engine knows them."""
    out: dict[tuple[str, int], int] = {}
    friends = sorted({int(p) for p in risky.invitee_person_id})
    for start in range(0, len(friends), 500):
        rows = session.execute(
            select(Referral.id, Referral.campaign_id, Referral.friend_person_id).where(
                Referral.friend_person_id.in_(friends[start : start + 500])
            )
        )
        for rid, cid, friend in rows:
            out[(cid, friend)] = rid
    return out


def sync_held_referrals(session: Session, actor: str = "system:fraud-scan") -> int:
    """Open a case for every referral the campaign engine held inline that has none yet."""
    held = (
        session.execute(select(Referral).where(Referral.state == "held").order_by(Referral.id))
        .scalars()
        .all()
    )
    opened = 0
    for ref in held:
        key = _case_key(ref.campaign_id, ref.inviter_person_id, ref.friend_person_id)
        if session.scalar(select(FraudCase.id).where(FraudCase.case_key == key)) is not None:
            continue
        try:
            signals = json.loads(ref.risk_signals or "[]")
        except json.JSONDecodeError:
            signals = []
        now = utcnow()
        case = FraudCase(
            case_key=key, subject="referral", campaign_id=ref.campaign_id, channel=ref.channel,
            person_id=ref.friend_person_id, inviter_person_id=ref.inviter_person_id, referral_id=ref.id,
            source="inline", score=float(min(100, ref.risk_score or 0)),
            reasons=json.dumps([s.get("code", "") for s in signals]),
            details=json.dumps([s.get("detail", "") for s in signals], ensure_ascii=False),
            pattern=next((REASONS[s["code"]].pattern for s in signals if s.get("code") in REASONS), ""),
            status="open", created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(case)
        session.flush()
        _audit(session, case, "open", actor, None, note=f"held inline, score {ref.risk_score}")
        opened += 1
    return opened


def flag_referral(
    session: Session, ref: Referral, code: str, detail: str, *, actor: str, source: str = "merge"
) -> FraudCase | None:
    """Flag a referral found risky outside a scan (e.g. a OneID merge): open its case, or put the
    reason first on its open case, and hold every reward it earned that is not final. A decided case
    is never reopened (returns None). Nothing is dropped: a reviewer's decision moves the rewards."""
    case = session.scalar(
        select(FraudCase).where(FraudCase.referral_id == ref.id, FraudCase.status == "open")
    )
    now = utcnow()
    if case is None:
        key = _case_key(ref.campaign_id, ref.inviter_person_id, ref.friend_person_id)
        if session.scalar(select(FraudCase.id).where(FraudCase.case_key == key)) is not None:
            return None
        case = FraudCase(
            case_key=key, subject="referral", campaign_id=ref.campaign_id, channel=ref.channel,
            person_id=ref.friend_person_id, inviter_person_id=ref.inviter_person_id, referral_id=ref.id,
            source=source, score=float(REASONS[code].weight), reasons=json.dumps([code]),
            details=json.dumps([detail], ensure_ascii=False), pattern=REASONS[code].pattern, status="open",
            created_at=now, updated_at=now,
        )  # fmt: skip
        session.add(case)
        session.flush()
        _audit(session, case, "open", actor, None, note=detail)
    elif code not in json.loads(case.reasons or "[]"):
        old = case.score
        case.reasons = json.dumps([code, *json.loads(case.reasons or "[]")])
        case.details = json.dumps([detail, *json.loads(case.details or "[]")], ensure_ascii=False)
        case.score = max(old, float(REASONS[code].weight))
        case.pattern, case.updated_at = REASONS[code].pattern, now
        _audit(session, case, "rescore", actor, "open", note=f"score {old} → {case.score}: {detail}")
    for reward_id in _case_rewards(session, case):
        if ledger.get_reward(session, reward_id).state not in ledger.FINAL:
            ledger.set_review_hold(session, reward_id, True, actor=actor, note=detail)
    return case


# ------------------------------------------------------------------ queue


def case_view(case: FraudCase, lang: str = "zh-CN") -> dict[str, Any]:
    reasons = json.loads(case.reasons or "[]")
    details = json.loads(case.details or "[]")
    return {
        "id": case.id,
        "case_key": case.case_key,
        "subject": case.subject,
        "campaign_id": case.campaign_id,
        "channel": case.channel,
        "person_id": case.person_id,
        "inviter_person_id": case.inviter_person_id,
        "referral_id": case.referral_id,
        "source": case.source,
        "score": case.score,
        "pattern": case.pattern,
        "reasons": [
            {
                "code": c,
                "text": describe(c, lang),
                "detail": explain(c, details[i], lang) if i < len(details) else "",
            }
            for i, c in enumerate(reasons)
        ],
        "status": case.status,
        "reviewer": case.reviewer,
        "note": case.note,
        "decided_at": case.decided_at,
        "created_at": case.created_at,
        "updated_at": case.updated_at,
    }


def list_cases(
    session: Session,
    *,
    status: str | None = "open",
    campaign_id: str | None = None,
    pattern: str | None = None,
    min_score: float = 0.0,
    limit: int = 100,
    offset: int = 0,
    lang: str = "zh-CN",
) -> list[dict[str, Any]]:
    q = (
        _cases_query(select(FraudCase), status, campaign_id, pattern, min_score)
        .order_by(FraudCase.score.desc(), FraudCase.id)
        .limit(max(1, min(limit, 1000)))
        .offset(max(0, offset))
    )
    return [case_view(c, lang) for c in session.scalars(q)]


def _cases_query(
    q: _Query, status: str | None, campaign_id: str | None, pattern: str | None, min_score: float
) -> _Query:
    if status is not None and status not in STATUSES:
        raise FraudError(422, "invalid", f"status: {status!r} is not one of {', '.join(STATUSES)}", "status")
    q = q.where(FraudCase.score >= min_score)
    if status:
        q = q.where(FraudCase.status == status)
    if campaign_id:
        q = q.where(FraudCase.campaign_id == campaign_id)
    if pattern:
        q = q.where(FraudCase.pattern == pattern)
    return q


def count_cases(
    session: Session,
    *,
    status: str | None = "open",
    campaign_id: str | None = None,
    pattern: str | None = None,
    min_score: float = 0.0,
) -> int:
    """How many cases `list_cases` pages through with the same filters."""
    q = _cases_query(select(func.count()).select_from(FraudCase), status, campaign_id, pattern, min_score)
    return int(session.scalar(q) or 0)


def queue_facets(session: Session) -> dict[str, Any]:
    """What the queue can be filtered by: cases per status, and the campaigns and patterns present."""
    statuses = dict.fromkeys(STATUSES, 0)
    campaigns_seen: set[str] = set()
    patterns: set[str] = set()
    rows = session.execute(
        select(FraudCase.status, FraudCase.campaign_id, FraudCase.pattern, func.count()).group_by(
            FraudCase.status, FraudCase.campaign_id, FraudCase.pattern
        )
    )
    for status, campaign_id, pattern, n in rows:
        statuses[status] = statuses.get(status, 0) + int(n)
        if campaign_id:
            campaigns_seen.add(campaign_id)
        if pattern:
            patterns.add(pattern)
    return {"statuses": statuses, "campaigns": sorted(campaigns_seen), "patterns": sorted(patterns)}


def _load(session: Session, case_id: int) -> FraudCase:
    case = session.get(FraudCase, case_id)
    if case is None:
        raise FraudError(404, "not_found", f"case_id: no fraud case {case_id}", "case_id")
    return case


def load_case(session: Session, case_id: int) -> FraudCase:
    """One case row (404 FraudError when there is none)."""
    return _load(session, case_id)


def get_case(session: Session, case_id: int, lang: str = "zh-CN") -> dict[str, Any]:
    case = _load(session, case_id)
    audit = session.scalars(select(FraudAudit).where(FraudAudit.case_id == case_id).order_by(FraudAudit.id))
    return {
        **case_view(case, lang),
        "audit": [
            {
                "action": a.action,
                "actor": a.actor,
                "from_status": a.from_status,
                "to_status": a.to_status,
                "note": a.note,
                "effects": json.loads(a.effects or "{}"),
                "ts": a.ts,
            }  # fmt: skip
            for a in audit
        ],
    }


# ------------------------------------------------------------------ decisions


def _case_rewards(session: Session, case: FraudCase) -> list[int]:
    """Reward ids earned by the case's referral: by the referral itself or by its qualifying order."""
    refs = []
    if case.referral_id is not None:
        refs.append(f"referral:{case.campaign_id}:{case.referral_id}")
        ref = session.get(Referral, case.referral_id)
        if ref is not None and ref.qualifying_order:
            refs.append(f"order:{case.campaign_id}:{ref.qualifying_order}")
    ids: set[int] = set()
    for source_ref in refs:
        for view in ledger.list_rewards(session, source_ref=source_ref, limit=1000):
            ids.add(view.id)
    return sorted(ids)


def decide(
    session: Session,
    case_id: int,
    action: str,
    *,
    actor: str,
    note: str = "",
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Approve or reject one case; flows into the ledger. Idempotent (see the module docstring)."""
    if action not in ACTIONS:
        raise FraudError(422, "invalid", f"action: {action!r} is not approve or reject", "action")
    if not actor or not actor.strip():
        raise FraudError(422, "invalid", "actor: must name the reviewer", "actor")
    if idempotency_key is not None and not (0 < len(idempotency_key) <= 200):
        raise FraudError(422, "invalid", "idempotency_key: 1–200 characters", "idempotency_key")
    if idempotency_key:
        prior = session.scalar(select(FraudAudit).where(FraudAudit.idempotency_key == idempotency_key))
        if prior is not None:
            if prior.case_id != case_id or prior.to_status != ACTIONS[action]:
                raise FraudError(
                    409, "idempotency_conflict",
                    f"idempotency_key: already used for case {prior.case_id} → {prior.to_status}", "idempotency_key",
                )  # fmt: skip
            return {
                **get_case(session, case_id),
                "changed": False,
                "effects": json.loads(prior.effects or "{}"),
            }
    # Lock the case row: two reviewers deciding at once serialise here (SQLite: the UPDATE takes
    # the database's write lock; PostgreSQL: the row lock).
    session.execute(update(FraudCase).where(FraudCase.id == case_id).values(updated_at=FraudCase.updated_at))
    case = _load(session, case_id)
    session.refresh(case)
    target = ACTIONS[action]
    if case.status == target:
        return {**get_case(session, case_id), "changed": False, "effects": {}}
    if case.status != "open":
        raise FraudError(409, "already_decided", f"case {case_id} is already {case.status}", "case_id")
    effects = _apply_to_ledger(session, case, target, actor=actor, note=note)
    if case.referral_id is not None:
        effects["referral_state"] = campaigns.review_referral(
            session, case.referral_id, target == "approved", actor=f"fraud-review:{actor}", note=note
        )
    case.status, case.reviewer, case.note = target, actor, note
    case.decided_at = case.updated_at = utcnow()
    _audit(session, case, action, actor, "open", note=note, effects=effects, key=idempotency_key)
    session.flush()
    return {**get_case(session, case_id), "changed": True, "effects": effects}


def _apply_to_ledger(
    session: Session, case: FraudCase, target: str, *, actor: str, note: str
) -> dict[str, Any]:
    effects: dict[str, list[object]] = {"released": [], "rejected": [], "revoked": [], "untouched": []}
    reviewer = f"fraud-review:{actor}"
    for reward_id in _case_rewards(session, case):
        view = ledger.get_reward(session, reward_id)
        if target == "approved":
            if view.state in ledger.FINAL:
                effects["untouched"].append({"reward_id": reward_id, "state": view.state})
            elif view.held_for_review:
                ledger.set_review_hold(
                    session, reward_id, False, actor=reviewer, note=note or "fraud review approved"
                )
                effects["released"].append(reward_id)
            continue
        key = f"fraud-case:{case.id}:{reward_id}"
        if view.state in (ledger.PENDING, ledger.APPROVED):
            ledger.transition(session, reward_id, ledger.REJECTED, idempotency_key=key, actor=reviewer,
                              note=note or "fraud review rejected")  # fmt: skip
            effects["rejected"].append(reward_id)
        elif view.state == ledger.ISSUED:
            ledger.transition(session, reward_id, ledger.REVOKED, idempotency_key=key, actor=reviewer,
                              note=note or "fraud review rejected: clawback")  # fmt: skip
            effects["revoked"].append(reward_id)
        else:
            effects["untouched"].append({"reward_id": reward_id, "state": view.state})
    return effects


def bulk_decide(
    session: Session, case_ids: Iterable[int], action: str, *, actor: str, note: str = "",
    idempotency_key: str | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Decide many cases; each gets its own key (`<key>:<case id>`) and its own outcome row."""
    out = []
    for case_id in dict.fromkeys(int(c) for c in case_ids):
        key = f"{idempotency_key}:{case_id}" if idempotency_key else None
        try:
            with session.begin_nested():
                result = decide(session, case_id, action, actor=actor, note=note, idempotency_key=key)
            out.append(
                {"case_id": case_id, "status": result["status"], "changed": result["changed"], "error": None}
            )
        except FraudError as exc:
            out.append({"case_id": case_id, "status": None, "changed": False, "error": exc.message})
        except ledger.LedgerError as exc:  # one reward the ledger refuses must not sink the batch
            out.append({"case_id": case_id, "status": None, "changed": False, "error": str(exc)})
    return out


# ------------------------------------------------------------------ metrics


def flagged_persons() -> frozenset[int]:
    """Persons anti-fraud flags: the friend and the inviter of every case not approved (open or
    rejected). Analytics leaves them out of the KOC ranking (`ports.Wiring.flagged_persons`)."""
    with session_scope() as session:
        rows = session.execute(
            select(FraudCase.person_id, FraudCase.inviter_person_id).where(FraudCase.status != "approved")
        ).all()
    return frozenset(int(p) for row in rows for p in row if p is not None)


def fraud_rate(session: Session, by: str = "campaign") -> list[dict[str, Any]]:
    """Rejected referrals / all referrals, per campaign or per campaign and channel (plan: 0.5%),
    with each campaign's title; imported campaigns too (fraud/imported.py: their referral edges
    whose invitee is flagged)."""
    if by not in ("campaign", "channel"):
        raise FraudError(422, "invalid", f"by: {by!r} is not campaign or channel", "by")
    keys = [Referral.campaign_id] + ([Referral.channel] if by == "channel" else [])
    totals = session.execute(select(*keys, func.count()).group_by(*keys)).all()
    case_keys = [FraudCase.campaign_id] + ([FraudCase.channel] if by == "channel" else [])
    rejected = {
        tuple(r[:-1]): as_int(r[-1])
        for r in session.execute(
            select(*case_keys, func.count())
            .where(FraudCase.status == "rejected", FraudCase.subject == "referral")
            .group_by(*case_keys)
        ).all()
    }
    titles: dict[str, str] = {
        cid: title for cid, title in session.execute(select(Campaign.id, Campaign.title))
    }
    out = []
    for row in totals:
        group, total = tuple(row[:-1]), int(row[-1])
        n_rej = rejected.get(group, 0)
        item: dict[str, Any] = {"campaign_id": group[0]}
        if by == "channel":
            item["channel"] = group[1]
        item.update(
            {
                "title": titles.get(group[0], group[0]),
                "referrals": int(total),
                "rejected": n_rej,
                "fraud_rate": round(n_rej / total, 5) if total else 0.0,
                "source": "engine",
            }
        )
        out.append(item)
    engine_ids = set(titles) | {str(row[0]) for row in totals}
    out += imported.imported_rates(by, engine_ids, flagged_persons())
    return sorted(out, key=lambda r: (r["campaign_id"], r.get("channel", "")))
