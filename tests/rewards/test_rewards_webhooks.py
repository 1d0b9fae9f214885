"""Signed webhooks delivered to a real HTTP receiver on loopback: signature, retries, log, replay."""

from __future__ import annotations

import json
from datetime import timedelta

import httpx
import pytest
from rewards_helpers import Receiver, grant

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.rewards import service, webhooks
from liebian.rewards.service import LedgerError

SECRET = "whsec_test_0123456789abcdef"


def _endpoint(url: str, events: list[str] | None = None) -> int:
    with session_scope() as s:
        view, secret = webhooks.create_endpoint(s, url, events, secret=SECRET)
    assert secret == SECRET
    return view.id


def _deliver(now, timeout: float = 5.0) -> int:
    with session_scope() as s, httpx.Client(timeout=timeout) as client:
        return webhooks.deliver_due(s, now, client)


def test_delivery_is_signed_and_carries_no_personal_data(store):
    with Receiver() as rx:
        _endpoint(rx.url)
        with session_scope() as s:
            r = grant(s, "g1", person_id=4242, value_fen=888)
            service.transition(s, r.id, "approved", idempotency_key="a1", actor="op")
        assert _deliver(utcnow()) == 2
        assert len(rx.requests) == 2
        for req in rx.requests:
            h = {k.lower(): v for k, v in req["headers"].items()}
            expected = webhooks.sign(SECRET, h["x-liebian-timestamp"], req["body"])
            assert h["x-liebian-signature"] == expected
            assert webhooks.verify_signature(
                SECRET, h["x-liebian-timestamp"], req["body"], h["x-liebian-signature"]
            )
            assert not webhooks.verify_signature(
                "whsec_wrong_secret_0000", h["x-liebian-timestamp"], req["body"], h["x-liebian-signature"]
            )
            assert h["x-liebian-delivery"].startswith("dlv_")
        events = [json.loads(req["body"]) for req in rx.requests]
        assert [e["type"] for e in events] == ["reward.granted", "reward.approved"]
        data = events[1]["data"]
        assert data["reward_id"] == r.id and data["person_id"] == 4242 and data["value_fen"] == 888
        assert data["from_state"] == "pending" and data["state"] == "approved"
        assert set(data) == {
            "reward_id",
            "campaign_id",
            "person_id",
            "reward_code",
            "value_fen",
            "from_state",
            "state",
            "held_for_review",
            "source_ref",
            "ledger_seq",
            "entry_hash",
        }
        with session_scope() as s:
            entry = service.entries(s)[1]
            assert data["ledger_seq"] == entry["seq"] and data["entry_hash"] == entry["hash"]
            assert {d.status for d in webhooks.list_deliveries(s)} == {"delivered"}


def test_failing_receiver_is_retried_with_backoff_then_succeeds(store):
    with Receiver(script=[503, 500]) as rx:
        _endpoint(rx.url)
        with session_scope() as s:
            grant(s, "g1")
        now = utcnow()
        assert _deliver(now) == 1  # 503
        assert _deliver(now) == 0  # not due again yet
        assert _deliver(now + webhooks.backoff(1) + timedelta(seconds=1)) == 1  # 500
        with session_scope() as s:
            d = webhooks.list_deliveries(s)[0]
            assert d.status == "pending" and d.attempts == 2 and d.last_status_code == 500
        later = now + webhooks.backoff(1) + webhooks.backoff(2) + timedelta(seconds=2)
        assert _deliver(later - timedelta(seconds=3)) == 0  # the second back-off is twice the first
        assert _deliver(later) == 1
        with session_scope() as s:
            detail = webhooks.get_delivery(s, d.id)
        assert detail.status == "delivered" and detail.attempts == 3
        assert [a["status_code"] for a in detail.log] == [503, 500, 200]
        assert "HTTP 503" in detail.log[0]["error"] and detail.log[2]["error"] == ""
        # every attempt of one delivery carries the same delivery id and body
        assert len({r["headers"]["X-Liebian-Delivery"] for r in rx.requests}) == 1
        assert len({r["body"] for r in rx.requests}) == 1


def test_timeout_is_recorded_as_a_failed_attempt(sqlite_store):
    with Receiver(script=["sleep"], sleep_s=1.5) as rx:
        _endpoint(rx.url)
        with session_scope() as s:
            grant(s, "g1")
        assert _deliver(utcnow(), timeout=0.3) == 1
        with session_scope() as s:
            d = webhooks.get_delivery(s, webhooks.list_deliveries(s)[0].id)
        assert d.status == "pending" and d.log[0]["status_code"] is None
        assert "Timeout" in d.log[0]["error"]


