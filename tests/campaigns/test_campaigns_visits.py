"""Clicks and shares count once per distinct visitor, never the sharer's own, over real HTTP on
SQLite and PostgreSQL; repeated self-clicks are scored by the fraud rules (through the wiring)."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from sqlalchemy import select, text

from liebian.campaigns.models import InviteVisit
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.identity.keys import person_id_for
from liebian.web.app import create_app

SHARER_UA = "Mozilla/5.0 (iPhone; sharer) MicroMessenger/8.0"


@pytest.fixture
def client(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


@pytest.fixture
def api(client: TestClient) -> Api:
    return Api(client)


def coupon(api: Api, shares: int) -> str:
    """A share-for-coupon campaign and alice's link, asked for from her phone (IP + user agent).
    (The campaign id names the rules: the process caches a launched version's rules by id.)"""
    api.create(rules("share_coupon", shares_required=shares), f"coupon{shares}")
    r = api.c.post(
        f"/api/v1/campaigns/coupon{shares}/invites",
        json={"id_type": "unionid", "id": "alice"},
        headers={"user-agent": SHARER_UA},
    )
    assert r.status_code == 200, r.text
    return r.json()["code"]


def claim(api: Api, shares: int):
    body = {"id_type": "unionid", "id": "alice"}
    return api.c.post(f"/api/v1/campaigns/coupon{shares}/claims", json=body)


def clicks(api: Api, code: str) -> int:
    r = api.c.get(f"/api/v1/invites/{code}")
    assert r.status_code == 200, r.text
    return r.json()["clicks"]


def test_the_sharers_own_clicks_never_unlock_the_coupon(api: Api) -> None:
    code = coupon(api, shares=5)
    for _ in range(5):  # the sharer's own phone: same IP and user agent as when the code was made
        assert (
            api.c.get(f"/i/{code}", headers={"user-agent": SHARER_UA}, follow_redirects=False).status_code
            == 302
        )
    api.c.cookies.clear()
    for _ in range(3):  # dropping the cookie does not make them a stranger
        api.c.cookies.clear()
        api.c.get(f"/i/{code}", headers={"user-agent": SHARER_UA}, follow_redirects=False)
    assert clicks(api, code) == 0
    r = claim(api, 5)
    assert r.status_code == 409 and r.json()["code"] == "not_shared", r.text


def test_the_sharer_known_by_person_or_device_is_their_own_visitor(api: Api) -> None:
    code = coupon(api, shares=1)
    # alice opens her link in the mini program (her unionid) and from another network with her device
    api.c.get(f"/i/{code}", params={"id_type": "unionid", "id": "alice"}, headers={"user-agent": "other"})
    r = api.c.post(
        "/api/v1/campaigns/coupon1/invites",
        json={"id_type": "unionid", "id": "alice", "device_id": "alice-phone", "ip": "10.9.9.9"},
    )
    assert r.json()["code"] == code
    api.c.cookies.clear()
    api.click(code, device_id="alice-phone")
    assert clicks(api, code) == 0
    assert claim(api, 1).status_code == 409


def test_each_friend_counts_once_and_unlocks_the_coupon(api: Api) -> None:
    code = coupon(api, shares=3)
    for _ in range(4):
        assert api.click(code, "bob").status_code == 302  # bob opens it four times: one visitor
    assert clicks(api, code) == 1
    assert claim(api, 3).status_code == 409
    api.click(code, "carl")
    api.c.cookies.clear()
    # dan, in a browser without a device id: his visitor cookie makes his next click the same visitor
    dan = {"user-agent": "Mozilla/5.0 (Android; dan)"}
    api.c.get(f"/i/{code}", headers=dan, follow_redirects=False)
    assert "liebian_visitor" in api.c.cookies
    api.c.get(f"/i/{code}", headers=dan, follow_redirects=False)
    assert clicks(api, code) == 3
    r = claim(api, 3)
    assert r.status_code == 200, r.text
    assert r.json()["reward_code"] == "SHARE"


def test_a_person_counts_once_across_devices(api: Api) -> None:
    code = coupon(api, shares=2)
    api.accept(code, "bob")  # bob is known to OneID now
    for device in ("bob-phone", "bob-tablet"):
        api.click(code, "bob", id_type="unionid", id="bob", device_id=device)
    assert clicks(api, code) == 1


def test_ip_and_user_agent_count_once_within_the_window(api: Api) -> None:
    code = coupon(api, shares=2)
    stranger = {"user-agent": "Mozilla/5.0 (Windows; stranger)"}
    for _ in range(3):
        api.c.cookies.clear()  # no cookie, no device id: only IP + user agent tell them apart
        api.c.get(f"/i/{code}", headers=stranger, follow_redirects=False)
    assert clicks(api, code) == 1
    # a day later (the window: visit_window_hours, 24 by default) the same address is a new visitor
    hours = get_settings().visit_window_hours
    with session_scope() as s:
        counted = select(InviteVisit).where(InviteVisit.counted_at.is_not(None))
        for visit in s.scalars(counted):
            visit.counted_at = (visit.counted_at or visit.first_at) - timedelta(hours=hours + 1)
    api.c.cookies.clear()
    api.c.get(f"/i/{code}", headers=stranger, follow_redirects=False)
    assert clicks(api, code) == 2


def test_no_raw_address_or_device_is_stored(api: Api) -> None:
    code = coupon(api, shares=1)
    api.click(code, "bob")
    api.c.get(f"/i/{code}", headers={"user-agent": SHARER_UA})
    with session_scope() as s:
        keys = list(s.scalars(select(InviteVisit.visitor_key)))
        outbox = " ".join(s.scalars(text("SELECT payload FROM campaign_outbox")))
    assert keys and all("testclient" not in k and "phone-of-bob" not in k for k in keys)
    assert '"ip":"testclient"' not in outbox.replace(" ", "") and '"ip":' in outbox
    assert '"visit":"own"' in outbox.replace(" ", "") and '"visit":"new"' in outbox.replace(" ", "")


def test_repeated_self_clicks_are_scored_at_accept(api: Api) -> None:
    api.create(rules("invite_task"), "inv")
    code = api.invite("inv", "alice")["code"]
    for _ in range(5):
        api.click(code)  # alice's own client, as when she asked for the link
    r = api.accept(code, "bob", device_id="bob-phone")
    assert r.status_code == 201, r.text
    signals = {s["code"]: s for s in r.json()["signals"]}
    assert "SELF_CLICKS" in signals and "5" in signals["SELF_CLICKS"]["detail"]
    # a sharer who opened the link once or twice is not a suspect
    code2 = api.invite("inv", "erin")["code"]
    api.click(code2)
    r = api.accept(code2, "fred", device_id="fred-phone")
    assert "SELF_CLICKS" not in {s["code"] for s in r.json()["signals"]}


def test_concurrent_clicks_count_each_visitor_once(live_server: str, admin_headers) -> None:
    """Against the real server (uvicorn): 30 simultaneous opens by bob and one each by 10 friends
    count 11 visitors."""
    limits = httpx.Limits(max_connections=64, max_keepalive_connections=64)
    with httpx.Client(base_url=live_server, timeout=60, limits=limits, headers=admin_headers) as client:
        api = Api(client)
        code = coupon(api, shares=11)
        visitors = ["bob"] * 30 + [f"friend{i}" for i in range(10)]
        gate = threading.Barrier(len(visitors))

        def open_link(who: str) -> int:
            gate.wait()
            return api.click(code, who).status_code

        with ThreadPoolExecutor(max_workers=len(visitors)) as pool:
            assert set(pool.map(open_link, visitors)) == {302}
        assert clicks(api, code) == 11
        assert claim(api, 11).status_code == 200


def test_the_sharers_visits_follow_a_oneid_merge(api: Api) -> None:
    code = coupon(api, shares=1)  # alice's link, asked for from her phone
    r = api.c.post("/api/v1/campaigns/coupon1/invites", json={"id_type": "openid", "id": "o-0"})
    assert r.status_code == 200, r.text
    assert person_id_for("openid", "o-0") < person_id_for("unionid", "alice")  # o-0's person survives
    link = {"a": {"id_type": "unionid", "id": "alice"}, "b": {"id_type": "openid", "id": "o-0"}}
    assert api.c.post("/api/v1/identities/link", json=link).json()["outcome"] == "merged"
    info = api.c.get(f"/api/v1/invites/{code}")
    assert info.status_code == 200, info.text
    api.c.cookies.clear()
    api.c.get(f"/i/{code}", headers={"user-agent": SHARER_UA})  # still alice's own phone
    assert clicks(api, code) == 0
