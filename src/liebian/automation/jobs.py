"""Journeys as a scheduled job (`liebian job run journeys`, or `liebian journey run ID`)."""

from __future__ import annotations

from liebian.automation import service
from liebian.ports import Job


def journeys() -> list[dict]:
    """Enter new persons into every active journey and run every due wait, branch and action."""
    return service.run_all()


JOBS = (Job("journeys", journeys, every_seconds=300),)
