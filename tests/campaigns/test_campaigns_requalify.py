"""Reward identity survives revocation (issue #19): a tier whose reward a refund revoked is earned
again by a later friend, a retried report maps to the same reward, and an inviter never holds two
live rewards of one tier. Through the HTTP API, on SQLite and PostgreSQL."""

from __future__ import annotations

from collections import Counter

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient

from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import service as rewards
from liebian.web.app import create_app

ONE_TIER = [{"threshold": 1, "reward": {"code": "T1", "value_fen": 500}}]


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


def pid(uid: str) -> int:
    with session_scope() as s:
        return identity.find_person(s, "unionid", uid)


def held(cid: str) -> Counter:
    with session_scope() as s:
        return Counter(
            (r.person_id, r.reward_code, r.state) for r in rewards.list_rewards(s, campaign_id=cid)
        )


def joins(api: Api, code: str, uid: str, cid: str, order_id: str) -> dict:
    assert api.accept(code, uid).status_code == 201
    r = api.order(cid, uid, order_id)
    assert r.status_code == 200, r.text
    return r.json()


def chain_ok() -> bool:
    with session_scope() as s:
        return rewards.verify_chain(s).ok


def test_a_refunded_tier_is_earned_again_by_the_next_friend(api: Api) -> None:
    api.create(rules("invite_task", tiers=ONE_TIER), "again")
    code = api.invite("again", "alice")["code"]
    assert joins(api, code, "bob", "again", "o-bob")["status"] == "qualified"
    refunded = api.refund("again", "o-bob")
    assert refunded.status_code == 200 and len(refunded.json()["revoked"]) == 1
    assert api.progress("again", "alice")["qualified"] == 0

    second = joins(api, code, "carl", "again", "o-carl")  # answered 409 idempotency_conflict before
    assert second["status"] == "qualified", second
    alice = pid("alice")
    tier = [g for g in second["grants"] if g["person_id"] == alice]
    assert [(g["reward_code"], g["state"]) for g in tier] == [("T1", "granted")]
    assert api.progress("again", "alice")["qualified"] == 1
    assert held("again") == Counter({(alice, "T1", "revoked"): 1, (alice, "T1", "pending"): 1})

    # a retried report maps to the same reward; a third friend does not earn tier 1 a second time
    retry = api.order("again", "carl", "o-carl").json()
    assert retry["duplicate"] is True and retry["status"] == "qualified"
    third = joins(api, code, "dan", "again", "o-dan")
    assert third["status"] == "qualified" and not [g for g in third["grants"] if g["person_id"] == alice]
    assert held("again") == Counter({(alice, "T1", "revoked"): 1, (alice, "T1", "pending"): 1})
    assert chain_ok()


def test_at_most_one_live_reward_per_tier(api: Api) -> None:
    """Tiers 1 and 3: the friend whose refund revoked tier 1 is replaced; reaching 3 again earns
    tier 1 back and leaves tier 3 alone (it is live)."""
    api.create(rules("invite_task", per_inviter_cap=5), "tiers2")
    code = api.invite("tiers2", "alice")["code"]
    for uid in ("bob", "carl", "dan"):
        joins(api, code, uid, "tiers2", f"o-{uid}")
    alice = pid("alice")
    assert held("tiers2") == Counter({(alice, "T1", "pending"): 1, (alice, "T3", "pending"): 1})
    assert api.refund("tiers2", "o-bob").json()["revoked"]  # bob's order reached tier 1
    joins(api, code, "erin", "tiers2", "o-erin")  # count 3 again
    assert held("tiers2") == Counter(
        {(alice, "T1", "revoked"): 1, (alice, "T1", "pending"): 1, (alice, "T3", "pending"): 1}
    )
    joins(api, code, "fay", "tiers2", "o-fay")  # count 4: nothing more
    live = Counter(
        code for (_p, code, state), n in held("tiers2").items() for _ in range(n) if state == "pending"
    )
    assert live == Counter({"T1": 1, "T3": 1})
    assert chain_ok()


def test_assist_unlocked_again_after_a_refund(api: Api) -> None:
    doc = rules("assist", qualifying_event={"kind": "first_order"})
    api.create(doc, "cut2")
    code = api.invite("cut2", "alice")["code"]
    joins(api, code, "bob", "cut2", "o-bob")
    joins(api, code, "carl", "cut2", "o-carl")  # two assists: CUT unlocked
    assert api.refund("cut2", "o-carl").json()["revoked"]
    joins(api, code, "dan", "cut2", "o-dan")
    alice = pid("alice")
    assert held("cut2")[(alice, "CUT", "revoked")] == 1 and held("cut2")[(alice, "CUT", "pending")] == 1
    assert chain_ok()
