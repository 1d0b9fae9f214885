"""Webhook and notification URLs may not point inside the network (metadata service, loopback,
private, link-local, multicast, reserved): a 422 naming the field when saved, and a refused send when
a stored name points inside later (DNS rebinding). LIEBIAN_ALLOW_PRIVATE_URLS lifts the rule."""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from liebian import urlguard
from liebian.automation import service as automation
from liebian.automation.models import JourneyAction
from liebian.config import reset_settings_cache
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.monitor import notifications
from liebian.monitor import service as monitor
from liebian.monitor.models import Delivery
from liebian.rewards import service as rewards
from liebian.rewards import webhooks
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "automation"))
sys.path.insert(0, str(Path(__file__).parents[1] / "rewards"))
from automation_helpers import Receiver as JourneyReceiver  # noqa: E402
from automation_helpers import add_events, make_persons, webhook  # noqa: E402
from rewards_helpers import Receiver as RewardReceiver  # noqa: E402
from rewards_helpers import grant  # noqa: E402

INSIDE = [
    "http://169.254.169.254/latest/meta-data/",  # cloud metadata (link-local)
    "http://127.0.0.1:8000/hook",  # loopback
    "http://localhost/hook",  # a name resolving to the loopback
    "http://10.1.2.3/hook",  # private
    "http://192.168.0.10/hook",
    "http://[::1]/hook",
    "http://[::ffff:127.0.0.1]/hook",  # IPv4-mapped loopback
    "http://[fd00::1]/hook",  # unique local
    "http://224.0.0.1/hook",  # multicast
    "http://0.0.0.0/hook",  # unspecified
    "http://100.64.0.1/hook",  # carrier-grade NAT, not global
    "http://240.0.0.1/hook",  # reserved
]
NOON = datetime(2026, 11, 2, 4, 0)  # 12:00 in Asia/Shanghai: outside the quiet hours


@pytest.mark.parametrize("url", INSIDE)
def test_internal_addresses_are_refused(data_dir, url: str) -> None:
    with pytest.raises(urlguard.UnsafeURL) as raised:
        urlguard.check_url(url, "url")
    assert raised.value.status == 422 and raised.value.errors[0]["field"] == "url"


def test_public_addresses_pass_and_the_setting_allows_internal_ones(data_dir, monkeypatch) -> None:
    for documentation in ("https://203.0.113.5/hook", "https://[2001:db8::1]/hook"):  # not routable either
        with pytest.raises(urlguard.UnsafeURL):
            urlguard.check_url(documentation, "url")
    assert urlguard.check_url("https://1.1.1.1/hook", "url") == "https://1.1.1.1/hook"
    monkeypatch.setenv("LIEBIAN_ALLOW_PRIVATE_URLS", "1")
    reset_settings_cache()
    assert urlguard.check_url("http://169.254.169.254/x", "url") == "http://169.254.169.254/x"


def test_every_api_that_stores_a_url_answers_422_naming_the_field(store, admin_headers) -> None:
    bad = "http://169.254.169.254/latest/meta-data/"
    journey = {"name": "j", "definition": {"trigger": {"type": "silence", "days": 14},
                                           "steps": [{"action": {"type": "webhook", "channel": "sms", "url": bad,
                                                                 "secret": "journey-secret-0123456789"}}]}}  # fmt: skip
    cases = [
        ("/api/v1/webhooks/endpoints", {"url": bad}, "url"),
        ("/api/v1/monitor/channels", {"name": "ops", "kind": "webhook", "target": bad}, "target"),
        ("/api/v1/reports/subscriptions",
         {"kind": "weekly", "channel": "webhook", "address": bad, "secret": "report-secret-0123456789"}, "address"),
        ("/api/v1/journeys", journey, "definition.steps[0].action.url"),
    ]  # fmt: skip
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        for path, body, field in cases:
            r = client.post(path, json=body)
            assert r.status_code == 422, (path, r.status_code, r.text)
            assert r.json()["code"] == "unsafe_url" and r.json()["errors"][0]["field"] == field, r.json()
            assert "169.254.169.254" in r.json()["detail"]


def _point_inside_later(monkeypatch) -> None:
    """The stored name now resolves inside: here, the setting that let it be saved is lifted."""
    monkeypatch.setenv("LIEBIAN_ALLOW_PRIVATE_URLS", "0")
    reset_settings_cache()


def test_a_reward_webhook_is_not_sent_inside_at_send_time(store, allow_private_urls, monkeypatch) -> None:
    with RewardReceiver() as rx:
        with session_scope() as s:
            webhooks.create_endpoint(s, rx.url, secret="whsec_0123456789abcdef")
        _point_inside_later(monkeypatch)
        with session_scope() as s:
            r = grant(s, "g1", person_id=7, value_fen=100)
            rewards.transition(s, r.id, "approved", idempotency_key="a1", actor="op")
        with session_scope() as s, httpx.Client(timeout=5) as client:
            webhooks.deliver_due(s, utcnow(), client)
        assert rx.requests == []
    with session_scope() as s:
        deliveries = webhooks.list_deliveries(s)
    assert deliveries and all("internal addresses" in d.last_error for d in deliveries)


def test_a_notification_is_not_sent_inside_at_send_time(store, allow_private_urls, monkeypatch) -> None:
    rx = JourneyReceiver()
    try:
        with session_scope() as s:
            notifications.add_channel(s, "hook", "webhook", f"{rx.url}/hook", actor="t")
        _point_inside_later(monkeypatch)
        with session_scope() as s:
            alert, _ = monitor.raise_alert(
                s, kind="threshold", metric="fraud_rate", scope={"campaign_id": "c1"}, level="紧急",
                title="作弊率突增", observed=0.3, threshold=0.02, period="2026-11-19",
            )  # fmt: skip
            notifications.notify_alert(s, alert, "opened")
            (delivery,) = s.scalars(select(Delivery)).all()
        assert rx.received == [] and rx.bad_signatures == 0
        assert delivery.status == "failed" and "internal addresses" in delivery.error
    finally:
        rx.close()


def test_a_journey_webhook_is_not_sent_inside_at_send_time(store, allow_private_urls, monkeypatch) -> None:
    rx = JourneyReceiver()
    try:
        (person,) = make_persons(1)
        add_events([(person, "page_view", NOON - timedelta(days=20))])
        with session_scope() as s:
            jid = automation.create_journey(
                s, "wake-up", {"trigger": {"type": "silence", "days": 14}, "steps": [webhook(rx.url, "sms")],
                               "holdout_pct": 0},
            ).id  # fmt: skip
        _point_inside_later(monkeypatch)
        out = automation.run(jid, NOON)
        assert rx.received == [] and out["actions"] == {"failed": 1}, out
        with session_scope() as s:
            (action,) = s.scalars(select(JourneyAction)).all()
        assert "internal addresses" in action.detail
    finally:
        rx.close()
