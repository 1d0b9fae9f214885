"""The KOC programme: nominate members from the contributor ranking, give them tasks, reward the
tasks they complete through the reward ledger, and report their results.

- A KOC is a person in a group, nominated by an operator from the ranking (`service.
  top_contributors`: only someone who posted in the group can be nominated); status nominated →
  active → retired (a retired KOC can be made active again). Every change is audited.
- A task has a kind, a target and a period [start, end] of display-zone days (`days`):
  `ugc_messages` — messages the KOC posts in the group (member content: not staff, `programme`);
  `invitees` — distinct persons the KOC invited (referral edges with the KOC as inviter, in the
  period) who joined the group (a `group_join` event of the group) in the period;
  `checkin_hosted` — distinct other persons who checked in (`programme`'s check-ins) in the group
  on days the KOC checked in there (the KOC opened the day's check-in).
  Progress is read from the warehouse by `progress` — the one definition.
- `settle` grants the reward of every task of an active KOC whose progress reached its target,
  through the wired reward ledger (`ports.Wiring.reward_ledger`): campaign `koc`, idempotency key
  `koc:<koc>:task:<task>`, so a task is rewarded once however often settle runs.
- Results per KOC over a window: tasks done, UGC messages and their share of the group's member
  messages, invitees who joined, reward value granted and reward cost (issued or redeemed, as the
  metric catalogue's reward cost).
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian import ports
from liebian.auth import service as auth_service
from liebian.community import membership, programme, schemas
from liebian.community.models import Koc, KocTask
from liebian.community.service import CommunityError, day_window, time_filter
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.errors import NotFound
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

STATUSES = ("nominated", "active", "retired")
MOVES = {"nominated": {"active", "retired"}, "active": {"retired"}, "retired": {"active"}}
KINDS = ("ugc_messages", "invitees", "checkin_hosted")
REWARD_CAMPAIGN = "koc"  # the ledger's campaign id of KOC task rewards
REWARD_CODE = "koc_task"
COSTING_STATES = ("issued", "redeemed")  # as the catalogue's reward cost (rewards.costs)
SPENT_STATES = ("rejected", "revoked")
MAX_TARGET = 100_000
MAX_REWARD_FEN = 10_000_000  # ¥100,000
MAX_PERSON_ID = 2**63 - 1


def _koc(session: Session, koc_id: int) -> Koc:
    row = session.get(Koc, koc_id)
    if row is None:
        raise NotFound("not_found", f"koc_id: KOC {koc_id} not found", field="koc_id")
    return row


def koc_view(k: Koc) -> dict[str, Any]:
    return {"id": k.id, "person_id": k.person_id, "group_id": k.group_id, "status": k.status,
            "nominated_by": k.nominated_by, "nominated_at": k.nominated_at, "updated_at": k.updated_at}  # fmt: skip


def nominate(
    session: Session, con: duckdb.DuckDBPyConnection, person_id: int, group_id: str, actor: str
) -> dict[str, Any]:
    """Nominate a contributor of the group (someone in its ranking); a second nomination of the
    same person in the same group returns the first."""
    if not group_id or len(group_id) > programme.MAX_GROUP_ID:
        raise CommunityError(f"group_id: must be 1–{programme.MAX_GROUP_ID} characters")
    if not 0 < person_id <= MAX_PERSON_ID:
        raise CommunityError(f"person_id: {person_id} is not a person id")
    existing = session.scalars(
        select(Koc).where(Koc.person_id == person_id, Koc.group_id == group_id)
    ).first()
    if existing is not None:
        return koc_view(existing)
    row = con.execute(
        "SELECT count(*) FROM messages WHERE group_id = ? AND person_id = ?", [group_id, person_id]
    ).fetchone()
    if not row or not row[0]:
        raise CommunityError(
            f"person_id: {person_id} has posted nothing in {group_id}, so is not in its ranking"
        )
    now = utcnow()
    k = Koc(person_id=person_id, group_id=group_id, status="nominated", nominated_by=actor,
            nominated_at=now, updated_by=actor, updated_at=now)  # fmt: skip
    session.add(k)
    session.flush()
    auth_service.audit(session, actor, "community.koc.nominate", f"koc:{k.id}",
                       {"person_id": person_id, "group_id": group_id})  # fmt: skip
    return koc_view(k)


def set_status(session: Session, koc_id: int, status: str, actor: str) -> dict[str, Any]:
    """Activate, retire or reactivate a KOC; audited."""
    if status not in STATUSES:
        raise CommunityError(f"status: {status!r} is not one of {', '.join(STATUSES)}")
    k = _koc(session, koc_id)
    if status == k.status:
        return koc_view(k)
    if status not in MOVES[k.status]:
        raise CommunityError(f"status: a {k.status} KOC cannot become {status}")
    before, k.status, k.updated_by, k.updated_at = k.status, status, actor, utcnow()
    session.flush()
    auth_service.audit(
        session, actor, "community.koc.status", f"koc:{k.id}", {"before": before, "status": status}
    )
    return koc_view(k)


def list_kocs(
    session: Session, group_id: str | None = None, status: str | None = None
) -> list[dict[str, Any]]:
    q = select(Koc).order_by(Koc.group_id, Koc.id)
    if group_id:
        q = q.where(Koc.group_id == group_id)
    if status:
        q = q.where(Koc.status == status)
    return [koc_view(k) for k in session.scalars(q)]


def add_task(
    session: Session, koc_id: int, kind: str, target: int, start: date, end: date, reward_fen: int, actor: str
) -> dict[str, Any]:
    """Give a KOC (not retired) a task; audited."""
    problems = []
    if kind not in KINDS:
        problems.append(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not 1 <= target <= MAX_TARGET:
        problems.append(f"target: {target} is not within 1–{MAX_TARGET}")
    if not 0 <= reward_fen <= MAX_REWARD_FEN:
        problems.append(f"reward_fen: {reward_fen} is not within 0–{MAX_REWARD_FEN}")
    if start > end:
        problems.append(f"start: {start} is after end {end}")
    if problems:
        raise CommunityError("; ".join(problems))
    k = _koc(session, koc_id)
    if k.status == "retired":
        raise CommunityError(f"koc_id: KOC {koc_id} is retired")
    t = KocTask(koc_id=k.id, kind=kind, target=target, start=start, end=end, reward_fen=reward_fen,
                created_by=actor, created_at=utcnow())  # fmt: skip
    session.add(t)
    session.flush()
    auth_service.audit(session, actor, "community.koc.task", f"koc_task:{t.id}",
                       {"koc_id": k.id, "kind": kind, "target": target, "reward_fen": reward_fen})  # fmt: skip
    return task_view(t, k)


def task_view(t: KocTask, k: Koc, progress_value: int | None = None) -> dict[str, Any]:
    return {"id": t.id, "koc_id": t.koc_id, "person_id": k.person_id, "group_id": k.group_id, "kind": t.kind,
            "target": t.target, "start": t.start, "end": t.end, "reward_fen": t.reward_fen,
            "progress": progress_value, "done": progress_value is not None and progress_value >= t.target,
            "reward_id": t.reward_id, "completed_at": t.completed_at}  # fmt: skip


# ------------------------------------------------------------------ progress (the one definition)


def _ugc(con: duckdb.DuckDBPyConnection, person_id: int | None, group_id: str, start: date, end: date) -> int:
    """Member (non-staff) messages in the group over the days; of one person, or of everyone."""
    s, e = day_window(start, end)
    where, params = time_filter(s, e, group_id)
    if person_id is not None:
        where, params = f"{where} AND person_id = ?", [*params, person_id]
    staff = set(get_settings().community_staff_ids)
    rows = con.execute(f"SELECT user_id, props FROM messages WHERE {where}", params).fetchall()
    return sum(not programme.is_staff(uid, props, staff) for uid, props in rows)


def _invitees(con: duckdb.DuckDBPyConnection, person_id: int, group_id: str, start: date, end: date) -> int:
    s, e = day_window(start, end)
    row = con.execute(
        """SELECT count(DISTINCT r.invitee_person_id) FROM referral_edges r
           WHERE r.inviter_person_id = ? AND r.ts >= ? AND r.ts < ? AND EXISTS (
             SELECT 1 FROM events j WHERE j.event = ? AND j.person_id = r.invitee_person_id
               AND json_extract_string(j.props, '$.group_id') = ? AND j.ts >= ? AND j.ts < ?)""",
        [person_id, s, e, membership.JOIN_EVENT, group_id, s, e],
    ).fetchone()
    return int(row[0]) if row else 0


def _hosted(con: duckdb.DuckDBPyConnection, person_id: int, group_id: str, start: date, end: date) -> int:
    s, e = day_window(start, end)
    rows = programme.checkin_rows(con, s, e, group_id)
    hosted = {day for _, pid, day in rows if pid == person_id}
    return len({pid for _, pid, day in rows if day in hosted and pid != person_id})


def progress(
    con: duckdb.DuckDBPyConnection, kind: str, person_id: int, group_id: str, start: date, end: date
) -> int:
    """A KOC's count of a task kind in a group over [start, end] (display-zone days)."""
    if kind == "ugc_messages":
        return _ugc(con, person_id, group_id, start, end)
    if kind == "invitees":
        return _invitees(con, person_id, group_id, start, end)
    if kind == "checkin_hosted":
        return _hosted(con, person_id, group_id, start, end)
    raise CommunityError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")


