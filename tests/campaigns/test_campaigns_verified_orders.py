"""Verified conversions (issue #19): the public front-end key can no longer get an inviter
rewarded with a made-up order. Its conversion is pending until a trusted source confirms the order
(a signed shop callback, the operator's order feed, an import or the collector with a non-public
key); the trusted order's amount decides; an unconfirmed one is rejected and audited.
Through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient

from liebian.campaigns import jobs as campaign_jobs
from liebian.campaigns import verification
from liebian.campaigns.models import VerifiedOrder
from liebian.config import reset_settings_cache
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import service as rewards
from liebian.web.app import create_app

MIN_5000 = {"kind": "order_min_amount", "min_amount_fen": 5000}
ONE_TIER = [{"threshold": 1, "reward": {"code": "T1", "value_fen": 500}}]
CB = "/api/v1/orders/callback"


@pytest.fixture
def clients(store: str, admin_headers, public_headers):
    app = create_app(run_migrations=False)
    with TestClient(app, headers=admin_headers) as op, TestClient(app, headers=public_headers) as front:
        yield Api(op), Api(front)


@pytest.fixture
def anonymous(clients):
    with TestClient(create_app(run_migrations=False)) as c:
        yield c


def launch(op: Api, cid: str, **extra) -> str:
    op.create(rules("invite_task", tiers=ONE_TIER, qualifying_event=MIN_5000, **extra), cid)
    return op.invite(cid, "alice")["code"]


def ledger(cid: str) -> list[tuple[str, str]]:
    with session_scope() as s:
        return sorted((r.reward_code, r.state) for r in rewards.list_rewards(s, campaign_id=cid))


def shop(op: Api, shop_id: str = "shop-1") -> str:
    r = op.c.post("/api/v1/orders/shops", json={"shop_id": shop_id})
    assert r.status_code == 201, r.text
    return r.json()["secret"]


def callback(client, secret: str | None, shop_id: str = "shop-1", sign_with: str | None = None, **order):
    doc = {
        "shop_id": shop_id,
        "order_id": "o-bob",
        "status": "paid",
        "amount_fen": 6000,
        "currency": "CNY",
        "buyer": {"id_type": "unionid", "id": "bob"},
        **order,
    }
    body = json.dumps(doc).encode()
    headers = {"Content-Type": "application/json"}
    if secret is not None:
        headers["X-Liebian-Signature"] = verification.sign(sign_with or secret, body)
    return client.post(CB, content=body, headers=headers)


def audit_actions(op: Api, cid: str) -> list[str]:
    return [a["action"] for a in op.c.get(f"/api/v1/campaigns/{cid}/audit").json()]


def test_a_made_up_order_from_the_public_key_is_not_rewarded(clients, monkeypatch) -> None:
    op, front = clients
    code = launch(op, "fake")
    assert front.accept(code, "bob").status_code == 201
    r = front.order("fake", "bob", "made-up-1", amount_fen=999_900)  # rewarded before: qualified
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "pending" and r.json()["grants"] == [] and r.json()["verified_by"] is None
    assert ledger("fake") == [] and op.progress("fake", "alice")["qualified"] == 0
    # the same report again changes nothing
    assert front.order("fake", "bob", "made-up-1", amount_fen=999_900).json()["duplicate"] is True

    # nobody confirms it: the verify-orders job rejects it once it is older than the configured time
    assert campaign_jobs.verify_orders()["rejected"] == 0  # not due yet (72 h by default)
    monkeypatch.setenv("LIEBIAN_CONVERSION_CONFIRM_HOURS", "0.0000001")
    reset_settings_cache()
    assert campaign_jobs.verify_orders() == {"confirmed_from_imports": 0, "rejected": 1}
    again = front.order("fake", "bob", "made-up-1").json()
    assert again["status"] == "rejected" and "no trusted source confirmed" in again["reason"]
    assert "order.reject" in audit_actions(op, "fake")
    assert ledger("fake") == [] and op.progress("fake", "alice")["qualified"] == 0
    assert campaign_jobs.verify_orders()["rejected"] == 0  # rejected once


def test_expire_pending_is_judged_by_the_clock(clients) -> None:
    op, front = clients
    code = launch(op, "clock")
    front.accept(code, "bob")
    front.order("clock", "bob", "o-late")
    with session_scope() as s:
        assert verification.expire_pending(s, utcnow() + timedelta(hours=71)) == 0
    with session_scope() as s:
        assert verification.expire_pending(s, utcnow() + timedelta(hours=73)) == 1


def test_a_signed_callback_confirms_with_the_trusted_amount(clients, anonymous) -> None:
    op, front = clients
    code = launch(op, "signed")
    secret = shop(op)
    for uid in ("bob", "carl"):
        assert front.accept(code, uid).status_code == 201
    # both claim a big order; the shop's server knows better
    assert front.order("signed", "carl", "o-carl", amount_fen=999_900).json()["status"] == "pending"
    assert front.order("signed", "bob", "o-bob", amount_fen=999_900).json()["status"] == "pending"
    small = callback(
        anonymous, secret, order_id="o-carl", amount_fen=100, buyer={"id_type": "unionid", "id": "carl"}
    )
    assert small.status_code == 200, small.text
    (carl,) = small.json()["confirmed"]
    assert (
        carl["status"] == "not_qualifying" and carl["amount_fen"] == 100 and carl["verified_by"] == "callback"
    )
    assert ledger("signed") == []

    r = callback(anonymous, secret)  # bob's order: 6000 fen, above the campaign's minimum of 5000
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "callback" and body["shop_id"] == "shop-1" and body["amount_fen"] == 6000
    (bob,) = body["confirmed"]
    assert bob["status"] == "qualified" and bob["amount_fen"] == 6000 and bob["verified_by"] == "callback"
    assert ledger("signed") == [("T1", "pending")]
    assert op.progress("signed", "alice")["qualified"] == 1
    # the shop's server retries: nothing more
    assert callback(anonymous, secret).json()["confirmed"] == []
    assert ledger("signed") == [("T1", "pending")]
    # the order is refunded in the shop: the reward goes
    refunded = callback(anonymous, secret, status="refunded")
    assert refunded.status_code == 200 and refunded.json()["confirmed"][0]["status"] == "refunded"
    assert ledger("signed") == [("T1", "revoked")]
    with session_scope() as s:
        assert rewards.verify_chain(s).ok


def test_an_order_the_shop_reports_first_confirms_the_later_report(clients, anonymous) -> None:
    op, front = clients
    code = launch(op, "first")
    secret = shop(op)
    front.accept(code, "bob")
    assert callback(anonymous, secret).json()["confirmed"] == []
    r = front.order("first", "bob", "o-bob", amount_fen=1).json()
    assert r["status"] == "qualified" and r["amount_fen"] == 6000 and r["verified_by"] == "callback"
    # another participant reporting bob's order: refused in this campaign, rejected in another
    front.accept(code, "mallory")
    stolen = front.order("first", "mallory", "o-bob")
    assert stolen.status_code == 409 and stolen.json()["code"] == "order_conflict"
    other = launch(op, "first2")
    front.accept(other, "mallory2")
    elsewhere = front.order("first2", "mallory2", "o-bob").json()
    assert elsewhere["status"] == "rejected" and "another buyer" in elsewhere["reason"]
    assert ledger("first2") == []


def test_bad_signatures_are_refused_with_a_clear_error(clients, anonymous) -> None:
    op, front = clients
    code = launch(op, "badsig")
    secret = shop(op)
    front.accept(code, "bob")
    front.order("badsig", "bob", "o-bob")
    wrong = callback(anonymous, secret, sign_with="shsec_not-the-secret")
    assert wrong.status_code == 401 and wrong.json()["code"] == "bad_signature"
    assert "HMAC-SHA256" in wrong.json()["detail"]
    missing = callback(anonymous, None)
    assert missing.status_code == 401 and missing.json()["code"] == "missing_signature"
    unknown = callback(anonymous, secret, shop_id="shop-2")
    assert unknown.status_code == 401 and unknown.json()["code"] == "unknown_shop"
    assert front.order("badsig", "bob", "o-bob").json()["status"] == "pending"  # nothing got through
    genuine = callback(anonymous, secret)
    assert genuine.status_code == 200 and genuine.json()["confirmed"][0]["amount_fen"] == 6000
    # the same signature on a body changed on the way (a bigger amount)
    body = json.dumps({**json.loads(genuine.request.content), "amount_fen": 9_999_999}).encode()
    signed = {"X-Liebian-Signature": genuine.request.headers["X-Liebian-Signature"]}
    forged = anonymous.post(CB, content=body, headers=signed)
    assert forged.status_code == 401 and forged.json()["code"] == "bad_signature"
    assert front.order("badsig", "bob", "o-bob").json()["amount_fen"] == 6000
    garbage = anonymous.post(CB, content=b"{not json", headers={"X-Liebian-Signature": "sha256=00"})
    assert garbage.status_code == 401
    # a revoked shop's secret no longer works
    assert op.c.delete("/api/v1/orders/shops/shop-1").json()["revoked_at"] is not None
    assert callback(anonymous, secret).status_code == 401
    # the shop list never shows a secret
    assert [s.get("secret") for s in op.c.get("/api/v1/orders/shops").json()] == [None]


def test_operator_key_conversions_qualify_at_once_and_confirm_pending_ones(clients) -> None:
    op, front = clients
    code = launch(op, "feed")
    front.accept(code, "bob")
    front.accept(code, "carl")
    direct = op.order("feed", "carl", "o-carl", amount_fen=7000).json()
    assert direct["status"] == "qualified" and direct["verified_by"] == "operator"
    assert front.order("feed", "bob", "o-bob", amount_fen=999_900).json()["status"] == "pending"
    fed = op.order("feed", "bob", "o-bob", amount_fen=5500).json()  # the brand's order feed
    assert fed["status"] == "qualified" and fed["amount_fen"] == 5500 and fed["verified_by"] == "operator"
    assert op.progress("feed", "alice")["qualified"] == 2


def test_orders_from_the_collector_confirm_unless_the_public_key_sent_them(clients) -> None:
    op, front = clients
    code = launch(op, "coll")
    for uid in ("bob", "carl"):
        front.accept(code, uid)
        assert front.order("coll", uid, f"o-{uid}", amount_fen=999_900).json()["status"] == "pending"

    def item(uid: str) -> dict:
        now = utcnow().strftime("%Y-%m-%dT%H:%M:%SZ")
        return {"order_id": f"o-{uid}", "ts": now, "user_id": uid, "id_type": "unionid",
                "amount": 80, "channel": "小程序", "status": "paid"}  # fmt: skip

    assert front.c.post("/api/v1/orders/batch", json={"items": [item("carl")]}).json()["accepted"] == 1
    assert op.c.post("/api/v1/orders/batch", json={"items": [item("bob")]}).json()["accepted"] == 1
    assert campaign_jobs.verify_orders() == {"confirmed_from_imports": 1, "rejected": 0}
    bob = front.order("coll", "bob", "o-bob").json()
    assert bob["status"] == "qualified" and bob["amount_fen"] == 8000 and bob["verified_by"] == "import"
    assert front.order("coll", "carl", "o-carl").json()["status"] == "pending"
    with session_scope() as s:
        assert identity.find_person(s, "unionid", "bob") == bob["person_id"]


def test_a_report_and_its_confirmation_that_crossed_are_joined_by_the_job(clients) -> None:
    """A pending report committed while a concurrent callback recorded its order (neither saw the
    other): the verify-orders job confirms it from the recorded trusted order."""
    op, front = clients
    code = launch(op, "crossed")
    front.accept(code, "bob")
    bob = front.order("crossed", "bob", "o-bob", amount_fen=999_900).json()
    assert bob["status"] == "pending"
    with session_scope() as s:  # what the concurrent callback's transaction left
        s.add(
            VerifiedOrder(order_id="o-bob", source="callback", person_id=bob["person_id"], event="order",
                          amount_fen=6000, currency="CNY", status="paid", ts=utcnow())
        )  # fmt: skip
    campaign_jobs.verify_orders()
    after = front.order("crossed", "bob", "o-bob").json()
    assert (
        after["status"] == "qualified" and after["amount_fen"] == 6000 and after["verified_by"] == "callback"
    )
    assert ledger("crossed") == [("T1", "pending")]
