"""Fixtures for the reward-ledger tests."""

from __future__ import annotations

import pytest
from rewards_helpers import grant

from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.rewards import service


@pytest.fixture(autouse=True)
def _no_scheduler(monkeypatch):
    """The server's job scheduler would release and deliver behind the tests' backs."""
    monkeypatch.setenv("LIEBIAN_SCHEDULER_ENABLED", "false")
    reset_settings_cache()


@pytest.fixture(autouse=True)
def _local_receivers(allow_private_urls: None) -> None:
    """The webhook receivers of these tests listen on the loopback (liebian.urlguard refuses it)."""


@pytest.fixture
def ledger(store):
    """A small ledger: three rewards moved through several states (9 entries)."""
    with session_scope() as s:
        a = grant(s, "g-a", person_id=1, value_fen=500)
        b = grant(s, "g-b", person_id=2, value_fen=800)
        c = grant(s, "g-c", person_id=1, value_fen=300, campaign_id="c2")
        service.transition(s, a.id, "approved", idempotency_key="a-approve", actor="op")
        service.transition(s, a.id, "issued", idempotency_key="a-issue", actor="op")
        service.transition(s, b.id, "approved", idempotency_key="b-approve", actor="op")
        service.transition(s, c.id, "rejected", idempotency_key="c-reject", actor="op", note="fake order")
        service.transition(s, a.id, "redeemed", idempotency_key="a-redeem", actor="pos")
        service.transition(s, b.id, "revoked", idempotency_key="b-revoke", actor="refund")
    return {"a": a.id, "b": b.id, "c": c.id, "store": store}