def test_dead_after_max_tries_then_replay_delivers(sqlite_store):
    with Receiver(script=[500] * webhooks.MAX_TRIES) as rx:
        _endpoint(rx.url)
        with session_scope() as s:
            grant(s, "g1")
        now = utcnow()
        for _ in range(webhooks.MAX_TRIES):
            assert _deliver(now) == 1
            now += timedelta(seconds=webhooks.BACKOFF_MAX_S + 1)
        with session_scope() as s:
            d = webhooks.list_deliveries(s)[0]
        assert d.status == "dead" and d.attempts == webhooks.MAX_TRIES
        assert _deliver(now) == 0
        with session_scope() as s:
            webhooks.replay(s, d.id, now)
        assert _deliver(now) == 1
        with session_scope() as s:
            after = webhooks.get_delivery(s, d.id)
        assert after.status == "delivered" and after.attempts == webhooks.MAX_TRIES + 1
        assert len(rx.requests) == webhooks.MAX_TRIES + 1


def test_replay_of_a_delivered_delivery_sends_the_same_body_again(sqlite_store):
    with Receiver() as rx:
        _endpoint(rx.url)
        with session_scope() as s:
            grant(s, "g1")
        _deliver(utcnow())
        with session_scope() as s:
            d = webhooks.list_deliveries(s)[0]
            webhooks.replay(s, d.id)
        _deliver(utcnow())
        assert len(rx.requests) == 2 and rx.requests[0]["body"] == rx.requests[1]["body"]
        assert (
            rx.requests[0]["headers"]["X-Liebian-Delivery"] == rx.requests[1]["headers"]["X-Liebian-Delivery"]
        )
    with session_scope() as s, pytest.raises(LedgerError) as err:
        webhooks.replay(s, 999)
    assert err.value.status == 404


def test_event_filter_inactive_endpoints_and_rollback(sqlite_store):
    with Receiver() as rx, Receiver() as other:
        only_issued = _endpoint(rx.url, ["reward.issued"])
        off = _endpoint(other.url)
        with session_scope() as s:
            webhooks.update_endpoint(s, off, active=False)
            r = grant(s, "g1")
            service.transition(s, r.id, "approved", idempotency_key="a", actor="op")
            service.transition(s, r.id, "issued", idempotency_key="i", actor="op")
        with pytest.raises(RuntimeError), session_scope() as s:
            grant(s, "rolled-back")
            raise RuntimeError("the caller's transaction fails after the grant")
        _deliver(utcnow())
        assert [json.loads(q["body"])["type"] for q in rx.requests] == ["reward.issued"]
        assert other.requests == []
        with session_scope() as s:
            assert len(webhooks.list_deliveries(s)) == 1
            assert len(service.list_rewards(s)) == 1  # nothing of the rolled-back grant remains
            assert webhooks.list_deliveries(s, endpoint_id=only_issued)[0].event_type == "reward.issued"


def test_endpoint_validation(sqlite_store):
    with session_scope() as s:
        with pytest.raises(LedgerError, match="url"):
            webhooks.create_endpoint(s, "ftp://example.com/x")
        with pytest.raises(LedgerError, match="reward.paid"):
            webhooks.create_endpoint(s, "https://example.com/x", ["reward.paid"])
        view, secret = webhooks.create_endpoint(s, "https://example.com/x")
        assert secret.startswith("whsec_") and len(secret) > 30
        webhooks.delete_endpoint(s, view.id)
        assert webhooks.list_endpoints(s) == []
        with pytest.raises(LedgerError) as err:
            webhooks.get_endpoint(s, view.id)
        assert err.value.status == 404


def test_endpoints_created_changed_or_deleted_between_grants_get_the_next_grants(store):
    """The active endpoints are read once per transaction: an endpoint created, changed or deleted
    after a grant (in a later transaction, or in the same one) is seen by the next grant."""
    with Receiver() as a, Receiver() as b, Receiver() as c:
        first = _endpoint(a.url)
        with session_scope() as s:
            g1 = grant(s, "g1")
        _endpoint(b.url)  # created after a first grant, in its own transaction
        with session_scope() as s:
            g2 = grant(s, "g2")
        with session_scope() as s:  # created and changed inside a transaction that granted already
            g3 = grant(s, "g3")
            webhooks.create_endpoint(s, c.url, secret=SECRET)
            g4 = grant(s, "g4")
            webhooks.update_endpoint(s, first, event_types=["reward.issued"])
            g5 = grant(s, "g5")
            webhooks.update_endpoint(s, first, event_types=["reward.granted"])
            g6 = grant(s, "g6")
        _deliver(utcnow())  # before the delete, which cancels the endpoint's pending deliveries
        with session_scope() as s:
            webhooks.delete_endpoint(s, first)
            g7 = grant(s, "g7")
        _deliver(utcnow())

        def got(rx: Receiver) -> list[int]:
            return sorted(json.loads(q["body"])["data"]["reward_id"] for q in rx.requests)

        assert got(a) == [g1.id, g2.id, g3.id, g4.id, g6.id]
        assert got(b) == [g2.id, g3.id, g4.id, g5.id, g6.id, g7.id]
        assert got(c) == [g4.id, g5.id, g6.id, g7.id]
