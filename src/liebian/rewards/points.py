"""The points ledger (积分): earn, spend, expire, revoke and adjust, per person, with the reward
ledger's guarantees.

- Append-only and hash-chained (`points_entries`): entry.hash = HMAC-SHA256 over every other field
  with the points chain's key (`chain.derive_key`, from the data directory's HMAC key, not stored in
  the database). `verify` replays the chain and checks the balance projection against it.
- Serialised: every write first locks the one `points_head` row (`chain.lock_head`, as the reward
  ledger does with `ledger_head`), so concurrent spends of one balance never overdraw it.
- Idempotent: the same idempotency key returns the first result and writes nothing; the same key
  with other values is `idempotency_conflict` (409).
- Never negative: a spend (or a negative adjustment) beyond the balance is `insufficient_points`
  (409), and the `points_lots` CHECK constraint is the second line of defence.
- Expiry, FIFO: each earn is a lot that lapses `points_expire_days` after it was earned; a debit
  takes from the lots that expire first; the `points-expire` job writes an `expire` entry for what
  is left of each lapsed lot. An expired lot counts for nothing even before the job has run.
- OneID: points stay on the person id they were earned by (the chain is never rewritten); balances,
  spends and history gather the ids merged into a person.

Campaigns award points through the wiring (`ports.Conversion` → `follow_conversion`): a referred
purchase earns `per_yuan` points per yuan, times the rule's multiplier (double points) when the
order falls within the campaign window; a refund of the order revokes them.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, RowMapping, bindparam, func, select
from sqlalchemy.orm import Session

from liebian import ports
from liebian.config import get_settings
from liebian.db.base import table_of, utcnow
from liebian.db.session import rowcount
from liebian.errors import DomainError
from liebian.rewards.chain import (
    Head,
    VerifyResult,
    derive_key,
    key_problem,
    lock_head,
    seal,
    walk_chain,
)
from liebian.rewards.models import PointsEntry, PointsHead, PointsLot
from liebian.rewards.service import person_ids
from liebian.schemas import to_utc

EARN, SPEND, EXPIRE, REVOKE, ADJUST = "earn", "spend", "expire", "revoke", "adjust"
KINDS = (EARN, SPEND, EXPIRE, REVOKE, ADJUST)
CHAIN_LABEL = "liebian/points-chain/v1"
MAX_POINTS = 10**12
# Every field of an entry but its hash: what the hash covers.
HASHED = (
    "seq",
    "person_id",
    "kind",
    "delta",
    "balance_after",
    "reason",
    "campaign_id",
    "source_ref",
    "expires_at",
    "lots",
    "actor",
    "ts",
    "idempotency_key",
    "prev_hash",
)


class PointsError(DomainError):
    """A refused points operation (409 unless said otherwise)."""

    default_status = 409


@dataclass(frozen=True)
class PointsResult:
    """One entry of the points ledger, as the caller sees it."""

    seq: int
    person_id: int
    kind: str
    delta: int
    balance_after: int
    reason: str
    campaign_id: str
    source_ref: str
    expires_at: datetime | None
    actor: str
    ts: datetime
    idempotency_key: str
    duplicate: bool = False  # an idempotent repeat: the first call's result, nothing written

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


PointsVerify = VerifyResult  # the same report shape as the reward ledger's verify


# Statements built once: constructing SQLAlchemy expressions costs more than running them here.
_P, _PH, _L = table_of(PointsEntry), table_of(PointsHead), table_of(PointsLot)
_HEAD_SET = _PH.update().where(_PH.c.id == 1).values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
_BY_KEY = select(_P).where(_P.c.idempotency_key == bindparam("b_key"))
_TAKE = (
    _L.update()
    .where(_L.c.earn_seq == bindparam("b_seq"), _L.c.remaining >= bindparam("b_take"))
    .values(remaining=_L.c.remaining - bindparam("b_take"))
)


def chain_key() -> bytes:
    return derive_key(CHAIN_LABEL)


def entry_hash(entry: Mapping[str, Any] | RowMapping, key: bytes | None = None) -> str:
    return seal({name: entry[name] for name in HASHED}, key or chain_key())


def _result(entry: Mapping[str, Any] | RowMapping, duplicate: bool = False) -> PointsResult:
    return PointsResult(
        seq=entry["seq"],
        person_id=entry["person_id"],
        kind=entry["kind"],
        delta=entry["delta"],
        balance_after=entry["balance_after"],
        reason=entry["reason"],
        campaign_id=entry["campaign_id"],
        source_ref=entry["source_ref"],
        expires_at=entry["expires_at"],
        actor=entry["actor"],
        ts=entry["ts"],
        idempotency_key=entry["idempotency_key"],
        duplicate=duplicate,
    )


# --- checks ------------------------------------------------------------------------------------


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _check(
    *,
    person_id: object,
    points: object,
    idempotency_key: object,
    actor: object,
    reason: object = "",
    campaign_id: object = "",
    source_ref: object = "",
    signed: bool = False,
) -> None:
    """Every bad field of a write, named in one PointsError (422)."""
    problems = []
    if not _is_int(person_id):
        problems.append("person_id: must be an integer")
    amount = points if isinstance(points, int) and not isinstance(points, bool) else None
    if amount is None or not 0 < abs(amount) <= MAX_POINTS or (amount < 0 and not signed):
        kind = "a non-zero integer" if signed else "a positive integer"
        problems.append(f"points: must be {kind} of at most {MAX_POINTS}")
    problem = key_problem(idempotency_key)
    if problem:
        problems.append(problem)
    if not isinstance(actor, str) or not actor.strip():
        problems.append("actor: must name who makes the change")
    if not isinstance(reason, str) or len(reason) > 2000:
        problems.append("reason: must be text of at most 2000 characters")
    if not isinstance(campaign_id, str) or len(campaign_id) > 64:
        problems.append("campaign_id: must be a string of at most 64 characters")
    if not isinstance(source_ref, str) or len(source_ref) > 128:
        problems.append("source_ref: must be a string of at most 128 characters")
    if problems:
        raise PointsError("invalid", "; ".join(problems), 422)


def _repeat(session: Session, key: str, expected: Mapping[str, Any]) -> PointsResult | None:
    """The first result of an idempotency key used before (with the head lock held), or None.
    The same key with other values is refused."""
    row = session.execute(_BY_KEY, {"b_key": key}).mappings().first()
    if row is None:
        return None
    differs = sorted(name for name, value in expected.items() if row[name] != value)
    if differs:
        raise PointsError(
            "idempotency_conflict",
            f"idempotency_key {key!r} was used for points entry {row['seq']} with other values "
            f"({', '.join(differs)})",
        )
    return _result(row, duplicate=True)


# --- appends ------------------------------------------------------------------------------------


def _lock(session: Session) -> Head:
    return lock_head(session, _PH, "points_head")


def _append(session: Session, head: Head, **fields: Any) -> dict[str, Any]:
    """Append one entry after the head (the caller holds the head lock)."""
    entry: dict[str, Any] = {
        "seq": head.seq + 1,
        "reason": "",
        "campaign_id": "",
        "source_ref": "",
        "expires_at": None,
        "lots": "[]",
        **fields,
        "prev_hash": head.hash,
    }
    entry["actor"] = str(entry["actor"])[:128]
    entry["hash"] = entry_hash(entry)
    session.execute(_P.insert(), entry)
    session.execute(_HEAD_SET, {"b_seq": entry["seq"], "b_hash": entry["hash"]})
    head.seq, head.hash = entry["seq"], entry["hash"]
    return entry


def _balance(session: Session, ids: Sequence[int], now: datetime) -> int:
    total = session.execute(
        select(func.coalesce(func.sum(_L.c.remaining), 0)).where(
            _L.c.person_id.in_(ids), _L.c.expires_at > now, _L.c.remaining > 0
        )
    ).scalar_one()
    return int(total)


def _take(
    session: Session, ids: Sequence[int], points: int, now: datetime, first_source: str | None = None
) -> list[list[int]]:
    """Take `points` from the unexpired lots of these persons, those that expire first first (the
    lots of `first_source` before any other, for a revocation). The caller checked the balance."""
    order: list[ColumnElement[Any]] = [_L.c.expires_at, _L.c.earn_seq]
    if first_source is not None:
        order.insert(0, _L.c.source_ref != first_source)
    lots = session.execute(
        select(_L.c.earn_seq, _L.c.remaining)
        .where(_L.c.person_id.in_(ids), _L.c.expires_at > now, _L.c.remaining > 0)
        .order_by(*order)
    ).all()
    taken: list[list[int]] = []
    left = points
    for seq, remaining in lots:
        if left <= 0:
            break
        take = min(int(remaining), left)
        if rowcount(session.execute(_TAKE, {"b_seq": seq, "b_take": take})) != 1:  # pragma: no cover
            raise PointsError("concurrent_change", f"points lot {seq} changed while being spent")
        taken.append([int(seq), take])
        left -= take
    if left:  # pragma: no cover - the balance was checked under the head lock
        raise PointsError("insufficient_points", f"{left} points could not be taken")
    return taken


def _credit(
    session: Session,
    kind: str,
    *,
    person_id: int,
    points: int,
    reason: str,
    campaign_id: str,
    source_ref: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
) -> PointsResult:
    """Earn (or adjust up): a new lot that expires after the configured period."""
    head = _lock(session)
    expected = {"kind": kind, "person_id": person_id, "delta": points, "source_ref": source_ref}
    repeat = _repeat(session, idempotency_key, {**expected, "campaign_id": campaign_id})
    if repeat is not None:
        return repeat
    expires_at = now + timedelta(days=get_settings().points_expire_days)
    balance = _balance(session, person_ids(session, person_id), now) + points
    entry = _append(
        session,
        head,
        **expected,
        balance_after=balance,
        reason=reason,
        campaign_id=campaign_id,
        expires_at=expires_at,
        actor=actor,
        ts=now,
        idempotency_key=idempotency_key,
    )
    session.execute(
        _L.insert(),
        {
            "earn_seq": entry["seq"],
            "person_id": person_id,
            "amount": points,
            "remaining": points,
            "expires_at": expires_at,
            "source_ref": source_ref,
            "campaign_id": campaign_id,
        },
    )
    return _result(entry)


def _debit(
    session: Session,
    kind: str,
    *,
    person_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    now: datetime,
) -> PointsResult:
    """Spend (or adjust down): refused beyond the balance; takes from the lots FIFO by expiry."""
    head = _lock(session)
    expected = {"kind": kind, "person_id": person_id, "delta": -points}
    repeat = _repeat(session, idempotency_key, expected)
    if repeat is not None:
        return repeat
    ids = person_ids(session, person_id)
    balance = _balance(session, ids, now)
    if points > balance:
        raise PointsError(
            "insufficient_points",
            f"person {person_id} has {balance} points; {points} cannot be {kind}ed",
            field="points",
            params={"balance": balance, "points": points},
        )
    lots = _take(session, ids, points, now)
    entry = _append(
        session,
        head,
        **expected,
        balance_after=balance - points,
        reason=reason,
        lots=json.dumps(lots, separators=(",", ":")),
        actor=actor,
        ts=now,
        idempotency_key=idempotency_key,
    )
    return _result(entry)


# --- operations ----------------------------------------------------------------------------------


def earn(
    session: Session,
    *,
    person_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    campaign_id: str = "",
    source_ref: str = "",
    now: datetime | None = None,
) -> PointsResult:
    """Credit points; they expire `points_expire_days` later. Idempotent by key."""
    _check(person_id=person_id, points=points, idempotency_key=idempotency_key, actor=actor, reason=reason,
           campaign_id=campaign_id, source_ref=source_ref)  # fmt: skip
    return _credit(session, EARN, person_id=person_id, points=points, reason=reason, campaign_id=campaign_id,
                   source_ref=source_ref, idempotency_key=idempotency_key, actor=actor, now=now or utcnow())  # fmt: skip


def spend(
    session: Session,
    *,
    person_id: int,
    points: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    now: datetime | None = None,
) -> PointsResult:
    """Debit points (FIFO by expiry); 409 `insufficient_points` beyond the balance. Idempotent by key."""
    _check(person_id=person_id, points=points, idempotency_key=idempotency_key, actor=actor, reason=reason)
    return _debit(session, SPEND, person_id=person_id, points=points, reason=reason,
                  idempotency_key=idempotency_key, actor=actor, now=now or utcnow())  # fmt: skip


def adjust(
    session: Session,
    *,
    person_id: int,
    delta: int,
    reason: str,
    idempotency_key: str,
    actor: str,
    now: datetime | None = None,
) -> PointsResult:
    """An operator's correction: up (a new lot, which expires like earned points) or down (as a spend)."""
    _check(person_id=person_id, points=delta, idempotency_key=idempotency_key, actor=actor, reason=reason,
           signed=True)  # fmt: skip
    if not reason.strip():
        raise PointsError("invalid", "reason: an adjustment must say why", 422)
    now = now or utcnow()
    if delta > 0:
        return _credit(session, ADJUST, person_id=person_id, points=delta, reason=reason, campaign_id="",
                       source_ref="", idempotency_key=idempotency_key, actor=actor, now=now)  # fmt: skip
    return _debit(session, ADJUST, person_id=person_id, points=-delta, reason=reason,
                  idempotency_key=idempotency_key, actor=actor, now=now)  # fmt: skip


