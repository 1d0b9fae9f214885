"""The complaints clock as a scheduled job (`liebian job run complaints-escalate` for cron)."""

from __future__ import annotations

from liebian.complaints import service
from liebian.db.session import session_scope
from liebian.ports import Job


def escalate() -> dict[str, list[int]]:
    """Remind owners of complaints and data-subject requests near their deadline; escalate overdue ones."""
    with session_scope() as s:
        return service.run_clock(s)


JOBS = (Job("complaints-escalate", escalate, every_seconds=300),)
