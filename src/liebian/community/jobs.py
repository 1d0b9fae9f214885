"""Community jobs: the weekly-active check of every group against its target (`liebian job run NAME`)."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from sqlalchemy.orm import Session

from liebian.community import days, programme
from liebian.community.membership import WeekActivity, week_start
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.monitor.notifications import notify_alert
from liebian.monitor.service import raise_alert
from liebian.ports import Job

METRIC = "weekly_active_share"
LEVEL = "重要"


def _title(w: WeekActivity) -> str:
    share = f"{w.share:.2%}" if w.share is not None else "-"
    return f"社群周活跃低于目标（{w.group_id}，{w.week.isoformat()} 周）：实际 {share}，目标 {w.target:.2%}"


def alert_below_target(session: Session, week: date, *, notify: bool = True) -> list[dict[str, Any]]:
    """Raise (or update) a threshold alert for each group whose week (its Monday) is under target;
    the alert names the group, the share, the target and the membership basis, through the monitor's
    alert path (dedup per group and week, deadlines, escalation, notification channels)."""
    monday = week_start(week)
    with warehouse.connect() as con:
        series = programme.weekly_active(con, session, monday, monday)
    out = []
    for w in series:
        if not w.below_target:
            continue
        view, new = raise_alert(
            session, kind="threshold", metric=METRIC, scope={"group_id": w.group_id, "basis": w.basis},
            level=LEVEL, title=_title(w), observed=w.share, threshold=w.target,
            period=(monday + timedelta(days=6)).isoformat(), suggested_action="review_group",
        )  # fmt: skip
        if new and notify:
            notify_alert(session, view, "opened")
        out.append(view)
    return out


def check_weekly_active() -> dict[str, Any]:
    """The last complete week (display zone) of every group against its target."""
    last_week = week_start(days.today()) - timedelta(days=7)
    with session_scope() as s:
        alerts = alert_below_target(s, last_week)
    return {"week": last_week.isoformat(), "alerts": len(alerts)}


JOBS = (Job("community-weekly-active", check_weekly_active, every_seconds=86400),)
