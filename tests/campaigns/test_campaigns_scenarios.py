"""End to end, through the HTTP API, once per campaign type, on SQLite and PostgreSQL:
invite → click → signup → order → hold → approve (release_due) → issue → signed webhook to a local
receiver; an order refunded within the hold → its rewards revoked and the budget given back."""

from __future__ import annotations

import json
from collections import Counter
from datetime import timedelta

import httpx
import pytest
from campaign_helpers import Api, Receiver, rules
from fastapi.testclient import TestClient

from liebian.campaigns import outbox
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.identity import service as identity
from liebian.rewards import service as rewards
from liebian.rewards import webhooks
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


@pytest.fixture
def receiver(allow_private_urls):
    with Receiver() as r:
        yield r


@pytest.fixture
def hook(receiver: Receiver, store: str) -> str:
    with session_scope() as s:
        _view, secret = webhooks.create_endpoint(s, receiver.url)
    return secret


def pid(uid: str) -> int:
    with session_scope() as s:
        return identity.find_person(s, "unionid", uid)


def ledger(cid: str) -> list[rewards.RewardView]:
    with session_scope() as s:
        return rewards.list_rewards(s, campaign_id=cid, limit=1000)


def held(cid: str) -> Counter:
    """(person uid-less id, reward code, state) counts of the campaign's rewards."""
    return Counter((r.person_id, r.reward_code, r.state) for r in ledger(cid))


def friend_joins(
    api: Api, code: str, uid: str, cid: str, order_id: str | None = None, amount: int = 9900
) -> dict:
    assert api.click(code, uid).status_code == 302
    r = api.accept(code, uid)
    assert r.status_code == 201, r.text
    if order_id:
        o = api.order(cid, uid, order_id, amount)
        assert o.status_code == 200, o.text
        return o.json()
    return r.json()


def settle(api: Api, cid: str, receiver: Receiver, secret: str) -> list[rewards.RewardView]:
    """After the hold: release_due approves, every approved reward is issued, webhooks go out."""
    later = utcnow() + timedelta(days=8)
    pending = [r for r in ledger(cid) if r.state == "pending"]
    with session_scope() as s:
        assert rewards.release_due(s, later) >= len(pending)
    approved = [r for r in ledger(cid) if r.state == "approved"]
    assert {r.id for r in approved} == {r.id for r in pending}
    with session_scope() as s:
        for r in approved:
            rewards.transition(s, r.id, "issued", idempotency_key=f"issue:{r.id}", actor="test")
    with session_scope() as s, httpx.Client(timeout=5) as client:
        webhooks.deliver_due(s, later + timedelta(days=1), client)
    issued = {r.id for r in ledger(cid) if r.state == "issued"}
    assert issued == {r.id for r in approved}
    delivered = {}
    for req in receiver.requests:
        h = {k.lower(): v for k, v in req["headers"].items()}
        assert webhooks.verify_signature(
            secret, h["x-liebian-timestamp"], req["body"], h["x-liebian-signature"]
        )
        event = json.loads(req["body"])
        if event["type"] == "reward.issued":
            delivered[event["data"]["reward_id"]] = event["data"]
    assert issued <= set(delivered), "every issued reward reaches the receiver"
    for rid in issued:
        assert delivered[rid]["campaign_id"] == cid
    # The budget holds exactly the value of the rewards that were not revoked (independent sum).
    live = sum(r.value_fen for r in ledger(cid) if r.state not in ("revoked", "rejected"))
    assert api.c.get(f"/api/v1/campaigns/{cid}").json()["budget_used_fen"] == live
    return ledger(cid)


