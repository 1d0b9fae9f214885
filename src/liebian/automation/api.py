"""HTTP endpoints under /api/v1/journeys: define, list, pause/resume, run a pass, statistics."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from liebian.automation import service
from liebian.automation.schemas import JourneyIn
from liebian.automation.service import AutomationError
from liebian.db.session import session_scope

router = APIRouter(prefix="/api/v1/journeys", tags=["automation"])


def _error(exc: AutomationError) -> JSONResponse:
    return JSONResponse(status_code=exc.status, content=exc.as_dict())


@router.post("", status_code=201)
def create(body: JourneyIn):
    try:
        with session_scope() as s:
            return service.create_journey(s, body.name, body.definition)
    except AutomationError as exc:
        return _error(exc)


@router.get("")
def list_journeys() -> list[dict]:
    with session_scope() as s:
        return service.list_journeys(s)


@router.get("/{journey_id}")
def get(journey_id: int):
    try:
        with session_scope() as s:
            return service.get_journey(s, journey_id)
    except AutomationError as exc:
        return _error(exc)


def _status(journey_id: int, status: str):
    try:
        with session_scope() as s:
            return service.set_status(s, journey_id, status)
    except AutomationError as exc:
        return _error(exc)


@router.post("/{journey_id}/pause")
def pause(journey_id: int):
    return _status(journey_id, "paused")


@router.post("/{journey_id}/resume")
def resume(journey_id: int):
    return _status(journey_id, "active")


@router.post("/{journey_id}/run")
def run(journey_id: int):
    """One pass now: enter new persons, then run every due step."""
    try:
        return service.run(journey_id)
    except AutomationError as exc:
        return _error(exc)


@router.get("/{journey_id}/stats")
def stats(journey_id: int):
    try:
        with session_scope() as s:
            return service.stats(s, journey_id)
    except AutomationError as exc:
        return _error(exc)
