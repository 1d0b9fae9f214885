"""The reward ledger: a state machine per reward, recorded as a hash-chained, append-only log.

States: pending → approved → issued → redeemed; rejected (from pending/approved); revoked
(clawback from pending/approved/issued). redeemed, rejected and revoked are final.

Exactly once
- Every write first locks the single `ledger_head` row (`SELECT … FOR UPDATE` on PostgreSQL; on
  SQLite the first statement is an UPDATE, which takes the database's one write lock). Everything
  after that — the idempotency look-up, the state check, the append — runs serialised, so 50
  duplicates of one transition produce one entry. Unique constraints on the idempotency keys and a
  conditional `UPDATE … WHERE state = :from` are the second line of defence.
- A repeated idempotency key returns the result of the first call and writes nothing; the same key
  used for a different operation is an error (`idempotency_conflict`), never silently accepted.

Hash chain (the canonical form, its versions and the reward seal: rewards/ledger_hash.py)
- entry.hash = HMAC-SHA256(chain key, canonical JSON of the entry including prev_hash); the key
  does not live in the database. Every entry written since revision ledger01 (canonical form v2)
  also commits to the reward row after it, so `verify_chain` names an edit of any column of the
  `rewards` table; older entries keep v1 and verify as they were (never re-sealed).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, RowMapping, Select, bindparam, func, or_, select
from sqlalchemy.orm import Session

from liebian import ports
from liebian.db.base import table_of, utcnow
from liebian.db.session import core, insert_rows, rowcount
from liebian.errors import DomainError
from liebian.identity import service as identity
from liebian.rewards.chain import Head as _Head
from liebian.rewards.chain import VerifyResult, key_problem, lock_head, walk_chain
from liebian.rewards.chain import transaction_of as transaction_of  # re-exported (webhooks)
from liebian.rewards.ledger_hash import (
    ENTRY_VERSION,
    KNOWN_VERSIONS,
    SEALED_FIELDS,
    chain_key,
    entry_hash,
    seal,
)
from liebian.rewards.models import LedgerEntry, LedgerHead, Reward

PENDING, APPROVED, ISSUED, REDEEMED, REJECTED, REVOKED = (
    "pending",
    "approved",
    "issued",
    "redeemed",
    "rejected",
    "revoked",
)
STATES = (PENDING, APPROVED, ISSUED, REDEEMED, REJECTED, REVOKED)
TRANSITIONS: dict[str, frozenset[str]] = {
    PENDING: frozenset({APPROVED, REJECTED, REVOKED}),
    APPROVED: frozenset({ISSUED, REJECTED, REVOKED}),
    ISSUED: frozenset({REDEEMED, REVOKED}),
    REDEEMED: frozenset(),
    REJECTED: frozenset(),
    REVOKED: frozenset(),
}
FINAL = frozenset(s for s, nxt in TRANSITIONS.items() if not nxt)
# Moves that pay out; a reward held for review cannot make them until the hold is cleared.
FORWARD = frozenset({APPROVED, ISSUED, REDEEMED})


class LedgerError(DomainError):
    """A refused ledger operation. `status` is the HTTP status the API answers with."""

    default_status = 409


@dataclass(frozen=True)
class RewardView:
    id: int
    campaign_id: str
    person_id: int
    reward_code: str
    value_fen: int
    state: str
    source_ref: str
    created_at: datetime
    reason: str = ""
    hold_until: datetime | None = None
    held_for_review: bool = False
    updated_at: datetime | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- helpers ---------------------------------------------------------------------------------


def _view(r: Mapping[str, Any] | RowMapping) -> RewardView:
    """From a rewards row (a mapping)."""
    return RewardView(
        id=r["id"],
        campaign_id=r["campaign_id"],
        person_id=r["person_id"],
        reward_code=r["reward_code"],
        value_fen=r["value_fen"],
        state=r["state"],
        source_ref=r["source_ref"],
        created_at=r["created_at"],
        reason=r["reason"],
        hold_until=r["hold_until"],
        held_for_review=bool(r["held_for_review"]),
        updated_at=r["updated_at"],
    )


# Statements built once: constructing SQLAlchemy expressions costs more than running them here.
_R, _E, _H = table_of(Reward), table_of(LedgerEntry), table_of(LedgerHead)
_HEAD_SET = _H.update().where(_H.c.id == 1).values(seq=bindparam("b_seq"), hash=bindparam("b_hash"))
_ENTRY_BY_KEY = select(_E.c.reward_id, _E.c.kind, _E.c.to_state).where(
    _E.c.idempotency_key == bindparam("b_key")
)
_REWARD_BY_ID = select(_R).where(_R.c.id == bindparam("b_id"))
_REWARD_BY_KEY = select(_R).where(_R.c.idempotency_key == bindparam("b_key"))
_INSERT_REWARD = _R.insert().returning(_R.c.id)
# A grant's two idempotency checks in one round trip (both keys are unique): the reward made with
# the key, and an entry of another operation that used it.
_KEY_USED = select(
    select(_R.c.id).where(_R.c.idempotency_key == bindparam("b_key")).scalar_subquery().label("reward"),
    select(_E.c.seq).where(_E.c.idempotency_key == bindparam("b_key")).scalar_subquery().label("entry"),
)
# grant_all: any of several keys used by a reward or an entry; the new rewards' ids by key
_KEYS_USED = (
    select(_R.c.id)
    .where(_R.c.idempotency_key.in_(bindparam("b_keys", expanding=True)))
    .union_all(select(_E.c.seq).where(_E.c.idempotency_key.in_(bindparam("b_keys", expanding=True))))
    .limit(1)
)
_INSERT_REWARD_KEYED = _R.insert().returning(_R.c.idempotency_key, _R.c.id)
_MOVE = (
    _R.update()
    .where(_R.c.id == bindparam("b_id"), _R.c.state == bindparam("b_from"))
    .values(state=bindparam("b_to"), updated_at=bindparam("b_now"))
)
_SET_HOLD = (
    _R.update()
    .where(_R.c.id == bindparam("b_id"))
    .values(held_for_review=bindparam("b_held"), updated_at=bindparam("b_now"))
)


def _lock_head(session: Session) -> _Head:
    """Serialise ledger writers (`chain.lock_head`); returns the head. The lock lasts until the
    transaction ends: a second write in it (the two rewards of a double-sided referral) reuses it."""
    return lock_head(session, _H, "ledger_head")


def _entry(
    prev: tuple[int, str],
    reward: dict[str, Any],
    *,
    kind: str,
    from_state: str | None,
    to_state: str,
    amount_fen: int,
    actor: str,
    note: str,
    idempotency_key: str,
) -> dict[str, Any]:
    """The entry after `prev` (the seq and hash it follows), hashed, not written yet."""
    entry = {
        "seq": prev[0] + 1,
        "reward_id": reward["id"],
        "kind": kind,
        "from_state": from_state,
        "to_state": to_state,
        "amount_fen": amount_fen,
        "campaign_id": reward["campaign_id"],
        "person_id": reward["person_id"],
        "actor": actor[:128],
        "note": note,
        "ts": utcnow(),
        "idempotency_key": idempotency_key,
        "prev_hash": prev[1],
        "v": ENTRY_VERSION,
        "reward_after": seal(reward),
    }
    entry["hash"] = entry_hash(entry)
    return entry


def _write(session: Session, head: _Head, written: list[tuple[dict[str, Any], dict[str, Any]]]) -> None:
    """Write entries that follow the head in order (one INSERT), move the head past the last and
    tell the wired ledger subscribers (webhooks, campaign budgets) of each, in this transaction."""
    entries = [entry for entry, _ in written]
    insert_rows(session, _E, entries)
    last = entries[-1]
    core(session, _HEAD_SET, {"b_seq": last["seq"], "b_hash": last["hash"]})
    head.seq, head.hash = last["seq"], last["hash"]
    for entry, reward in written:
        for subscriber in ports.current().ledger_subscribers:
            subscriber(session, entry, reward)


def _append(session: Session, head: _Head, reward: dict[str, Any], **fields: Any) -> dict[str, Any]:
    """Append one entry after the head (the caller holds the head lock); `fields` as `_entry`'s."""
    entry = _entry((head.seq, head.hash), reward, **fields)
    _write(session, head, [(entry, reward)])
    return entry


