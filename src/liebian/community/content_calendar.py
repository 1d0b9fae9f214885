"""A content calendar per group: planned posts and theme days, and their results on the day.

An item is a group, a (display-zone) day, a kind (`post`: a planned post; `theme_day`: e.g. 晒单有奖日, a
check-in day) with a title and optionally a content theme of `service.THEMES`. Its results are read
from the warehouse for that group and day: messages, distinct posters, check-ins (as in
`programme`), messages on the item's theme, and the same figures' daily average over the 7 days
before, so a theme day can be judged against an ordinary day. Adding and removing are audited.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.auth import service as auth_service
from liebian.community import days, schemas
from liebian.community.models import CalendarItem
from liebian.community.programme import CHECKIN_WORDS, MAX_GROUP_ID
from liebian.community.service import THEMES, CommunityError, day_window
from liebian.db.base import utcnow
from liebian.errors import NotFound
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

KINDS = ("post", "theme_day")
MAX_TITLE = 200
BASELINE_DAYS = 7


def add_item(
    session: Session, group_id: str, day: date, kind: str, title: str, theme: str | None, actor: str
) -> int:
    """Plan a post or a theme day; returns its id."""
    if not group_id or len(group_id) > MAX_GROUP_ID:
        raise CommunityError(f"group_id: must be 1–{MAX_GROUP_ID} characters")
    if kind not in KINDS:
        raise CommunityError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    if not title.strip() or len(title) > MAX_TITLE:
        raise CommunityError(f"title: must be 1–{MAX_TITLE} characters")
    if theme is not None and theme not in THEMES:
        raise CommunityError(f"theme: {theme!r} is not one of {', '.join(THEMES)}")
    item = CalendarItem(group_id=group_id, day=day, kind=kind, title=title.strip(), theme=theme,
                        created_by=actor, created_at=utcnow())  # fmt: skip
    session.add(item)
    session.flush()
    auth_service.audit(session, actor, "community.calendar.add", str(item.id),
                       {"group_id": group_id, "day": day.isoformat(), "kind": kind})  # fmt: skip
    return item.id


def remove_item(session: Session, item_id: int, actor: str) -> None:
    item = session.get(CalendarItem, item_id)
    if item is None:
        raise NotFound("not_found", f"calendar item {item_id} not found", field="item_id")
    auth_service.audit(session, actor, "community.calendar.remove", str(item_id), {"group_id": item.group_id})
    session.delete(item)
    session.flush()


def _day_figures(
    con: duckdb.DuckDBPyConnection, group_id: str, day: date, theme: str | None
) -> tuple[int, int, int, int | None]:
    """(messages, posters, check-ins, theme messages) of a group on a day."""
    s, e = days.start_of(day), days.start_of(day + timedelta(days=1))
    words = THEMES.get(theme or "", ())
    theme_sql = " OR ".join("text LIKE ?" for _ in words) or "FALSE"
    checkin_sql = " OR ".join("text LIKE ?" for _ in CHECKIN_WORDS)
    row = con.execute(
        f"""SELECT count(*), count(DISTINCT person_id), count(*) FILTER (WHERE {theme_sql})
            FROM messages WHERE group_id = ? AND ts >= ? AND ts < ?""",
        [*(f"%{w}%" for w in words), group_id, s, e],
    ).fetchone()
    checkins = con.execute(
        f"""SELECT count(DISTINCT person_id) FROM (
              SELECT person_id FROM events WHERE event = 'checkin'
                AND json_extract_string(props, '$.group_id') = ? AND ts >= ? AND ts < ?
              UNION ALL
              SELECT person_id FROM messages WHERE group_id = ? AND ts >= ? AND ts < ? AND ({checkin_sql}))""",
        [group_id, s, e, group_id, s, e, *(f"%{w}%" for w in CHECKIN_WORDS)],
    ).fetchone()
    n, posters, on_theme = row if row else (0, 0, 0)
    return int(n), int(posters), int(checkins[0]) if checkins else 0, int(on_theme) if theme else None


def calendar(
    con: duckdb.DuckDBPyConnection,
    session: Session,
    start: date | None = None,
    end: date | None = None,
    group_id: str | None = None,
) -> list[schemas.CalendarItem]:
    """The calendar items in [start, end] (of one group, or all), each with its results."""
    day_window(start, end)
    q = select(CalendarItem).order_by(CalendarItem.day, CalendarItem.group_id, CalendarItem.id)
    if start:
        q = q.where(CalendarItem.day >= start)
    if end:
        q = q.where(CalendarItem.day <= end)
    if group_id:
        q = q.where(CalendarItem.group_id == group_id)
    out = []
    for item in session.scalars(q):
        n, posters, checkins, on_theme = _day_figures(con, item.group_id, item.day, item.theme)
        before = [_day_figures(con, item.group_id, item.day - timedelta(days=k), None)
                  for k in range(1, BASELINE_DAYS + 1)]  # fmt: skip
        out.append(schemas.CalendarItem(  # the route's response model: one definition
            id=item.id, group_id=item.group_id, day=item.day, kind=item.kind, title=item.title, theme=item.theme,
            messages=n, posters=posters, checkins=checkins, theme_messages=on_theme,
            baseline_messages=round(sum(b[0] for b in before) / BASELINE_DAYS, 2),
            baseline_posters=round(sum(b[1] for b in before) / BASELINE_DAYS, 2),
        ))  # fmt: skip
    return out
