"""Tag recomputation as a scheduled job (`liebian job run tags-recompute`, or `liebian tags recompute`)."""

from __future__ import annotations

from liebian.db.session import session_scope
from liebian.ports import Job
from liebian.predict.common import PredictError
from liebian.tags import service


def tags_recompute() -> dict:
    """Recompute every tag and the health score from the warehouse; record the tag history."""
    try:
        with session_scope() as session:
            service.install_defaults(session)
            result = service.recompute(session)
    except PredictError as exc:  # nothing to tag yet (an empty warehouse): a skip, not a failure
        return {"skipped": str(exc)}
    return {"run_id": result["run_id"], "persons": result["persons"], "tags": len(result["tags"])}


JOBS = (Job("tags-recompute", tags_recompute, every_seconds=24 * 3600),)