def test_invite_task_with_tiers(api: Api, receiver: Receiver, hook: str) -> None:
    api.create(rules("invite_task"), "tiers")
    code = api.invite("tiers", "alice")["code"]
    assert friend_joins(api, code, "bob", "tiers", "o-bob")["status"] == "qualified"
    friend_joins(api, code, "carl", "tiers", "o-carl")
    friend_joins(api, code, "dan", "tiers", "o-dan")
    over = friend_joins(api, code, "erin", "tiers", "o-erin")
    assert "inviter_cap_reached" in over["reason"]  # cap 3: the 4th friend earns the inviter nothing
    alice = pid("alice")
    assert held("tiers") == Counter({(alice, "T1", "pending"): 1, (alice, "T3", "pending"): 1})
    assert api.progress("tiers", "alice")["qualified"] == 3

    r = api.refund("tiers", "o-dan")  # dan's order crossed tier 3: refunded within the hold
    assert r.status_code == 200 and len(r.json()["revoked"]) == 1
    assert held("tiers")[(alice, "T3", "revoked")] == 1
    assert api.progress("tiers", "alice")["qualified"] == 2

    final = settle(api, "tiers", receiver, hook)
    assert Counter((r.reward_code, r.state) for r in final) == Counter(
        {("T1", "issued"): 1, ("T3", "revoked"): 1}
    )


def test_double_sided(api: Api, receiver: Receiver, hook: str) -> None:
    api.create(rules("double_sided"), "ds")
    code = api.invite("ds", "alice", channel="wecom_group")["code"]
    friend_joins(api, code, "bob", "ds", "o-bob")
    friend_joins(api, code, "carl", "ds", "o-carl")
    alice, bob, carl = pid("alice"), pid("bob"), pid("carl")
    assert held("ds") == Counter(
        {(alice, "INV", "pending"): 2, (bob, "NEW", "pending"): 1, (carl, "NEW", "pending"): 1}
    )
    assert api.c.get("/api/v1/campaigns/ds").json()["budget_used_fen"] == 2 * 1000 + 2 * 500
    assert api.refund("ds", "o-carl").json()["status"] == "refunded"
    assert held("ds")[(carl, "NEW", "revoked")] == 1 and held("ds")[(alice, "INV", "revoked")] == 1
    final = settle(api, "ds", receiver, hook)
    assert sorted((r.person_id, r.reward_code) for r in final if r.state == "issued") == sorted(
        [(alice, "INV"), (bob, "NEW")]
    )
    # The referrals reached the warehouse as invite events and edges, with the channel code.
    with session_scope() as s:
        assert outbox.flush_warehouse(s) >= 0
    with warehouse.connect() as con:
        clicks = con.execute(
            "SELECT count(*) FROM events WHERE event = 'invite_click' AND campaign_id = 'ds'"
        ).fetchone()
        accepts = con.execute(
            "SELECT person_id, referrer_person_id, channel FROM events WHERE event = 'invite_accept' ORDER BY person_id"
        ).fetchall()
        edges = con.execute(
            "SELECT inviter_person_id, invitee_person_id FROM referral_edges ORDER BY 2"
        ).fetchall()
    assert clicks == (2,)
    assert sorted(accepts) == sorted([(bob, alice, "wecom_group"), (carl, alice, "wecom_group")])
    assert sorted(edges) == sorted([(alice, bob), (alice, carl)])


def test_group_buy_three_way(api: Api, receiver: Receiver, hook: str) -> None:
    api.create(rules("group_buy"), "gb")
    code = api.invite("gb", "alice")["code"]
    friend_joins(api, code, "bob", "gb")
    bob_code = api.invite("gb", "bob")["code"]  # bob brings carl into alice's group
    friend_joins(api, bob_code, "carl", "gb")
    assert api.order("gb", "bob", "o-bob").json()["status"] == "qualified"
    assert ledger("gb") == []  # one of two joiners paid: the group is not complete
    api.order("gb", "carl", "o-carl")
    alice, bob, carl = pid("alice"), pid("bob"), pid("carl")
    assert held("gb") == Counter(
        {
            (alice, "G-INIT", "pending"): 1,
            (bob, "G-JOIN", "pending"): 1,
            (carl, "G-JOIN", "pending"): 1,
            (bob, "G-BRING", "pending"): 1,
        }
    )
    tree = {r["friend_person_id"]: r for r in api.c.get("/api/v1/campaigns/gb/referrals").json()}
    assert tree[carl]["generation"] == 2 and tree[carl]["parent_referral_id"] == tree[bob]["referral_id"]
    # A complete group takes nobody else.
    assert api.accept(code, "late").json()["code"] == "group_complete"

    # A second group completes and its completing order is refunded: that group's rewards go.
    dave_code = api.invite("gb", "dave")["code"]
    friend_joins(api, dave_code, "erin", "gb", "o-erin")
    friend_joins(api, dave_code, "fay", "gb", "o-fay")
    assert len([r for r in ledger("gb") if r.source_ref == "order:gb:o-fay"]) == 3
    assert len(api.refund("gb", "o-fay").json()["revoked"]) == 3
    final = settle(api, "gb", receiver, hook)
    assert {(r.person_id, r.reward_code) for r in final if r.state == "issued"} == {
        (alice, "G-INIT"),
        (bob, "G-JOIN"),
        (carl, "G-JOIN"),
        (bob, "G-BRING"),
    }


