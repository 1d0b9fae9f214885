"""Points (积分) for referred purchases, through the HTTP API as a front end and an operator use it,
on SQLite and PostgreSQL: `points.per_yuan` per yuan, doubled within the campaign window and single
outside it; a refund of the order revokes them; the conversion flow reaches the points ledger only
through the wiring (`conversion_followers`)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient

from liebian import ports
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import points
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


def pid(uid: str) -> int:
    with session_scope() as s:
        return identity.find_person(s, "unionid", uid)


def balance(api: Api, uid: str) -> int:
    r = api.c.get(f"/api/v1/points/persons/{pid(uid)}")
    assert r.status_code == 200, r.text
    return r.json()["balance"]


def join_and_order(api: Api, cid: str, code: str, uid: str, order_id: str, amount: int, **extra) -> dict:
    assert api.accept(code, uid).status_code == 201
    r = api.order(cid, uid, order_id, amount, **extra)
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "qualified", r.json()
    return r.json()


def iso(at) -> str:
    return at.isoformat() + "Z"


def test_double_points_within_the_campaign_window_single_outside(api: Api) -> None:
    now = utcnow()
    end = now + timedelta(hours=12)
    # naive campaign times (wide enough whether naive input is read as UTC or as the display zone)
    window = {"start_at": (now - timedelta(days=2)).isoformat(), "end_at": end.isoformat()}
    doc = rules("double_sided", **window, points={"per_yuan": 1})
    api.create(doc, "pts-window")
    code = api.invite("pts-window", "alice")["code"]
    join_and_order(api, "pts-window", code, "bob", "o-bob", 9950)  # 99 whole yuan, now: ×2
    # an order placed after the campaign's end (within the claim window) earns single points
    join_and_order(api, "pts-window", code, "carl", "o-carl", 9900, ts=iso(end + timedelta(hours=1)))
    assert balance(api, "bob") == 198
    assert balance(api, "carl") == 99
    assert balance(api, "alice") == 0  # the rule's earner is the friend who bought
    hist = api.c.get(f"/api/v1/points/persons/{pid('bob')}/history").json()
    assert [(e["kind"], e["campaign_id"], e["source_ref"]) for e in hist] == [
        ("earn", "pts-window", "order:pts-window:o-bob")
    ]
    # a repeated report of the same order earns nothing more
    assert api.order("pts-window", "bob", "o-bob", 9950).json()["duplicate"] is True
    assert balance(api, "bob") == 198
    assert api.c.get("/api/v1/points/verify").json()["ok"] is True


def test_an_explicit_double_points_window(api: Api) -> None:
    now = utcnow()
    later = {"per_yuan": 2, "multiplier": 3, "window_start": iso(now + timedelta(days=3)), "earner": "both"}
    api.create(rules("double_sided", points=later), "pts-later")
    code = api.invite("pts-later", "alice")["code"]
    join_and_order(api, "pts-later", code, "bob", "o-1", 1000)  # before the window: 10 yuan × 2
    assert balance(api, "bob") == balance(api, "alice") == 20
    api.create(
        rules("double_sided", points={**later, "window_start": iso(now - timedelta(days=1))}), "pts-now"
    )
    code = api.invite("pts-now", "dora")["code"]
    join_and_order(api, "pts-now", code, "erin", "o-2", 1000)  # within: × 3
    assert balance(api, "erin") == balance(api, "dora") == 60


def test_a_refund_revokes_the_points_its_order_earned(api: Api) -> None:
    api.create(rules("double_sided", points={"per_yuan": 1, "earner": "both"}), "pts-refund")
    code = api.invite("pts-refund", "alice")["code"]
    join_and_order(api, "pts-refund", code, "bob", "o-bob", 5000)  # 50 yuan × 2 = 100 each
    join_and_order(api, "pts-refund", code, "carl", "o-carl", 2000)  # 40 each
    assert balance(api, "alice") == 140 and balance(api, "bob") == 100
    spent = api.c.post(
        "/api/v1/points/spend", json={"person_id": pid("bob"), "points": 70, "idempotency_key": "b"}
    )
    assert spent.status_code == 200

    r = api.refund("pts-refund", "o-bob")
    assert r.status_code == 200 and len(r.json()["revoked"]) == 2  # the rewards, as before
    assert balance(api, "alice") == 40  # carl's order still counts
    assert balance(api, "bob") == 0  # 30 left of 100: the 70 spent cannot be taken back
    with session_scope() as s:
        revokes = [e for e in points.history(s, pid("bob")) if e.kind == "revoke"]
        assert [(e.delta, e.source_ref) for e in revokes] == [(-30, "order:pts-refund:o-bob")]
        assert "70 of 100 points already spent" in revokes[0].reason
    assert api.refund("pts-refund", "o-bob").json()["duplicate"] is True  # nothing twice
    assert balance(api, "alice") == 40
    assert api.c.get("/api/v1/points/verify").json()["ok"] is True


def test_no_points_rule_no_points_and_the_flow_uses_only_the_wiring(api: Api) -> None:
    api.create(rules("double_sided"), "no-pts")
    code = api.invite("no-pts", "alice")["code"]
    join_and_order(api, "no-pts", code, "bob", "o-bob", 9900)
    assert balance(api, "bob") == 0

    heard: list[ports.Conversion] = []
    api.create(rules("double_sided", points={"per_yuan": 1}), "spy")
    code = api.invite("spy", "dora")["code"]
    with ports.use(ports.current().with_(conversion_followers=(lambda s, c: heard.append(c),))):
        join_and_order(api, "spy", code, "erin", "o-erin", 9900)
        api.refund("spy", "o-erin")
    assert balance(api, "erin") == 0  # the points ledger is not wired here: it heard nothing
    assert [(c.event, c.order_id, c.amount_fen, c.friend_person_id) for c in heard] == [
        ("qualified", "o-erin", 9900, pid("erin")),
        ("refunded", "o-erin", 9900, pid("erin")),
    ]
    assert heard[0].points is not None and heard[0].points["per_yuan"] == 1