def _load(session: Session, reward_id: int) -> dict[str, Any]:
    row = core(session, _REWARD_BY_ID, {"b_id": reward_id}).mappings().first()
    if row is None:
        raise LedgerError("not_found", f"reward {reward_id} does not exist", 404)
    return dict(row)


def _check_key(idempotency_key: str) -> str:
    problem = key_problem(idempotency_key)
    if problem:
        raise LedgerError("invalid", problem, 422)
    return idempotency_key


def _entry_by_key(session: Session, key: str) -> Row[Any, Any, Any] | None:
    return core(session, _ENTRY_BY_KEY, {"b_key": key}).first()


# --- the seam ----------------------------------------------------------------------------------


def _check_grant(campaign_id: str, person_id: int, reward_code: str, value_fen: int, source_ref: str,
                 hold_until: datetime | None) -> None:  # fmt: skip
    """Every bad field of a grant, named in one LedgerError (422)."""
    problems = []
    if not isinstance(campaign_id, str) or not campaign_id or len(campaign_id) > 64:
        problems.append("campaign_id: must be a non-empty string of at most 64 characters")
    if not isinstance(person_id, int) or isinstance(person_id, bool):
        problems.append("person_id: must be an integer")
    if not isinstance(reward_code, str) or not reward_code or len(reward_code) > 64:
        problems.append("reward_code: must be a non-empty string of at most 64 characters")
    if not isinstance(value_fen, int) or isinstance(value_fen, bool) or value_fen < 0:
        problems.append("value_fen: must be an integer number of fen ≥ 0")
    if not isinstance(source_ref, str) or not source_ref or len(source_ref) > 128:
        problems.append("source_ref: must be a non-empty string of at most 128 characters")
    if hold_until is not None and (not isinstance(hold_until, datetime) or hold_until.tzinfo is not None):
        problems.append("hold_until: must be a naive UTC datetime or None")
    if problems:
        raise LedgerError("invalid", "; ".join(problems), 422)