def test_friend_assist(api: Api, receiver: Receiver, hook: str) -> None:
    api.create(rules("assist"), "cut")
    code = api.invite("cut", "alice")["code"]
    api.order("cut", "bob", "earlier-order")  # bob is known already: assists need no new friend
    first = friend_joins(api, code, "bob", "cut")
    assert first["grants"] == []
    assert api.accept(code, "bob").json()["code"] == "already_accepted"  # one assist per friend
    second = friend_joins(api, code, "carl", "cut")
    assert [g["reward_code"] for g in second["grants"]] == ["CUT"]
    friend_joins(api, code, "dan", "cut")  # a third assist unlocks nothing more
    assert held("cut") == Counter({(pid("alice"), "CUT", "pending"): 1})
    final = settle(api, "cut", receiver, hook)
    assert [(r.reward_code, r.state) for r in final] == [("CUT", "issued")]


def test_share_for_coupon(api: Api, receiver: Receiver, hook: str) -> None:
    api.create(rules("share_coupon", shares_required=1), "coupon")
    code = api.invite("coupon", "alice")["code"]
    claim = {"id_type": "unionid", "id": "alice"}
    r = api.c.post("/api/v1/campaigns/coupon/claims", json=claim)
    assert r.status_code == 409 and r.json()["code"] == "not_shared"
    friend_joins(api, code, "bob", "coupon")  # bob opened the link and signed up: his welcome coupon
    first = api.c.post("/api/v1/campaigns/coupon/claims", json=claim)
    again = api.c.post("/api/v1/campaigns/coupon/claims", json=claim)
    assert first.status_code == again.status_code == 200
    assert first.json()["reward_id"] == again.json()["reward_id"]  # claiming twice gives one coupon
    assert held("coupon") == Counter(
        {(pid("alice"), "SHARE", "pending"): 1, (pid("bob"), "WELCOME", "pending"): 1}
    )
    final = settle(api, "coupon", receiver, hook)
    assert {(r.reward_code, r.state) for r in final} == {("SHARE", "issued"), ("WELCOME", "issued")}


def test_leaderboard(api: Api, receiver: Receiver, hook: str) -> None:
    api.create(rules("leaderboard"), "lb")
    n = 0
    for inviter, friends in (("alice", 3), ("bob", 2), ("carl", 1)):
        code = api.invite("lb", inviter, nickname=f"{inviter}酱")["code"]
        for _ in range(friends):
            n += 1
            friend_joins(api, code, f"f{n}", "lb", f"o{n}")
    board = api.c.get("/api/v1/campaigns/lb/leaderboard").json()
    assert [(b["person_id"], b["qualified"]) for b in board] == [
        (pid("alice"), 3),
        (pid("bob"), 2),
        (pid("carl"), 1),
    ]
    assert board[0]["nickname"] == "alice酱"
    assert api.refund("lb", "o1").json()["status"] == "refunded"  # alice falls to 2, reached before bob
    board = api.c.get("/api/v1/campaigns/lb/leaderboard").json()
    assert [b["qualified"] for b in board] == [2, 2, 1]
    assert ledger("lb") == []
    assert api.c.post("/api/v1/campaigns/lb/end").json()["status"] == "ended"
    assert held("lb") == Counter({(pid("alice"), "GOLD", "pending"): 1, (pid("bob"), "SILVER", "pending"): 1})
    api.c.post("/api/v1/campaigns/lb/end")  # ending twice grants nothing more
    final = settle(api, "lb", receiver, hook)
    assert len(final) == 2
