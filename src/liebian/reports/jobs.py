"""Scheduled reports (`liebian job run reports`): weekly on Monday, monthly on days 1–5."""

from __future__ import annotations

from liebian.jobs import job
from liebian.reports import service


@job("reports", every_seconds=3600)
def reports() -> list[dict]:
    """Send every due weekly/monthly report to its subscribers, once per period."""
    return service.run_scheduled()