def _replayed(session: Session, idempotency_key: str, values: tuple[Any, ...]) -> RewardView:
    """The reward a grant's key made before: the same one again, or a conflict if its values differ."""
    existing = core(session, _REWARD_BY_KEY, {"b_key": idempotency_key}).mappings().one()
    same = tuple(existing[k] for k in ("campaign_id", "person_id", "reward_code", "value_fen", "source_ref"))
    if same != values:
        raise LedgerError(
            "idempotency_conflict",
            f"idempotency_key {idempotency_key!r} was used for reward {existing['id']} with other values",
        )
    return _view(existing)


def grant(
    session: Session,
    *,
    campaign_id: str,
    person_id: int,
    reward_code: str,
    value_fen: int,
    reason: str,
    source_ref: str,
    idempotency_key: str,
    hold_until: datetime | None,
    held_for_review: bool = False,
) -> RewardView:
    """Create a pending reward. The same idempotency_key returns the same reward and writes nothing.

    hold_until None means no hold period: the next `release_due` approves it (unless held).
    """
    _check_key(idempotency_key)
    _check_grant(campaign_id, person_id, reward_code, value_fen, source_ref, hold_until)

    head = _lock_head(session)
    used = core(session, _KEY_USED, {"b_key": idempotency_key}).one()
    if used.reward is not None:
        return _replayed(
            session, idempotency_key, (campaign_id, person_id, reward_code, value_fen, source_ref)
        )
    if used.entry is not None:
        raise LedgerError(
            "idempotency_conflict",
            f"idempotency_key {idempotency_key!r} was already used by another operation",
        )
    reward = _new_reward(campaign_id, person_id, reward_code, value_fen, reason, source_ref,
                         idempotency_key, hold_until, held_for_review)  # fmt: skip
    reward["id"] = core(session, _INSERT_REWARD, reward).scalar_one()
    _write(session, head, _grant_entries((head.seq, head.hash), reward))
    return _view(reward)


def _new_reward(campaign_id: str, person_id: int, reward_code: str, value_fen: int, reason: str,
                source_ref: str, idempotency_key: str, hold_until: datetime | None,
                held_for_review: bool) -> dict[str, Any]:  # fmt: skip
    now = utcnow()
    return {
        "campaign_id": campaign_id,
        "person_id": person_id,
        "reward_code": reward_code,
        "value_fen": value_fen,
        "state": PENDING,
        "reason": reason or "",
        "source_ref": source_ref,
        "hold_until": hold_until,
        "held_for_review": bool(held_for_review),
        "idempotency_key": idempotency_key,
        "created_at": now,
        "updated_at": now,
    }


