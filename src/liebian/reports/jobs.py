"""Scheduled reports (`liebian job run reports`): weekly on Monday, monthly on days 1–5."""

from __future__ import annotations

from liebian.ports import Job
from liebian.reports import service


def reports() -> list[dict]:
    """Send every due weekly/monthly report to its subscribers, once per period."""
    return service.run_scheduled()


JOBS = (Job("reports", reports, every_seconds=3600),)
