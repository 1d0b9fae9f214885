"""Scheduled ledger jobs (the server's scheduler runs them; `liebian job run NAME` for cron)."""

from __future__ import annotations

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.jobs import job
from liebian.lazy import lazy_import
from liebian.rewards import service, webhooks

# deferred for start-up time: httpx imported on first use (liebian/lazy.py)
httpx = lazy_import("httpx")


@job("ledger-release", every_seconds=30)
def ledger_release() -> dict[str, int]:
    """Approve pending rewards whose hold period is over."""
    with session_scope() as session:
        return {"released": service.release_due(session, utcnow())}


@job("webhooks-deliver", every_seconds=5)
def webhooks_deliver() -> dict[str, int]:
    """Post due webhook deliveries (bounded in time so the other jobs are not starved)."""
    with session_scope() as session, httpx.Client(timeout=webhooks.TIMEOUT_S) as client:
        return {"attempted": webhooks.deliver_due(session, utcnow(), client, max_seconds=20)}