def list_tasks(
    session: Session, con: duckdb.DuckDBPyConnection, koc_id: int | None = None
) -> list[dict[str, Any]]:
    """Every task (of one KOC) with its progress now."""
    q = select(KocTask, Koc).join(Koc, Koc.id == KocTask.koc_id).order_by(KocTask.id)
    if koc_id is not None:
        q = q.where(KocTask.koc_id == koc_id)
    return [task_view(t, k, progress(con, t.kind, k.person_id, k.group_id, t.start, t.end))
            for t, k in session.execute(q).tuples()]  # fmt: skip


def _ledger() -> ports.RewardLedger:
    ledger = ports.current().reward_ledger
    if ledger is None:
        raise ports.NotWired("the reward ledger is not wired (liebian.bootstrap)")
    return ledger


def settle(session: Session, con: duckdb.DuckDBPyConnection, actor: str) -> list[dict[str, Any]]:
    """Grant the reward of every completed, unrewarded task of an active KOC through the ledger
    (idempotent per KOC and task); returns the tasks rewarded now."""
    ledger = _ledger()
    q = (
        select(KocTask, Koc)
        .join(Koc, Koc.id == KocTask.koc_id)
        .where(KocTask.reward_id.is_(None), Koc.status == "active")
        .order_by(KocTask.id)
    )
    out = []
    for t, k in session.execute(q).tuples():
        done = progress(con, t.kind, k.person_id, k.group_id, t.start, t.end)
        if done < t.target:
            continue
        reward = ledger.grant(
            session, campaign_id=REWARD_CAMPAIGN, person_id=k.person_id, reward_code=REWARD_CODE,
            value_fen=t.reward_fen, reason=f"KOC task {t.id}: {t.kind} {done}/{t.target}",
            source_ref=f"koc_task:{t.id}", idempotency_key=f"koc:{k.id}:task:{t.id}", hold_until=None,
        )  # fmt: skip
        t.reward_id, t.completed_at = reward.id, utcnow()
        session.flush()
        auth_service.audit(session, actor, "community.koc.reward", f"koc_task:{t.id}",
                           {"koc_id": k.id, "reward_id": reward.id, "value_fen": t.reward_fen})  # fmt: skip
        out.append(task_view(t, k, done))
    return out