def _grant_entries(
    prev: tuple[int, str], reward: dict[str, Any]
) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """A new reward's entries after `prev`: the grant, and the hold when it is held for review."""
    key = reward["idempotency_key"]
    first = _entry(prev, reward, kind="grant", from_state=None, to_state=PENDING, amount_fen=reward["value_fen"],
                   actor="system:grant", note=reward["reason"], idempotency_key=key)  # fmt: skip
    if not reward["held_for_review"]:
        return [(first, reward)]
    hold = _entry((first["seq"], first["hash"]), reward, kind="hold", from_state=PENDING, to_state=PENDING,
                  amount_fen=0, actor="system:grant", note="held for review at grant",
                  idempotency_key=f"{key}:hold")  # fmt: skip
    return [(first, reward), (hold, reward)]


def grant_all(session: Session, grants: Sequence[Mapping[str, Any]]) -> list[RewardView]:
    """`grant(**g)` for each of `grants` in turn, with the same result, in a few statements when
    none of their keys was used before: one look-up of all keys, one INSERT of the rewards, one of
    their entries, one move of the head (the rewards of one qualification, issue #23). A used key
    (a replay, a conflict) takes the one-by-one path, which answers it as `grant` does."""
    for g in grants:
        _check_key(g["idempotency_key"])
        _check_grant(g["campaign_id"], g["person_id"], g["reward_code"], g["value_fen"], g["source_ref"],
                     g["hold_until"])  # fmt: skip
    head = _lock_head(session)
    keys = [g["idempotency_key"] for g in grants]
    if len(grants) < 2 or len(set(keys)) < len(keys) or core(session, _KEYS_USED, {"b_keys": keys}).first():
        return [grant(session, **g) for g in grants]
    rewards = [
        _new_reward(g["campaign_id"], g["person_id"], g["reward_code"], g["value_fen"], g["reason"],
                    g["source_ref"], g["idempotency_key"], g["hold_until"], g.get("held_for_review", False))
        for g in grants
    ]  # fmt: skip
    ids: dict[str, int] = dict(core(session, _INSERT_REWARD_KEYED, rewards).tuples().all())
    written: list[tuple[dict[str, Any], dict[str, Any]]] = []
    prev = (head.seq, head.hash)
    for reward in rewards:
        reward["id"] = ids[reward["idempotency_key"]]
        written += _grant_entries(prev, reward)
        prev = (written[-1][0]["seq"], written[-1][0]["hash"])
    _write(session, head, written)
    return [_view(r) for r in rewards]


def _transition_locked(
    session: Session,
    head: _Head,
    reward_id: int,
    to_state: str,
    *,
    idempotency_key: str,
    actor: str,
    note: str,
) -> tuple[RewardView, bool]:
    """The transition, with the head lock already held. Returns (view, whether an entry was written)."""
    done = _entry_by_key(session, idempotency_key)
    if done is not None:
        if done.reward_id != reward_id or done.to_state != to_state or done.kind != "transition":
            raise LedgerError(
                "idempotency_conflict",
                f"idempotency_key {idempotency_key!r} was already used for another operation "
                f"(reward {done.reward_id}, {done.kind} to {done.to_state})",
            )
        return _view(_load(session, reward_id)), False
    reward = _load(session, reward_id)
    from_state = reward["state"]
    if to_state not in TRANSITIONS[from_state]:
        allowed = ", ".join(sorted(TRANSITIONS[from_state])) or "none (final state)"
        raise LedgerError(
            "illegal_transition",
            f"reward {reward_id} is {from_state}; it cannot become {to_state} (allowed: {allowed})",
        )
    if to_state in FORWARD and reward["held_for_review"]:
        raise LedgerError(
            "held_for_review", f"reward {reward_id} is held for review; clear the hold before {to_state}"
        )
    now = utcnow()
    changed = rowcount(
        core(session, _MOVE, {"b_id": reward_id, "b_from": from_state, "b_to": to_state, "b_now": now})
    )
    if changed != 1:  # pragma: no cover - the head lock makes this unreachable; kept as a guard
        raise LedgerError("concurrent_change", f"reward {reward_id} changed while being moved to {to_state}")
    reward["state"], reward["updated_at"] = to_state, now
    _append(
        session,
        head,
        reward,
        kind="transition",
        from_state=from_state,
        to_state=to_state,
        amount_fen=reward["value_fen"],
        actor=actor,
        note=note,
        idempotency_key=idempotency_key,
    )
    return _view(reward), True