def revoke_source(
    session: Session, source_ref: str, *, idempotency_key: str, actor: str, reason: str,
    now: datetime | None = None,
) -> list[PointsResult]:  # fmt: skip
    """Take back the points earned from an order (a refund): per earning person, what they earned
    from it, from that order's lot first, then FIFO — never below zero (points already spent are
    named in the entry's reason). Once per source and person; a repeated call returns the same."""
    problem = key_problem(idempotency_key) or ("" if source_ref else "source_ref: required")
    if problem:
        raise PointsError("invalid", problem, 422)
    now = now or utcnow()
    head = _lock(session)
    earned = session.execute(
        select(_L.c.person_id, func.sum(_L.c.amount))
        .where(_L.c.source_ref == source_ref)
        .group_by(_L.c.person_id)
        .order_by(_L.c.person_id)
    ).all()
    out = []
    for person_id, amount in earned:
        key = f"{idempotency_key}:{person_id}"
        expected = {"kind": REVOKE, "person_id": person_id, "source_ref": source_ref}
        repeat = _repeat(session, key, expected)
        if repeat is not None:
            out.append(repeat)
            continue
        done = session.execute(
            select(_P.c.seq).where(
                _P.c.kind == REVOKE, _P.c.source_ref == source_ref, _P.c.person_id == person_id
            )
        ).first()
        if done is not None:
            continue  # revoked before under another key
        ids = person_ids(session, person_id)
        balance = _balance(session, ids, now)
        take = min(int(amount), balance)
        lots = _take(session, ids, take, now, first_source=source_ref) if take else []
        short = int(amount) - take
        note = reason + (f" ({short} of {amount} points already spent or expired)" if short else "")
        entry = _append(session, head, **expected, delta=-take, balance_after=balance - take, reason=note,
                        lots=json.dumps(lots, separators=(",", ":")), actor=actor, ts=now,
                        idempotency_key=key)  # fmt: skip
        out.append(_result(entry))
    return out


