"""The registry of sealed fields is complete, and key rotation walks it: after a rotation and the
retirement of the old key, journeys still sign their webhooks. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, Text, select

from liebian.automation import service as automation
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.monitor import notifications
from liebian.privacy import crypto, retention
from liebian.privacy.sealed import SEALED_FIELDS
from liebian.privacy.service import store_tables
from liebian.reports import service as reports
from liebian.rewards import webhooks
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "automation"))
sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from automation_helpers import Receiver, add_events, make_persons, webhook  # noqa: E402
from campaign_helpers import Api, rules  # noqa: E402

# a ciphertext of privacy.crypto: `k<key id>:` + base64 of nonce ‖ ciphertext ‖ tag (≥ 28 bytes)
CIPHERTEXT = re.compile(r"k([A-Za-z0-9]{1,16}):([A-Za-z0-9+/]{36,}={0,2})")
NOON = datetime(2026, 11, 2, 4, 0)  # 12:00 in Asia/Shanghai: outside the quiet hours


def _seal_campaign_secrets(admin_headers: dict[str, str], public_headers: dict[str, str]) -> None:
    """A shop's order-callback secret and a public-key conversion waiting for a trusted order."""
    app = create_app(run_migrations=False)
    with (
        TestClient(app, headers=admin_headers) as op_client,
        TestClient(app, headers=public_headers) as front,
    ):
        op, public = Api(op_client), Api(front)
        assert op_client.post("/api/v1/orders/shops", json={"shop_id": "shop-1"}).status_code == 201
        tiers = [{"threshold": 1, "reward": {"code": "T1", "value_fen": 500}}]
        op.create(rules("invite_task", tiers=tiers), "sealed")
        code = op.invite("sealed", "alice")["code"]
        assert public.accept(code, "bob").status_code == 201
        assert public.order("sealed", "bob", "o-1", amount_fen=6000).json()["status"] == "pending"


def _seal_everything(receiver_url: str, admin_headers: dict[str, str], public_headers: dict[str, str]) -> int:
    """One of each thing liebian seals, through the services (and routes) that make them."""
    _seal_campaign_secrets(admin_headers, public_headers)
    make_persons(1)
    with session_scope() as s:
        identity.resolve(s, [identity.RawIdentifier("phone", "13800138000")], source="test")
        webhooks.create_endpoint(s, "https://hooks.example.com/rewards", secret="whsec_0123456789abcdef")
        reports.subscribe(
            s, "weekly", "webhook", "https://hooks.example.com/reports", "report-secret-0123456789"
        )
        notifications.add_channel(
            s, "ops", "webhook", "https://hooks.example.com/ops", "s3cret-ops", actor="t"
        )
        journey = automation.create_journey(
            s, "wake-up", {"trigger": {"type": "silence", "days": 14}, "steps": [webhook(receiver_url, "sms")],
                           "holdout_pct": 0},
        )  # fmt: skip
    return journey.id


def _sealed_cells() -> set[tuple[str, str]]:
    """(table, column) of every stored text that holds a ciphertext which decrypts with our keys."""
    found = set()
    with session_scope() as s:
        for table in store_tables(s):
            columns = [c for c in table.columns if isinstance(c.type, String | Text)]
            for column in columns:
                for (value,) in s.execute(select(column).where(column.is_not(None))):
                    for match in CIPHERTEXT.finditer(value or ""):
                        try:
                            crypto.decrypt(match.group(0))
                        except Exception:  # noqa: S112  # looks like one, is not one of ours
                            continue
                        found.add((table.name, column.name))
    return found


@pytest.fixture
def receiver(allow_private_urls):
    r = Receiver()
    yield r
    r.close()


def test_every_column_holding_a_ciphertext_is_in_the_registry(
    store, receiver, admin_headers, public_headers
) -> None:
    _seal_everything(receiver.url, admin_headers, public_headers)
    registered = {(f.table, f.column) for f in SEALED_FIELDS}
    found = _sealed_cells()
    assert found - registered == set(), "sealed values outside privacy.sealed.SEALED_FIELDS"
    # the scan sees every kind made above (so it could fail), and so does key_usage
    assert found == registered
    with session_scope() as s:
        assert retention.key_usage(s) == {"1": len(registered)}
    # and by name: a column called *encrypted* is sealed by convention
    named = {(t.name, c.name) for t in store_tables() for c in t.columns if "encrypted" in c.name}
    assert named <= registered


def test_rotation_reseals_journey_secrets_and_the_journey_signs_after_the_old_key_is_retired(
    store, receiver, admin_headers, public_headers
) -> None:
    jid = _seal_everything(receiver.url, admin_headers, public_headers)
    new = crypto.rotate_encryption_key()
    with session_scope() as s:
        counts = retention.reencrypt_all(s)
        usage = retention.key_usage(s)
    assert counts["journeys"] == 1
    assert usage == {new: len(SEALED_FIELDS)}  # nothing left under key 1: it may be retired
    crypto.retire_encryption_key("1")
    (person,) = make_persons(1, prefix="after")
    add_events([(person, "page_view", NOON - timedelta(days=20))])
    out = automation.run(jid, NOON)
    assert out["actions"] == {"sent": 1}, out
    assert receiver.persons("/sms") == [person] and receiver.bad_signatures == 0  # signed as before
