"""Caps, budgets and idempotency under concurrent requests against the real server (uvicorn in a
child process), on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from campaign_helpers import Api, rules

from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import service as rewards


@pytest.fixture
def client(live_server: str, admin_headers):
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    with httpx.Client(base_url=live_server, timeout=60, limits=limits, headers=admin_headers) as c:
        yield c


def burst(n: int, fn) -> list[httpx.Response]:
    """Run fn(i) for i < n in n threads released together."""
    gate = threading.Barrier(n)

    def run(i: int) -> httpx.Response:
        gate.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(run, range(n)))


def ledger(cid: str) -> list[rewards.RewardView]:
    with session_scope() as s:
        return rewards.list_rewards(s, campaign_id=cid, limit=1000)


def test_200_duplicate_reports_of_one_order_give_one_reward(client: httpx.Client) -> None:
    api = Api(client)
    doc = rules("invite_task", tiers=[{"threshold": 1, "reward": {"code": "T1", "value_fen": 500}}])
    api.create(doc, "dup")
    code = api.invite("dup", "alice")["code"]
    assert api.accept(code, "bob").status_code == 201
    responses = burst(200, lambda _i: api.order("dup", "bob", "order-1"))
    assert Counter(r.status_code for r in responses) == {200: 200}
    assert sum(not r.json()["duplicate"] for r in responses) == 1
    assert all(r.json()["status"] == "qualified" for r in responses)
    assert [(r.reward_code, r.value_fen) for r in ledger("dup")] == [("T1", 500)]
    assert client.get("/api/v1/campaigns/dup").json()["budget_used_fen"] == 500


def test_100_claims_on_a_budget_of_10_give_exactly_10(client: httpx.Client) -> None:
    api = Api(client)
    api.create(rules("share_coupon", friend_reward=None, budget_fen=10 * 100), "budget")
    for i in range(100):
        assert api.click(api.invite("budget", f"sharer{i}")["code"], f"friend{i}").status_code == 302
    responses = burst(
        100,
        lambda i: client.post(
            "/api/v1/campaigns/budget/claims", json={"id_type": "unionid", "id": f"sharer{i}"}
        ),
    )
    codes = Counter(r.status_code for r in responses)
    assert codes == {200: 10, 409: 90}
    assert {r.json()["code"] for r in responses if r.status_code == 409} == {"budget_exhausted"}
    granted = ledger("budget")
    assert len(granted) == 10 and len({r.person_id for r in granted}) == 10
    view = client.get("/api/v1/campaigns/budget").json()
    assert view["budget_used_fen"] == sum(r.value_fen for r in granted) == 1000


def test_per_inviter_cap_of_3_holds(client: httpx.Client) -> None:
    api = Api(client)
    # a lenient risk policy: the fraud domain's velocity checks would otherwise hold 12 quick friends
    api.create(
        rules("double_sided", per_inviter_cap=3, risk_policy={"hold_at": 900, "block_at": 1000}), "cap"
    )
    code = api.invite("cap", "alice")["code"]
    for i in range(12):
        assert api.accept(code, f"friend{i}").status_code == 201
    responses = burst(12, lambda i: api.order("cap", f"friend{i}", f"o{i}"))
    assert Counter(r.status_code for r in responses) == {200: 12}
    with session_scope() as s:
        alice = identity.find_person(s, "unionid", "alice")
    got = Counter((r.person_id == alice, r.reward_code) for r in ledger("cap"))
    assert got == {(True, "INV"): 3, (False, "NEW"): 12}  # the friends' own rewards are not capped
    assert sum("inviter_cap_reached" in r.json()["reason"] for r in responses) == 9


def test_per_ip_cap_holds_under_concurrent_accepts(client: httpx.Client) -> None:
    api = Api(client)
    api.create(rules("double_sided", per_ip_cap=3), "ipcap")
    code = api.invite("ipcap", "alice")["code"]
    responses = burst(15, lambda i: api.accept(code, f"guest{i}", ip="10.0.0.7"))
    assert Counter(r.status_code for r in responses) == {201: 3, 403: 12}
    blocked = [r.json() for r in responses if r.status_code == 403]
    assert all(b["signals"][0]["code"] == "ip_cap" for b in blocked)