def transition(
    session: Session, reward_id: int, to_state: str, *, idempotency_key: str, actor: str, note: str = ""
) -> RewardView:
    """Move a reward to approved|issued|redeemed|rejected|revoked, exactly once per idempotency key."""
    _check_key(idempotency_key)
    if to_state not in STATES or to_state == PENDING:
        raise LedgerError(
            "invalid",
            f"to_state: {to_state!r} is not one of approved, issued, redeemed, rejected, revoked",
            422,
        )
    if not actor:
        raise LedgerError("invalid", "actor: must name who makes the change", 422)
    head = _lock_head(session)
    view, _ = _transition_locked(
        session, head, reward_id, to_state, idempotency_key=idempotency_key, actor=actor, note=note
    )
    return view


def revoke_for_source(
    session: Session, source_ref: str, *, idempotency_key: str, actor: str, note: str
) -> list[RewardView]:
    """Claw back every reward earned by this order/referral that is not final yet.

    Redeemed rewards are spent and stay as they are (the caller can see they are not in the list).
    A repeated call with the same key returns the same rewards and writes nothing.
    """
    _check_key(idempotency_key)
    head = _lock_head(session)
    rewards = session.execute(
        select(_R.c.id, _R.c.state).where(_R.c.source_ref == source_ref).order_by(_R.c.id)
    ).all()
    revoked = []
    for reward_id, state in rewards:
        key = f"{idempotency_key}:{reward_id}"
        if state in (PENDING, APPROVED, ISSUED) or _entry_by_key(session, key) is not None:
            view, _ = _transition_locked(
                session, head, reward_id, REVOKED, idempotency_key=key, actor=actor, note=note
            )
            revoked.append(view)
    return revoked


def release_due(session: Session, now: datetime) -> int:
    """Approve pending rewards whose hold period is over and that are not held for review."""
    head = _lock_head(session)
    due = (
        session.execute(
            select(_R.c.id)
            .where(
                _R.c.state == PENDING,
                _R.c.held_for_review.is_(False),
                or_(_R.c.hold_until.is_(None), _R.c.hold_until <= now),
            )
            .order_by(_R.c.id)
        )
        .scalars()
        .all()
    )
    released = 0
    for reward_id in due:
        _, written = _transition_locked(
            session,
            head,
            reward_id,
            APPROVED,
            idempotency_key=f"release:{reward_id}",
            actor="system:release",
            note="hold period over",
        )
        released += written
    return released


def set_review_hold(session: Session, reward_id: int, held: bool, *, actor: str, note: str) -> RewardView:
    """Hold a reward for fraud review (it cannot be approved, issued or redeemed) or clear the hold."""
    if not actor:
        raise LedgerError("invalid", "actor: must name who makes the change", 422)
    head = _lock_head(session)
    reward = _load(session, reward_id)
    if bool(reward["held_for_review"]) == bool(held):
        return _view(reward)  # already so: nothing to record
    if reward["state"] in FINAL:
        raise LedgerError(
            "illegal_transition", f"reward {reward_id} is {reward['state']}; a review hold no longer applies"
        )
    now = utcnow()
    core(session, _SET_HOLD, {"b_id": reward_id, "b_held": bool(held), "b_now": now})
    reward["held_for_review"], reward["updated_at"] = bool(held), now
    _append(
        session,
        head,
        reward,
        kind="hold" if held else "unhold",
        from_state=reward["state"],
        to_state=reward["state"],
        amount_fen=0,
        actor=actor,
        note=note,
        idempotency_key=f"review:{reward_id}:{head.seq + 1}",
    )
    return _view(reward)


def get_reward(session: Session, reward_id: int) -> RewardView:
    return _view(_load(session, reward_id))


def person_ids(session: Session, person_id: int) -> list[int]:
    """The person and every person id merged into it (OneID): rewards stay on the id they were
    granted to — the chain is never rewritten — and reads gather them."""
    view = identity.person_view(session, person_id)
    if view is None:
        return [person_id]
    return sorted({person_id, view.person_id, *view.merged_from})


