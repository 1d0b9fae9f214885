"""A campaign conversion in another currency counts in CNY with the user's dated rate (operator
key: judged on the converted amount), or is a 422 naming `currency` when no rate covers its day.
Through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient

from liebian import fx
from liebian.config import get_settings, reset_settings_cache
from liebian.db.base import utcnow
from liebian.web.app import create_app

MIN_5000 = {"kind": "order_min_amount", "min_amount_fen": 5000}
ONE_TIER = [{"threshold": 1, "reward": {"code": "T1", "value_fen": 500}}]


@pytest.fixture
def clients(store: str, admin_headers, public_headers, monkeypatch):
    yesterday = fx.local_day(utcnow(), get_settings()) - timedelta(days=1)
    monkeypatch.setenv("LIEBIAN_FX_RATES", json.dumps({"USD": {str(yesterday): "7.2345"}}))
    reset_settings_cache()
    app = create_app(run_migrations=False)
    with TestClient(app, headers=admin_headers) as op, TestClient(app, headers=public_headers) as front:
        yield Api(op), Api(front)


def launch(op: Api, front: Api, cid: str) -> None:
    op.create(rules("invite_task", tiers=ONE_TIER, qualifying_event=MIN_5000), cid)
    code = op.invite(cid, "alice")["code"]
    assert front.accept(code, "bob").status_code == 201


def test_a_usd_conversion_from_the_operator_counts_in_cny(clients) -> None:
    op, front = clients
    launch(op, front, "usd")
    # 10.00 USD = 1000 cents × 7.2345 = 7234.5 → 7235 fen, above the 5000 fen minimum
    r = op.order("usd", "bob", "o-usd", amount_fen=1000, currency="USD")
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["amount_fen"], body["currency"], body["status"]) == (7235, "CNY", "qualified")
    assert op.progress("usd", "alice")["qualified"] == 1


def test_a_conversion_in_a_currency_without_a_rate_is_a_422_naming_currency(clients) -> None:
    op, front = clients
    launch(op, front, "eur")
    for api in (op, front):
        r = api.order("eur", "bob", "o-eur", amount_fen=1000, currency="EUR")
        assert r.status_code == 422, r.text
        assert r.json()["field"] == "currency" and r.json()["code"] == "no_fx_rate"
        assert "no EUR→CNY rate on or before" in r.json()["message_en"]
    assert op.progress("eur", "alice")["qualified"] == 0
