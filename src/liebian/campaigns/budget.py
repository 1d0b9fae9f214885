"""The campaign's limits and money: cap counters, budget and stock reservations, grants.

Every counter moves by one conditional statement (see `common`). A grant reserves budget and
stock on the campaign row first, then asks the ledger (`liebian.rewards.service`) for the reward,
idempotently by key; a reward the ledger later rejects or revokes gives its reservation back once
(`release_on_entry`, the ledger's subscriber; `reconcile_reservations` repairs what it missed).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Integer, Update, bindparam, case, delete, select, update
from sqlalchemy.orm import Session

from liebian.campaigns.common import audit, expire_campaign, stmt
from liebian.campaigns.models import Campaign, CapCounter, Reservation
from liebian.campaigns.schemas import Reward
from liebian.db.base import table_of, utcnow
from liebian.db.session import core, rowcount
from liebian.rewards import service as ledger


def bump(session: Session, campaign_id: str, scope: str, key: str, cap: int | None, n: int = 1) -> int | None:
    """Raise a counter by n unless that passes the cap: the new value, or None when capped."""
    if cap is not None and n > cap:
        return None
    params = {"b_cid": campaign_id, "b_scope": scope, "b_key": key, "b_n": n, "b_now": utcnow()}
    if cap is None:
        row = core(session, stmt(session, "bump_uncapped"), params).first()
    else:
        row = core(session, stmt(session, "bump"), {**params, "b_cap": cap}).first()
    return None if row is None else row[0]


def unbump(session: Session, campaign_id: str, scope: str, key: str, n: int = 1) -> None:
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


@dataclass
class Grant:
    person_id: int
    role: str
    reward_code: str
    value_fen: int
    reward_id: int | None
    state: str  # granted | budget_exhausted


@dataclass(frozen=True)
class Ask:
    """One reward to grant in a campaign (`grant`'s arguments)."""

    person_id: int
    reward: Reward
    role: str
    key: str
    source_ref: str
    hold_until: datetime | None
    held: bool
    reason: str


def grant(
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
    ask = Ask(person_id, reward, role, key, source_ref, hold_until, held, reason)
    return _grant_one(session, campaign_id, ask)


def _reservation(campaign_id: str, ask: Ask) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "idempotency_key": f"{campaign_id}:{ask.key}",
        "value_fen": ask.reward.value_fen,
        "released": False,
        "created_at": utcnow(),
    }


def _take(session: Session, campaign_id: str, value_fen: int, n: int) -> bool:
    took = rowcount(
        core(session, stmt(session, "take_budget"), {"b_cid": campaign_id, "b_value": value_fen, "b_n": n})
    )
    expire_campaign(session, campaign_id)
    return bool(took)


def _ledger_args(campaign_id: str, ask: Ask) -> dict[str, Any]:
    return {
        "campaign_id": campaign_id,
        "person_id": ask.person_id,
        "reward_code": ask.reward.code,
        "value_fen": ask.reward.value_fen,
        "reason": ask.reason,
        "source_ref": ask.source_ref,
        "idempotency_key": f"{campaign_id}:{ask.key}",
        "hold_until": ask.hold_until,
        "held_for_review": ask.held,
    }


def _reserved(session: Session, campaign_id: str, ask: Ask, reservation_id: int, reward_id: int) -> None:
    audit(
        session,
        "reward.reserve",
        campaign_id,
        {
            "key": ask.key,
            "person_id": ask.person_id,
            "value_fen": ask.reward.value_fen,
            "reward_id": reward_id,
            "held": ask.held,
        },
        entity="reservation",
        entity_id=reservation_id,
    )


def _grant_one(session: Session, campaign_id: str, ask: Ask) -> Grant:
    row = core(session, stmt(session, "reserve"), _reservation(campaign_id, ask)).first()
    if row is not None and not _take(session, campaign_id, ask.reward.value_fen, 1):
        # first time and no room: give the reservation back
        session.execute(delete(Reservation).where(Reservation.id == row[0]))
        audit(
            session,
            "reward.budget_exhausted",
            campaign_id,
            {"key": ask.key, "person_id": ask.person_id},
            entity="reservation",
        )
        return Grant(ask.person_id, ask.role, ask.reward.code, ask.reward.value_fen, None, "budget_exhausted")
    view = ledger.grant(session, **_ledger_args(campaign_id, ask))
    if row is not None:
        core(session, stmt(session, "reservation_reward"), {"b_id": row[0], "b_reward": view.id})
        _reserved(session, campaign_id, ask, row[0], view.id)
    return Grant(ask.person_id, ask.role, ask.reward.code, ask.reward.value_fen, view.id, "granted")


_naming: dict[int, Update] = {}


def _name_rewards(session: Session, pairs: list[tuple[int, int]]) -> None:
    """Set the reward of each (reservation, reward) in one UPDATE (an executemany is a statement per
    row on PostgreSQL, see `db.session.insert_rows`)."""
    n = len(pairs)
    if n not in _naming:
        res = table_of(Reservation)
        ids = [bindparam(f"b_id{i}", type_=Integer) for i in range(n)]
        rewards = [bindparam(f"b_reward{i}", type_=Integer) for i in range(n)]
        _naming[n] = (
            update(res)
            .where(res.c.id.in_(ids))
            .values(reward_id=case(*((res.c.id == i, r) for i, r in zip(ids, rewards, strict=True))))
        )
    params = {}
    for i, (reservation_id, reward_id) in enumerate(pairs):
        params[f"b_id{i}"], params[f"b_reward{i}"] = reservation_id, reward_id
    core(session, _naming[n], params)


def grant_all(session: Session, campaign_id: str, asks: list[Ask]) -> list[Grant]:
    """`grant` for each ask in turn, with the same results, in a few statements when the budget has
    room for all of them (the rewards of one qualification, issue #23): one INSERT of the
    reservations, one UPDATE taking their budget and stock, the ledger's `grant_all`, one statement
    naming the rewards in the reservations. Without room for all, the reservations are given back
    and the asks granted one by one, in order (the first ones get what is left)."""
    keys = {ask.key for ask in asks}
    if len(asks) < 2 or len(keys) < len(asks):
        return [_grant_one(session, campaign_id, ask) for ask in asks]
    rows = [_reservation(campaign_id, ask) for ask in asks]
    new: dict[str, int] = dict(core(session, stmt(session, "reserve_keyed"), rows).tuples().all())
    fresh = [
        (ask, new[row["idempotency_key"]])
        for ask, row in zip(asks, rows, strict=True)
        if row["idempotency_key"] in new
    ]
    if fresh and not _take(session, campaign_id, sum(ask.reward.value_fen for ask, _ in fresh), len(fresh)):
        session.execute(delete(Reservation).where(Reservation.id.in_(list(new.values()))))
        return [_grant_one(session, campaign_id, ask) for ask in asks]
    views = ledger.grant_all(session, [_ledger_args(campaign_id, ask) for ask in asks])
    reward_of = {ask.key: view.id for ask, view in zip(asks, views, strict=True)}
    if fresh:
        _name_rewards(session, [(res_id, reward_of[ask.key]) for ask, res_id in fresh])
        for ask, res_id in fresh:
            _reserved(session, campaign_id, ask, res_id, reward_of[ask.key])
    return [
        Grant(ask.person_id, ask.role, ask.reward.code, ask.reward.value_fen, view.id, "granted")
        for ask, view in zip(asks, views, strict=True)
    ]


def release(session: Session, reward_id: int, *, wait: bool = True) -> bool:
    """A reward was rejected or revoked: give its budget and stock back, once.

    `wait=False` is for callers holding the ledger head: a grant takes the campaign row before
    the head, so waiting here for a row a grant holds could deadlock. When the row is taken, the
    reservation stays open for `reconcile_reservations` (False)."""
    if not wait and not _campaign_row_free(session, reward_id):
        return False
    res = session.execute(
        update(Reservation)
        .where(Reservation.reward_id == reward_id, Reservation.released.is_(False))
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
    audit(
        session, "reward.release", res[0], {"reward_id": reward_id, "value_fen": res[1]}, entity="reservation"
    )
    return True


def _campaign_row_free(session: Session, reward_id: int) -> bool:
    """Lock the campaign row of the reward's open reservation unless another transaction holds it
    (PostgreSQL; SQLite has one writer at a time and nothing to skip)."""
    cid = session.scalar(
        select(Reservation.campaign_id).where(
            Reservation.reward_id == reward_id, Reservation.released.is_(False)
        )
    )
    if cid is None:
        return True  # nothing to release: release() finds no open reservation
    locked = select(Campaign.id).where(Campaign.id == cid).with_for_update(skip_locked=True)
    return session.scalar(locked) is not None


FINAL_STATES = ("rejected", "revoked")


def release_on_entry(session: Session, entry: dict, reward: dict) -> None:
    """The ledger's subscriber (wired in `liebian.bootstrap`): an entry moving a reward to rejected
    or revoked gives the reward's reservation back, once, in the entry's transaction (or, while a
    grant holds the campaign row, leaves it to `reconcile_reservations`: see `release`)."""
    if entry.get("to_state") in FINAL_STATES:
        release(session, reward["id"], wait=False)


def reconcile_reservations(session: Session, campaign_id: str | None = None) -> int:
    """Release the budget of rewards rejected or revoked in the ledger whose reservation is still
    held: a repair job (`release_on_entry` is the main path). Idempotent; run with close_due."""
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
    for state in FINAL_STATES:
        offset = 0
        while open_ids:
            page = ledger.list_rewards(
                session, state=state, campaign_id=campaign_id, limit=1000, offset=offset
            )
            for reward in page:
                if reward.id in open_ids and release(session, reward.id):
                    open_ids.discard(reward.id)
                    released += 1
            if len(page) < 1000:
                break
            offset += 1000
    return released