def expire_due(session: Session, now: datetime) -> int:
    """Write an `expire` entry for what is left of every lot whose time is up; the number of lots."""
    head = _lock(session)
    due = session.execute(
        select(_L.c.earn_seq, _L.c.person_id, _L.c.remaining)
        .where(_L.c.remaining > 0, _L.c.expires_at <= now)
        .order_by(_L.c.expires_at, _L.c.earn_seq)
    ).all()
    for seq, person_id, remaining in due:
        session.execute(_TAKE, {"b_seq": seq, "b_take": remaining})
        _append(
            session,
            head,
            person_id=person_id,
            kind=EXPIRE,
            delta=-int(remaining),
            balance_after=_balance(session, person_ids(session, person_id), now),
            reason=f"earned points of entry {seq} expired",
            lots=json.dumps([[int(seq), int(remaining)]], separators=(",", ":")),
            actor="system:expire",
            ts=now,
            idempotency_key=f"expire:{seq}",
        )
    return len(due)


# --- reads ---------------------------------------------------------------------------------------


def balance(session: Session, person_id: int, now: datetime | None = None) -> dict[str, Any]:
    """A person's points (their merged ids included) and when which of them expire, soonest first."""
    now = now or utcnow()
    ids = person_ids(session, person_id)
    lots = session.execute(
        select(_L.c.expires_at, func.sum(_L.c.remaining))
        .where(_L.c.person_id.in_(ids), _L.c.expires_at > now, _L.c.remaining > 0)
        .group_by(_L.c.expires_at)
        .order_by(_L.c.expires_at)
    ).all()
    return {
        "person_id": person_id,
        "balance": sum(int(points) for _, points in lots),
        "expiring": [{"expires_at": at, "points": int(points)} for at, points in lots],
    }


