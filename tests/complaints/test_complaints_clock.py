"""The complaints clock on SQLite and PostgreSQL: a complaint left open 24 h escalates through the
alert channels (a real local webhook receiver), with the time given to the clock (no sleeping);
reminders before the deadline; per-category and legal deadlines; PII masked; every change audited."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import select, text

from liebian.auth.service import audit_entries, create_user
from liebian.complaints import service
from liebian.complaints.models import Complaint
from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.monitor import notifications

T0 = datetime(2026, 11, 20, 9, 0)  # naive UTC, as inside liebian
PHONE = "13812345678"
ID_CARD = "11010519491231002X"  # a valid check digit


class Receiver:
    """A local HTTP server recording what the alert channel posts."""

    def __init__(self) -> None:
        self.bodies: list[dict] = []
        bodies = self.bodies

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                bodies.append(json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0)))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def channel(store: str, allow_private_urls: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """An enabled webhook alert channel (every level) pointing at a local receiver; a user to own cases."""
    monkeypatch.setattr(notifications, "SEND_OPTIONS", {"attempts": 1, "backoff": 0.0})
    receiver = Receiver()
    with session_scope() as s:
        notifications.add_channel(s, "duty", "webhook", receiver.url, actor="test")
        create_user(s, "xiaoli", "a-long-password-1", "operator", actor="test")
    yield receiver
    receiver.close()


def _create(**fields) -> dict:
    intake = service.Intake(
        **({"kind": "complaint", "channel": "wecom", "category": "reward", "text": "邀请奖励没到账"} | fields)
    )
    with session_scope() as s:
        return service.create(s, intake, actor="ops", now=T0)


def _clock(at: datetime) -> dict[str, list[int]]:
    with session_scope() as s:
        return service.run_clock(s, at)


def test_a_complaint_left_open_24_hours_escalates_through_the_alert_channels(channel: Receiver) -> None:
    case = _create(owner="xiaoli", received_at=T0)
    assert case["due_at"] == T0 + timedelta(hours=24)
    assert _clock(T0 + timedelta(hours=1)) == {"reminded": [], "escalated": []}
    assert channel.bodies == []

    # 80 % of the window gone (19.2 h): the owner is reminded, once
    assert _clock(T0 + timedelta(hours=19, minutes=30)) == {"reminded": [case["id"]], "escalated": []}
    assert _clock(T0 + timedelta(hours=20)) == {"reminded": [], "escalated": []}
    assert [b["event"] for b in channel.bodies] == ["reminder"]

    # open 24 h: escalated through the channel, at the top level
    assert _clock(T0 + timedelta(hours=24)) == {"reminded": [], "escalated": [case["id"]]}
    escalation = channel.bodies[-1]
    assert escalation["event"] == "escalated" and escalation["level"] == "紧急"
    assert f"#{case['id']}" in escalation["title"] and "xiaoli" in escalation["title"]
    with session_scope() as s:
        shown = service.get(s, case["id"], now=T0 + timedelta(hours=24))
    assert shown["state"] == "overdue" and shown["escalations"] == 1

    # not again within the escalation interval; again a day later while it stays open
    assert _clock(T0 + timedelta(hours=30))["escalated"] == []
    assert _clock(T0 + timedelta(hours=48))["escalated"] == [case["id"]]
    assert len(channel.bodies) == 3

    # resolved: the clock leaves it alone
    with session_scope() as s:
        service.resolve(s, case["id"], "upheld", "补发奖励", actor="xiaoli", now=T0 + timedelta(hours=49))
    assert _clock(T0 + timedelta(hours=96)) == {"reminded": [], "escalated": []}

    with session_scope() as s:
        actions = [e["action"] for e in audit_entries(s, action="complaint.")]
    assert actions == [
        "complaint.create", "complaint.remind", "complaint.escalate", "complaint.escalate", "complaint.resolve",
    ]  # fmt: skip


def test_notifications_carry_no_text_and_no_person(channel: Receiver) -> None:
    case = _create(text=f"我的手机 {PHONE}，奖励没到", person_id=None, id_type="phone", id_value=PHONE)
    _clock(T0 + timedelta(hours=25))
    body = json.dumps(channel.bodies, ensure_ascii=False)
    assert PHONE not in body and "奖励没到" not in body and str(case["person_id"]) not in body


def test_deadlines_per_category_and_for_data_subject_requests(
    store: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIEBIAN_COMPLAINT_CATEGORY_HOURS", '{"food_safety": 4, "vip_service": 2}')
    reset_settings_cache()
    assert _create(category="food_safety")["due_at"] == T0 + timedelta(hours=4)
    assert _create(category="vip_service")["due_at"] == T0 + timedelta(hours=2)  # a brand's own category
    assert _create(category="product")["due_at"] == T0 + timedelta(hours=24)
    request = _create(kind="subject_request", category="deletion", id_type="phone", id_value=PHONE)
    assert request["due_at"] == T0 + timedelta(days=15)
    monkeypatch.setenv("LIEBIAN_SUBJECT_REQUEST_DEADLINE_DAYS", "10")
    reset_settings_cache()
    assert _create(kind="subject_request", category="access", person_id=request["person_id"])["due_at"] == (
        T0 + timedelta(days=10)
    )
    with pytest.raises(service.ComplaintError) as refused:
        _create(category="deletion")  # a request's category is not a complaint's
    assert refused.value.field == "category"
    with pytest.raises(service.ComplaintError) as refused:
        _create(kind="subject_request", category="deletion")
    assert refused.value.field == "person_id"


def test_text_is_masked_and_the_person_resolved_through_identity(store: str) -> None:
    first = _create(text=f"电话 {PHONE}，身份证 {ID_CARD}，请回电", id_type="phone", id_value=PHONE)
    again = _create(text="又是我", id_type="phone", id_value=f"+86 {PHONE[:3]} {PHONE[3:7]} {PHONE[7:]}")
    with session_scope() as s:
        assert first["person_id"] == again["person_id"] == identity.find_person(s, "phone", PHONE)
        stored = s.scalars(select(Complaint.text)).all()
        dumped = " ".join(
            str(row)
            for t in ("complaints", "audit_log")
            for row in s.execute(text(f"SELECT * FROM {t}"))  # noqa: S608
        )
    assert "138****5678" in stored[0] and "请回电" in stored[0]
    assert PHONE not in dumped and ID_CARD not in dumped


def test_resolution_needs_a_fitting_outcome_and_a_reason_once(store: str) -> None:
    case = _create()
    with session_scope() as s:
        with pytest.raises(service.ComplaintError) as refused:
            service.resolve(s, case["id"], "fulfilled", "done", actor="ops")  # a request's outcome
        assert refused.value.field == "resolution"
        with pytest.raises(service.ComplaintError) as refused:
            service.resolve(s, case["id"], "rejected", "  ", actor="ops")
        assert refused.value.field == "reason"
        done = service.resolve(s, case["id"], "rejected", f"已核实，回电 {PHONE}", actor="ops", now=T0)
    assert done["state"] == "resolved" and PHONE not in done["resolution_reason"]
    with session_scope() as s, pytest.raises(service.ComplaintError) as refused:
        service.resolve(s, case["id"], "upheld", "again", actor="ops")
    assert refused.value.code == "case_closed" and refused.value.status == 409


def test_what_is_due_lists_overdue_first(store: str) -> None:
    late = _create(received_at=T0 - timedelta(hours=30))
    soon = _create(received_at=T0 - timedelta(hours=21))
    fresh = _create(received_at=T0)
    with session_scope() as s:
        due = service.due(s, now=T0)
    assert [(c["id"], c["state"]) for c in due] == [
        (late["id"], "overdue"), (soon["id"], "due_soon"), (fresh["id"], "open"),
    ]  # fmt: skip