# ------------------------------------------------------------------ results


def results(
    session: Session,
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    group_id: str | None = None,
) -> list[schemas.KocResult]:
    """Per KOC over [start, end]: tasks (of the window) done, UGC and its share, invitees, rewards."""
    day_window(start, end)
    ledger = _ledger()
    group_ugc: dict[str, int] = {}
    out = []
    for k in session.scalars(
        select(Koc).where(*([Koc.group_id == group_id] if group_id else [])).order_by(Koc.id)
    ):
        tasks = session.scalars(
            select(KocTask).where(KocTask.koc_id == k.id, KocTask.start <= end, KocTask.end >= start)
        ).all()
        rewards = [ledger.get_reward(session, t.reward_id) for t in tasks if t.reward_id is not None]
        if k.group_id not in group_ugc:
            group_ugc[k.group_id] = _ugc(con, None, k.group_id, start, end)
        mine, total = _ugc(con, k.person_id, k.group_id, start, end), group_ugc[k.group_id]
        out.append(schemas.KocResult(  # the route's response model: one definition
            koc_id=k.id, person_id=k.person_id, group_id=k.group_id, status=k.status, tasks=len(tasks),
            tasks_done=sum(t.reward_id is not None for t in tasks), ugc_messages=mine,
            ugc_share=round(mine / total, 4) if total else None,
            invitees=_invitees(con, k.person_id, k.group_id, start, end),
            reward_fen=sum(r.value_fen for r in rewards if r.state not in SPENT_STATES),
            reward_cost_fen=sum(r.value_fen for r in rewards if r.state in COSTING_STATES),
        ))  # fmt: skip
    return out
