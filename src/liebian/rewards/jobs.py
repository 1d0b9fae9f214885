"""Scheduled ledger jobs (the server's scheduler runs them; `liebian job run NAME` for cron)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.lazy import lazy_import
from liebian.ports import Job
from liebian.rewards import points, service, webhooks

if TYPE_CHECKING:
    import httpx
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    httpx = lazy_import("httpx")


def ledger_release() -> dict[str, int]:
    """Approve pending rewards whose hold period is over."""
    with session_scope() as session:
        return {"released": service.release_due(session, utcnow())}


def webhooks_deliver() -> dict[str, int]:
    """Post due webhook deliveries (bounded in time so the other jobs are not starved)."""
    with session_scope() as session, httpx.Client(timeout=webhooks.TIMEOUT_S) as client:
        return {"attempted": webhooks.deliver_due(session, utcnow(), client, max_seconds=20)}


def points_expire() -> dict[str, int]:
    """Expire earned points whose time is up (one `expire` entry per lapsed lot)."""
    with session_scope() as session:
        return {"expired_lots": points.expire_due(session, utcnow())}


JOBS = (
    Job("ledger-release", ledger_release, every_seconds=30),
    Job("webhooks-deliver", webhooks_deliver, every_seconds=5),
    Job("points-expire", points_expire, every_seconds=3600),
)
