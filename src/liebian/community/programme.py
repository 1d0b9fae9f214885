"""The community programme: weekly-active targets per group, check-ins with streaks, UGC share.

- Targets: a share per group (store table `community_group_targets`); a group without one uses
  `community_weekly_active_target` (settings, default 0.10, the plans' starting point; their goal
  is `community_weekly_active_goal`, 0.35). Setting or clearing one is audited.
- Check-ins: a `checkin` event (its group in props `group_id`, as the join/leave events) or a group
  message with a check-in word (打卡 / 签到, from the 打卡互动 theme). Per person the days they checked
  in give the current streak (consecutive days ending on the last day of the window, or the day
  before it: today may not be over) and the longest; per group, the check-in rate is the members
  who checked in over the window ÷ the members (`membership`).
- UGC share: of a group's messages, those not written by staff. Staff are the user ids listed in
  `community_staff_ids` (as imported) and messages whose props carry `"staff": true` or
  `wecom_staff` (WeCom's own userids).
Days are calendar days of the display zone (`days`), as in `service`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.auth import service as auth_service
from liebian.community import days, membership
from liebian.community.models import GroupTarget
from liebian.community.service import CommunityError, day_window, time_filter
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

CHECKIN_EVENT = "checkin"
CHECKIN_WORDS = ("打卡", "签到")  # the check-in words of service.THEMES["打卡互动"]
MAX_GROUP_ID = 128


# ------------------------------------------------------------------ targets


def targets(session: Session) -> dict[str, float]:
    """The per-group targets that were set (group → share)."""
    return {t.group_id: t.target for t in session.scalars(select(GroupTarget).order_by(GroupTarget.group_id))}


def set_target(session: Session, group_id: str, target: float, actor: str) -> dict[str, object]:
    """Set one group's weekly-active target (a share in [0, 1]); audited."""
    if not group_id or len(group_id) > MAX_GROUP_ID:
        raise CommunityError(f"group_id: must be 1–{MAX_GROUP_ID} characters")
    if not 0 <= target <= 1:
        raise CommunityError(f"target: {target} is a share and must lie in [0, 1]")
    row = session.get(GroupTarget, group_id)
    before = row.target if row else None
    if row is None:
        row = GroupTarget(group_id=group_id, target=target, updated_by=actor, updated_at=utcnow())
        session.add(row)
    else:
        row.target, row.updated_by, row.updated_at = target, actor, utcnow()
    auth_service.audit(session, actor, "community.target.set", group_id, {"before": before, "target": target})
    session.flush()
    return {"group_id": group_id, "target": target}


def clear_target(session: Session, group_id: str, actor: str) -> bool:
    """Remove a group's own target (it falls back to the default); False when it had none."""
    row = session.get(GroupTarget, group_id)
    if row is None:
        return False
    auth_service.audit(session, actor, "community.target.clear", group_id, {"before": row.target})
    session.delete(row)
    session.flush()
    return True


def weekly_active(
    con: duckdb.DuckDBPyConnection, session: Session, start: date, end: date, group_id: str | None = None
) -> list[membership.WeekActivity]:
    """The weekly-active series of every group (or one) against its target."""
    day_window(start, end)
    default = get_settings().community_weekly_active_target
    return membership.weekly_active(con, start, end, targets(session), default, group_id)


# ------------------------------------------------------------------ check-ins


@dataclass(frozen=True)
class PersonCheckins:
    person_id: int
    days: int
    current_streak: int
    longest_streak: int
    last_day: date


@dataclass(frozen=True)
class GroupCheckins:
    group_id: str
    checked_in: int  # members who checked in over the window
    members: int
    rate: float | None
    basis: str


@dataclass(frozen=True)
class Checkins:
    persons: list[PersonCheckins]
    groups: list[GroupCheckins]


def streaks(days: list[date], as_of: date) -> tuple[int, int]:
    """(current, longest) runs of consecutive days; current ends on as_of or the day before."""
    longest = run = 0
    prev: date | None = None
    for d in sorted(set(days)):
        run = run + 1 if prev is not None and d - prev == timedelta(days=1) else 1
        longest, prev = max(longest, run), d
    current = run if prev is not None and as_of - prev <= timedelta(days=1) else 0
    return current, longest