def rewards_for(session: Session, person_id: int) -> list[RewardView]:
    """A person's rewards, including those granted under person ids since merged into theirs."""
    rows = session.execute(
        select(_R)
        .where(_R.c.person_id.in_(person_ids(session, person_id)))
        .order_by(_R.c.created_at, _R.c.id)
    ).mappings()
    return [_view(r) for r in rows]


def _filtered(query: Select[Any], state: str | None, campaign_id: str | None) -> Select[Any]:
    """`query` over rewards narrowed to a state and a campaign (either may be None: all)."""
    if state:
        if state not in STATES:
            raise LedgerError("invalid", f"state: {state!r} is not one of {', '.join(STATES)}", 422)
        query = query.where(_R.c.state == state)
    if campaign_id:
        query = query.where(_R.c.campaign_id == campaign_id)
    return query


def list_rewards(
    session: Session,
    *,
    state: str | None = None,
    campaign_id: str | None = None,
    person_id: int | None = None,
    source_ref: str | None = None,
    limit: int = 100,
    offset: int = 0,
) -> list[RewardView]:
    query = _filtered(select(_R).order_by(_R.c.id), state, campaign_id)
    if person_id is not None:
        query = query.where(_R.c.person_id == person_id)
    if source_ref:
        query = query.where(_R.c.source_ref == source_ref)
    return [_view(r) for r in session.execute(query.limit(limit).offset(offset)).mappings()]


def count_rewards(session: Session, *, state: str | None = None, campaign_id: str | None = None) -> int:
    """How many rewards `list_rewards` pages through with these filters."""
    return int(
        session.execute(_filtered(select(func.count()).select_from(_R), state, campaign_id)).scalar_one()
    )


def reward_campaigns(session: Session) -> list[str]:
    """The campaigns that have rewards, by id."""
    return list(session.scalars(select(_R.c.campaign_id).distinct().order_by(_R.c.campaign_id)))


def entries(
    session: Session, *, reward_id: int | None = None, after_seq: int = 0, limit: int = 500
) -> list[dict[str, Any]]:
    query = select(_E).where(_E.c.seq > after_seq).order_by(_E.c.seq).limit(limit)
    if reward_id is not None:
        query = query.where(_E.c.reward_id == reward_id)
    return [dict(e) for e in session.execute(query).mappings()]


def balances(
    session: Session, by: str = "person", key: str | int | list[int] | list[str] | None = None
) -> list[dict[str, Any]]:
    """Value and count of rewards per state, per person or campaign, computed from the entries.

    Each grant/transition entry moves amount_fen (and one reward) from from_state to to_state.
    """
    if by not in ("person", "campaign"):
        raise LedgerError("invalid", "by: must be person or campaign", 422)
    column = LedgerEntry.person_id if by == "person" else LedgerEntry.campaign_id
    query = select(column, LedgerEntry.from_state, LedgerEntry.to_state, LedgerEntry.amount_fen).where(
        LedgerEntry.kind.in_(("grant", "transition"))
    )
    if isinstance(key, list | tuple | set):
        query = query.where(column.in_([int(k) for k in key] if by == "person" else [str(k) for k in key]))
    elif key is not None:
        query = query.where(column == (int(key) if by == "person" else str(key)))
    totals: dict[tuple[Any, str], list[int]] = {}  # (person id or campaign id, state)
    for group, from_state, to_state, amount in session.execute(query):
        totals.setdefault((group, to_state), [0, 0])
        totals[(group, to_state)][0] += amount
        totals[(group, to_state)][1] += 1
        if from_state is not None:
            totals.setdefault((group, from_state), [0, 0])
            totals[(group, from_state)][0] -= amount
            totals[(group, from_state)][1] -= 1
    return [
        {by: group, "state": state, "value_fen": value, "rewards": count}
        for (group, state), (value, count) in sorted(
            totals.items(), key=lambda kv: (str(kv[0][0]), STATES.index(kv[0][1]))
        )
        if count
    ]


# --- verification ------------------------------------------------------------------------------


# What a reward whose entries are all v1 can be checked on (the v1 entries carry no more of it).
V1_FIELDS = ("state", "value_fen", "person_id", "campaign_id", "held_for_review", "idempotency_key", "reason")


