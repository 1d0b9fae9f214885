"""Enrolling a chosen list of persons (the console's "send to a journey"): the journey's hold-out
applies, nobody enters twice, a paused journey refuses."""

from __future__ import annotations

import pytest

from liebian.automation import service
from liebian.automation.models import JourneyEnrollment
from liebian.automation.service import AutomationError
from liebian.db.session import session_scope

DEFINITION = {
    "trigger": {"type": "event", "event": "never_tracked", "lookback_hours": 1},
    "steps": [{"action": {"type": "tag", "name": "followed_up"}}],
    "holdout_pct": 30,
}


def test_enrol_a_list_with_holdout_and_once_only(store) -> None:
    with session_scope() as s:
        jid = service.create_journey(s, "召回", DEFINITION).id
        service.set_status(s, jid, "active")
    people = list(range(1, 201))
    with session_scope() as s:
        first = service.enrol(s, jid, people)
    held = [p for p in people if service.in_control(jid, p, 30)]
    assert first == {"journey_id": jid, "candidates": 200, "entered": 200, "control": len(held)}
    assert 30 < len(held) < 90  # the hold-out share is the journey's, not all or nothing
    with session_scope() as s:
        again = service.enrol(s, jid, [*people[:10], 999])
        arms = {e.person_id: e.arm for e in s.query(JourneyEnrollment).filter_by(journey_id=jid)}
    assert again["entered"] == 1 and len(arms) == 201
    assert {p for p, arm in arms.items() if arm == "control"} == set(held)
    with session_scope() as s:
        service.set_status(s, jid, "paused")
    with session_scope() as s, pytest.raises(AutomationError) as info:
        service.enrol(s, jid, [1000])
    assert info.value.field == "journey_id" and info.value.status == 409
