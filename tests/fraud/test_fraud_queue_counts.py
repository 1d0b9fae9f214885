"""The queue's counts and facets (used by the console's review page) agree with the listed cases."""

from __future__ import annotations

import json

from liebian.db.base import utcnow
from liebian.fraud import service
from liebian.fraud.models import FraudCase


def _case(i: int, campaign: str, pattern: str, score: float, status: str) -> FraudCase:
    now = utcnow()
    return FraudCase(
        case_key=f"referral:{campaign}:1:{i}", subject="referral", campaign_id=campaign, channel="wecom",
        person_id=i, inviter_person_id=1, source="graph", score=score, reasons=json.dumps(["VELOCITY"]),
        details=json.dumps([""]), pattern=pattern, status=status, created_at=now, updated_at=now,
    )  # fmt: skip


def test_count_cases_and_facets_match_the_listing(session) -> None:
    cases = [
        _case(1, "a", "device_farm", 90, "open"),
        _case(2, "a", "device_farm", 55, "open"),
        _case(3, "a", "virtual_phone", 50, "rejected"),
        _case(4, "b", "star_churn", 70, "open"),
        _case(5, "b", "", 60, "approved"),
    ]
    session.add_all(cases)
    session.flush()
    for filters in (
        {},
        {"status": None},
        {"status": "open", "campaign_id": "a"},
        {"status": None, "pattern": "device_farm", "min_score": 60},
        {"status": "approved", "campaign_id": "a"},
    ):
        listed = service.list_cases(session, **filters, limit=1000)
        assert service.count_cases(session, **filters) == len(listed), filters
    assert service.count_cases(session) == 3  # open by default, like the listing
    facets = service.queue_facets(session)
    assert facets["statuses"] == {"open": 3, "approved": 1, "rejected": 1}
    assert facets["campaigns"] == ["a", "b"]
    assert facets["patterns"] == ["device_farm", "star_churn", "virtual_phone"]


def test_an_empty_queue_has_zero_counts(session) -> None:
    assert service.count_cases(session, status=None) == 0
    assert service.queue_facets(session) == {
        "statuses": {"open": 0, "approved": 0, "rejected": 0},
        "campaigns": [],
        "patterns": [],
    }


def test_count_cases_refuses_an_unknown_status(session) -> None:
    import pytest

    with pytest.raises(service.FraudError) as exc:
        service.count_cases(session, status="pending")
    assert exc.value.status == 422 and exc.value.field == "status"