def history(session: Session, person_id: int, *, limit: int = 100, offset: int = 0) -> list[PointsResult]:
    """A person's entries (their merged ids included), newest first."""
    rows = session.execute(
        select(_P)
        .where(_P.c.person_id.in_(person_ids(session, person_id)))
        .order_by(_P.c.seq.desc())
        .limit(limit)
        .offset(offset)
    ).mappings()
    return [_result(r) for r in rows]


# --- the campaign seam ---------------------------------------------------------------------------


def _naive_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    # the rule is a stored document: a naive time in it is UTC
    return to_utc(datetime.fromisoformat(value) if isinstance(value, str) else value, naive_utc=True)


def points_for(rule: Mapping[str, Any], amount_fen: int, ordered_at: datetime) -> tuple[int, int]:
    """(points, multiplier) of a referred purchase: `per_yuan` per whole yuan, times the rule's
    multiplier when the order falls within the window [window_start, window_end)."""
    start, end = _naive_utc(rule.get("window_start")), _naive_utc(rule.get("window_end"))
    inside = (start is None or ordered_at >= start) and (end is None or ordered_at < end)
    multiplier = int(rule.get("multiplier") or 1) if inside else 1
    return amount_fen * int(rule.get("per_yuan") or 0) // 100 * multiplier, multiplier


