"""HTTP endpoints under /api/v1/journeys: define, list, pause/resume, run a pass, statistics."""

from __future__ import annotations

from fastapi import APIRouter

from liebian.automation import service
from liebian.automation.schemas import JourneyIn, JourneyOut, PassOut, StatsOut
from liebian.db.session import session_scope
from liebian.schemas import Int64

router = APIRouter(prefix="/api/v1/journeys", tags=["automation"])


@router.post("", status_code=201, response_model=JourneyOut)
def create(body: JourneyIn):
    with session_scope() as s:
        return service.create_journey(s, body.name, body.definition)


@router.get("", response_model=list[JourneyOut])
def list_journeys() -> list[JourneyOut]:
    with session_scope() as s:
        return service.list_journeys(s)


@router.get("/{journey_id}", response_model=JourneyOut)
def get(journey_id: Int64):
    with session_scope() as s:
        return service.get_journey(s, journey_id)


def _status(journey_id: int, status: str):
    with session_scope() as s:
        return service.set_status(s, journey_id, status)


@router.post("/{journey_id}/pause", response_model=JourneyOut)
def pause(journey_id: Int64):
    return _status(journey_id, "paused")


@router.post("/{journey_id}/resume", response_model=JourneyOut)
def resume(journey_id: Int64):
    return _status(journey_id, "active")


@router.post("/{journey_id}/run", response_model=PassOut)
def run(journey_id: Int64):
    """One pass now: enter new persons, then run every due step."""
    return service.run(journey_id)


@router.get("/{journey_id}/stats", response_model=StatsOut)
def stats(journey_id: Int64):
    with session_scope() as s:
        return service.stats(s, journey_id)