def _expected_of(replay_row: dict[str, Any], row: RowMapping) -> tuple[dict[str, Any], dict[str, Any]]:
    """(what the ledger says, what the table holds) for one reward, field by field: every sealed
    column against the reward's latest v2 entry, else the fields its v1 entries carry."""
    if replay_row["sealed"] is not None:
        return json.loads(replay_row["sealed"]), json.loads(seal(row))
    found = {name: row[name] for name in V1_FIELDS}
    found["held_for_review"] = bool(found["held_for_review"])
    return {name: replay_row[name] for name in V1_FIELDS}, found


def _projection_mismatches(session: Session, replay: dict[int, dict[str, Any]]) -> list[dict[str, Any]]:
    """Where the rewards table disagrees with the ledger, naming the reward, the field and the
    entry (`seq`) that says otherwise."""
    mismatches: list[dict[str, Any]] = []
    seen = set()
    for r in session.execute(select(_R).execution_options(yield_per=5000)).mappings():
        seen.add(r["id"])
        replay_row = replay.get(r["id"])
        if replay_row is None:
            mismatches.append(
                {"reward_id": r["id"], "field": "*", "expected": None, "found": "row without a grant entry",
                 "seq": None}
            )  # fmt: skip
            continue
        if replay_row["sealed"] is not None and replay_row["sealed"] == seal(r):
            continue  # the row is exactly what its latest entry sealed (the common case: no parsing)
        expected, found = _expected_of(replay_row, r)
        for name in SEALED_FIELDS:
            if name in expected and found.get(name) != expected[name]:
                mismatches.append(
                    {"reward_id": r["id"], "field": name, "expected": expected[name], "found": found.get(name),
                     "seq": replay_row["seq"]}
                )  # fmt: skip
    for reward_id in sorted(set(replay) - seen):
        mismatches.append(
            {
                "reward_id": reward_id,
                "field": "*",
                "expected": "row",
                "found": None,
                "seq": replay[reward_id]["seq"],
            }
        )
    return mismatches


def _replay(e: RowMapping, replay: dict[int, dict[str, Any]]) -> str | None:
    """Apply one (authentic) entry to the replayed rewards; the reason it cannot be, or None."""
    seq, kind, rid, version = e["seq"], e["kind"], e["reward_id"], e["v"]
    if version not in KNOWN_VERSIONS:
        return f"entry {seq}: unknown canonical form v{version}"
    if version == 1 and e["reward_after"] is not None:
        return f"entry {seq}: a v1 entry carries a reward seal its hash does not cover (added outside the ledger)"
    state = replay.get(rid)
    if kind == "grant":
        if state is not None:
            return f"entry {seq}: reward {rid} granted twice"
        state = replay[rid] = {
            "state": e["to_state"],
            "value_fen": e["amount_fen"],
            "person_id": e["person_id"],
            "campaign_id": e["campaign_id"],
            "held_for_review": False,
            "idempotency_key": e["idempotency_key"],
            "reason": e["note"],
        }
    elif state is None:
        return f"entry {seq}: reward {rid} has no grant before it"
    elif kind == "transition":
        if e["from_state"] != state["state"] or e["to_state"] not in TRANSITIONS[state["state"]]:
            return (
                f"entry {seq}: {e['from_state']} → {e['to_state']} is not a legal move from {state['state']}"
            )
        state["state"] = e["to_state"]
    elif kind in ("hold", "unhold"):
        state["held_for_review"] = kind == "hold"
    else:
        return f"entry {seq}: unknown kind {kind!r}"
    state["seq"], state["sealed"] = seq, e["reward_after"] if version >= 2 else state.get("sealed")
    return None


def verify_chain(session: Session) -> VerifyResult:
    """Replay the chain: sequence, links, HMACs, legal moves; then compare the rewards table."""
    key = chain_key()
    replay: dict[int, dict[str, Any]] = {}
    result = walk_chain(session, _E, _H, lambda e: entry_hash(e, key), lambda e: _replay(e, replay), "ledger")
    if not result.ok:
        return result
    result.projection_mismatches.extend(_projection_mismatches(session, replay))
    if result.projection_mismatches:
        result.ok = False
        first = result.projection_mismatches[0]
        said_by = f"entry {first['seq']}" if first["seq"] is not None else "the entries"
        result.reason = (
            f"rewards table disagrees with the ledger: reward {first['reward_id']} "
            f"{first['field']} is {first['found']!r}, {said_by} says {first['expected']!r}"
        )
    return result