def follow_conversion(session: Session, conversion: ports.Conversion) -> list[PointsResult]:
    """The conversion follower (wired in bootstrap.py): a qualified referred purchase earns points
    under the campaign's points rule (none while the referral is held for fraud review); a refund
    revokes the points earned from the order."""
    if conversion.event == "refunded":
        return revoke_source(session, conversion.source_ref, idempotency_key=f"refund:{conversion.source_ref}",
                             actor=conversion.actor, reason="order refunded")  # fmt: skip
    rule = conversion.points
    if conversion.event != "qualified" or not rule or conversion.held:
        return []
    points, multiplier = points_for(rule, conversion.amount_fen, conversion.ordered_at)
    if points <= 0:
        return []
    earner = rule.get("earner", "friend")
    who = {"friend": [conversion.friend_person_id], "inviter": [conversion.inviter_person_id]}.get(
        earner, [conversion.friend_person_id, conversion.inviter_person_id]
    )
    roles = ["friend", "inviter"] if len(who) == 2 else [earner]
    return [
        earn(
            session,
            person_id=person,
            points=points,
            campaign_id=conversion.campaign_id,
            source_ref=conversion.source_ref,
            reason=f"referred purchase ×{multiplier}",
            idempotency_key=f"points:{conversion.source_ref}:{role}",
            actor="system:campaign",
        )  # fmt: skip
        for person, role in zip(who, roles, strict=True)
    ]