def checkin_rows(
    con: duckdb.DuckDBPyConnection, s: datetime | None, e: datetime | None, group_id: str | None
) -> list[tuple[str | None, int, date]]:
    where, params = time_filter(s, e, None)
    words = " OR ".join("text LIKE ?" for _ in CHECKIN_WORDS)
    g_ev, g_msg = ("AND gid = ?", "AND group_id = ?") if group_id else ("", "")
    gp = [group_id] if group_id else []
    day = days.day_sql()
    sql = f"""
        SELECT json_extract_string(props, '$.group_id') AS gid, person_id, {day}
        FROM events WHERE event = ? AND {where} {g_ev}
        UNION
        SELECT group_id, person_id, {day} FROM messages WHERE ({words}) AND {where} {g_msg}"""
    args = [CHECKIN_EVENT, *params, *gp, *(f"%{w}%" for w in CHECKIN_WORDS), *params, *gp]
    return [(g, int(p), d) for g, p, d in con.execute(sql, args).fetchall()]


def checkins(
    con: duckdb.DuckDBPyConnection,
    start: date | None = None,
    end: date | None = None,
    group_id: str | None = None,
    limit: int = 100,
) -> Checkins:
    """Streaks per person (most days first, `limit` of them) and the check-in rate per group."""
    if limit < 1 or limit > 10_000:
        raise CommunityError(f"limit: {limit} is not within 1–10000")
    s, e = day_window(start, end)
    rows = checkin_rows(con, s, e, group_id)
    if not rows:
        return Checkins([], [])
    as_of = end or max(d for _, _, d in rows)
    per_person: dict[int, list[date]] = defaultdict(list)
    per_group: dict[str, set[int]] = defaultdict(set)
    for gid, pid, day in rows:
        per_person[pid].append(day)
        if gid:
            per_group[gid].add(pid)
    persons = []
    for pid, checked in per_person.items():
        current, longest = streaks(checked, as_of)
        persons.append(PersonCheckins(pid, len(set(checked)), current, longest, max(checked)))
    persons.sort(key=lambda p: (-p.days, -p.longest_streak, p.person_id))
    records = membership.load(con, group_id)
    groups = []
    for gid in sorted(per_group):
        record = records.get(gid, membership.GroupMembership(gid))
        members = record.members_during(s, e or datetime.max) | per_group[gid]
        n = len(per_group[gid])
        groups.append(GroupCheckins(gid, n, len(members), round(n / len(members), 4), record.basis))
    return Checkins(persons[:limit], groups)


# ------------------------------------------------------------------ UGC share


@dataclass(frozen=True)
class GroupUgc:
    group_id: str
    messages: int
    member_messages: int
    staff_messages: int
    ugc_share: float | None


def is_staff(user_id: str, props: str | None, staff_ids: set[str]) -> bool:
    if user_id in staff_ids:
        return True
    if not props:
        return False
    try:
        p = json.loads(props)
    except ValueError:
        return False
    return isinstance(p, dict) and bool(p.get("staff") is True or p.get("wecom_staff"))


def ugc_share(
    con: duckdb.DuckDBPyConnection,
    start: date | None = None,
    end: date | None = None,
    group_id: str | None = None,
    staff_ids: list[str] | None = None,
) -> list[GroupUgc]:
    """Member vs staff messages per group over [start, end]."""
    s, e = day_window(start, end)
    staff = set(get_settings().community_staff_ids if staff_ids is None else staff_ids)
    where, params = time_filter(s, e, group_id)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for gid, uid, props in con.execute(
        f"SELECT group_id, user_id, props FROM messages WHERE {where}", params
    ).fetchall():
        counts[gid][is_staff(uid, props, staff)] += 1
    return [
        GroupUgc(gid, m + st, m, st, round(m / (m + st), 4) if m + st else None)
        for gid, (m, st) in sorted(counts.items())
    ]
