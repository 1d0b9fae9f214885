"""Group membership from join/leave events, and the weekly-active share of each group.

Join and leave events are the pipeline events WeCom's group callbacks emit (`wecom/processing.py`:
`group_join` / `group_leave`, the group in props `group_id`); an import of events with those names
and a `group_id` column lands the same way. A person is a member of a group at a time when their
last join/leave before it is a join; before their first such event they count as a member when that
first event is a leave (they were in the group already) or when they had posted by then (someone
who speaks is in the group). A group with no join/leave events at all has no membership record:
its figures are over the people who posted ("posters only", 仅发言者), never a share of members.
Days and weeks are calendar days of the display zone (`days`), as in `service`.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING

from liebian.community import days
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

JOIN_EVENT = "group_join"  # the names wecom/processing.py emits for add_member / del_member
LEAVE_EVENT = "group_leave"
BASIS_MEMBERS = "members"
BASIS_POSTERS = "posters_only"


@dataclass
class GroupMembership:
    """What is known of one group's members: join/leave changes and first posts per person."""

    group_id: str
    changes: dict[int, list[tuple[datetime, bool]]] = field(default_factory=dict)  # person → (ts, joined)
    first_post: dict[int, datetime] = field(default_factory=dict)

    @property
    def basis(self) -> str:
        return BASIS_MEMBERS if self.changes else BASIS_POSTERS

    def _member_at(self, person: int, at: datetime) -> bool:
        seq = self.changes.get(person, [])
        i = bisect_right([ts for ts, _ in seq], at)
        if i:
            return seq[i - 1][1]
        posted = self.first_post.get(person)
        return (bool(seq) and not seq[0][1]) or (posted is not None and posted < at)

    def members_at(self, at: datetime) -> set[int]:
        """Members at an instant (posters up to then, for a group without join/leave events)."""
        return {p for p in self.changes.keys() | self.first_post.keys() if self._member_at(p, at)}

    def members_during(self, start: datetime | None, end: datetime) -> set[int]:
        """Anyone who was a member at some time in [start, end)."""
        if start is None:
            joined = {p for p, seq in self.changes.items() if any(ts < end for ts, _ in seq)}
            return joined | {p for p, ts in self.first_post.items() if ts < end}
        out = self.members_at(start)
        out |= {p for p, seq in self.changes.items() if any(start <= ts < end and j for ts, j in seq)}
        return out | {p for p, ts in self.first_post.items() if start <= ts < end}


def load(con: duckdb.DuckDBPyConnection, group_id: str | None = None) -> dict[str, GroupMembership]:
    """Every group's (or one group's) membership record, from the warehouse's events and messages."""
    groups: dict[str, GroupMembership] = {}
    where, params = ("AND json_extract_string(props, '$.group_id') = ?", [group_id]) if group_id else ("", [])
    rows = con.execute(
        f"""SELECT json_extract_string(props, '$.group_id') AS gid, person_id, ts, event = ? AS joined
            FROM events WHERE event IN (?, ?) AND gid IS NOT NULL {where} ORDER BY gid, person_id, ts""",
        [JOIN_EVENT, JOIN_EVENT, LEAVE_EVENT, *params],
    ).fetchall()
    for gid, pid, ts, joined in rows:
        g = groups.setdefault(gid, GroupMembership(gid))
        g.changes.setdefault(int(pid), []).append((ts, bool(joined)))
    m_where, m_params = ("WHERE group_id = ?", [group_id]) if group_id else ("", [])
    for gid, pid, ts in con.execute(
        f"SELECT group_id, person_id, min(ts) FROM messages {m_where} GROUP BY 1, 2", m_params
    ).fetchall():
        groups.setdefault(gid, GroupMembership(gid)).first_post[int(pid)] = ts
    return groups


def week_start(day: date) -> date:
    return day - timedelta(days=day.weekday())  # Monday


@dataclass(frozen=True)
class WeekActivity:
    """One group's week: members at its end, distinct posters in it, their share, the target."""

    group_id: str
    week: date  # the Monday
    members: int
    active: int
    share: float | None
    basis: str
    target: float
    below_target: bool


def weekly_active(
    con: duckdb.DuckDBPyConnection,
    start: date,
    end: date,
    targets: dict[str, float],
    default_target: float,
    group_id: str | None = None,
) -> list[WeekActivity]:
    """Per group and week (Monday–Sunday) touching [start, end]: active share against the target.

    Active = distinct posters in the week; members = anyone who was a member during the week (posters
    so far for a group without join/leave events). A week is below target when it has members and its share
    is under the group's target (`targets`, else `default_target`)."""
    groups = load(con, group_id)
    first, last = week_start(start), week_start(end)
    s, e = days.start_of(first), days.start_of(last + timedelta(days=7))
    where, params = ("AND group_id = ?", [group_id]) if group_id else ("", [])
    posters: dict[tuple[str, date], set[int]] = defaultdict(set)
    for gid, pid, day in con.execute(
        f"""SELECT DISTINCT group_id, person_id, {days.day_sql()} FROM messages
            WHERE ts >= ? AND ts < ? {where}""",
        [s, e, *params],
    ).fetchall():
        posters[(gid, week_start(day))].add(int(pid))
    out = []
    for gid in sorted(groups):
        g, target = groups[gid], targets.get(gid, default_target)
        week = first
        while week <= last:
            week_s = days.start_of(week)
            members = len(g.members_during(week_s, week_s + timedelta(days=7)))
            active = len(posters.get((gid, week), set()))
            share = round(active / members, 4) if members else None
            out.append(WeekActivity(gid, week, members, active, share, g.basis, target,
                                    share is not None and share < target))  # fmt: skip
            week += timedelta(days=7)
    return out