# --- verification --------------------------------------------------------------------------------


def _replay_debit(e: Mapping[str, Any] | RowMapping, lots: dict[int, dict[str, Any]]) -> str:
    """Apply a debit entry's lots to the replayed lots; what is wrong with it, or ""."""
    try:
        taken = json.loads(e["lots"])
        pairs = [(int(seq), int(points)) for seq, points in taken]
    except (TypeError, ValueError):
        return "its lots are not a list of [earn seq, points]"
    if sum(points for _, points in pairs) != -e["delta"]:
        return f"its lots add up to {sum(p for _, p in pairs)}, not {-e['delta']}"
    for seq, points in pairs:
        lot = lots.get(seq)
        if lot is None or points <= 0 or points > lot["remaining"]:
            return f"it takes {points} points from lot {seq}, which does not hold them"
        lapsed = lot["expires_at"] <= e["ts"]
        if lapsed != (e["kind"] == EXPIRE):
            return f"lot {seq} {'had' if lapsed else 'had not'} expired at {e['ts']}"
        lot["remaining"] -= points
    return ""


def _replay(e: Mapping[str, Any] | RowMapping, lots: dict[int, dict[str, Any]]) -> str:
    """Apply one entry to the replayed lots; what is wrong with it, or ""."""
    kind, delta = e["kind"], e["delta"]
    if kind not in KINDS:
        return f"unknown kind {kind!r}"
    if kind in (EARN, ADJUST) and delta > 0:
        if e["expires_at"] is None or e["lots"] != "[]":
            return "a credit without an expiry, or with lots"
        lots[e["seq"]] = {
            "person_id": e["person_id"],
            "amount": delta,
            "remaining": delta,
            "expires_at": e["expires_at"],
            "source_ref": e["source_ref"],
        }
        return ""
    if delta > 0 or (kind != REVOKE and delta == 0):
        return f"a {kind} of {delta} points"
    return _replay_debit(e, lots)


def _lot_mismatches(session: Session, replay: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Where points_lots disagrees with the lots replayed from the entries."""
    mismatches: list[dict[str, Any]] = []
    seen = set()
    for row in session.execute(select(_L).execution_options(yield_per=5000)).mappings():
        seq = row["earn_seq"]
        seen.add(seq)
        expected = replay.get(seq)
        if expected is None:
            mismatches.append(
                {"earn_seq": seq, "field": "*", "expected": None, "found": "lot without an earn"}
            )
            continue
        for name, value in expected.items():
            if row[name] != value:
                mismatches.append({"earn_seq": seq, "field": name, "expected": value, "found": row[name]})
    for seq in sorted(set(replay) - seen):
        mismatches.append({"earn_seq": seq, "field": "*", "expected": "row", "found": None})
    return mismatches


def verify(session: Session) -> PointsVerify:
    """Replay the points chain: sequence, links, HMACs, lots never overdrawn, debits FIFO-legal
    (nothing taken from a lapsed lot, nothing expired early); then compare the lots table."""
    key = chain_key()
    lots: dict[int, dict[str, Any]] = {}

    def replay(e: RowMapping) -> str | None:
        wrong = _replay(e, lots)
        return f"entry {e['seq']}: {wrong}" if wrong else None

    result = walk_chain(session, _P, _PH, lambda e: entry_hash(e, key), replay, "points")
    if not result.ok:
        return result
    result.projection_mismatches.extend(_lot_mismatches(session, lots))
    if result.projection_mismatches:
        first = result.projection_mismatches[0]
        result.ok = False
        result.reason = (
            f"points_lots disagrees with the ledger: lot {first['earn_seq']} {first['field']} is "
            f"{first['found']!r}, the entries say {first['expected']!r}"
        )
    return result
