"""Issue #20's inline reproductions, each over real HTTP (TestClient) on SQLite and PostgreSQL:
the inline rules know devices from imported events, a reused device is refused by its real reason,
several medium signals hold a referral while genuine bursts stay accepted, and a OneID merge that
makes inviter and friend one person flags the referral and holds its rewards until a decision."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from liebian import jobs
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.fraud import inline, known
from liebian.fraud.known import value_hash
from liebian.fraud.models import FraudKnownSync, FraudKnownUse
from liebian.identity import service as identity
from liebian.rewards import service as ledger
from liebian.web.app import create_app

UA_EMULATOR = "Mozilla/5.0 (Linux; Android 9; SM-G9650 Build/PQ3A) MicroMessenger/8.0.1 emulator"


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield client


def _campaign(client: TestClient, cid: str, **overrides) -> str:
    doc = {
        "type": "double_sided", "title": "邀友有礼", "rules_text": "每邀请一位新朋友完成首单即可获得奖励",
        "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
        "per_inviter_cap": 20, "budget_fen": 1_000_000, "hold_days": 7, "claim_window_days": 7,
        "collects": ["phone"], "consent_step": True,
    }  # fmt: skip
    doc.update(overrides)
    assert client.post("/api/v1/campaigns", json={"id": cid, "rules": doc}).status_code == 201
    assert client.post(f"/api/v1/campaigns/{cid}/launch").status_code == 200
    return cid


def _invite(client: TestClient, cid: str, uid: str) -> str:
    r = client.post(f"/api/v1/campaigns/{cid}/invites", json={"id_type": "unionid", "id": uid})
    assert r.status_code == 200, r.text
    return str(r.json()["code"])


def _accept(client: TestClient, code: str, uid: str, **extra):
    return client.post(
        "/api/v1/invites/accept", json={"code": code, "id_type": "unionid", "id": uid, **extra}
    )


def _codes(body: dict) -> set[str]:
    return {s["code"] for s in body["signals"]}


def _import_events(
    client: TestClient, rows: list[tuple[str, str | None, str | None]], hours_ago: float
) -> None:
    """Events of an app's own export, sent to the collector: (openid, device id, IP)."""
    ts = int(utcnow().timestamp() - hours_ago * 3600)
    items = [
        {"event_id": f"imp-{i}-{uid}", "ts": ts + i, "user_id": uid, "id_type": "openid", "event": "view",
         "channel": "小程序", "device_id": device, "ip": ip}
        for i, (uid, device, ip) in enumerate(rows)
    ]  # fmt: skip
    r = client.post("/api/v1/events/batch", json={"items": items})
    assert r.status_code == 200 and r.json()["accepted"] == len(items), r.text


# ---------------------------------------------------------------- everything known


def test_a_returning_device_from_imported_events_is_not_new(api: TestClient) -> None:
    _import_events(api, [("o_old_user", "PHONE-RETURNING", "58.33.1.2")], hours_ago=24 * 30)
    cid = _campaign(api, "c_return")
    code = _invite(api, cid, "alice")
    back = _accept(api, code, "newcomer", device_id="PHONE-RETURNING")
    assert back.status_code == 201, back.text
    body = back.json()
    assert _codes(body) == {"DEVICE_NOT_NEW"}
    assert body["state"] == "held" and body["risk_score"] == inline.CONFIG.scores["DEVICE_NOT_NEW"]
    detail = next(s["detail"] for s in body["signals"])
    assert "imported events" in detail
    fresh = _accept(api, code, "genuinely-new", device_id="PHONE-NEVER-SEEN").json()
    assert (fresh["state"], fresh["risk_score"], fresh["signals"]) == ("accepted", 0, [])
    with session_scope() as s:  # learned on import, kept without the clear device id or address
        uses = s.scalars(select(FraudKnownUse)).all()
        assert {u.kind for u in uses} == {"device", "ip"}
        assert {u.value_hash for u in uses} == {
            value_hash("device", "PHONE-RETURNING"),
            value_hash("ip", "58.33.1.2"),
        }
        assert not any("PHONE" in u.value_hash or "58.33" in u.value_hash for u in uses)
        assert s.get(FraudKnownSync, 1) is not None


def test_imported_accounts_on_one_device_make_a_device_burst(api: TestClient) -> None:
    # Three accounts of the brand's own app on one tablet in the last hours; a campaign that takes
    # existing users: the fourth account accepting from that tablet is a burst.
    _import_events(api, [(f"o_farm{i}", "TABLET-9", None) for i in range(3)], hours_ago=2)
    cid = _campaign(api, "c_burst", require_new_friend=False)
    code = _invite(api, cid, "farmer")
    body = _accept(api, code, "fourth", device_id="TABLET-9").json()
    assert "DEVICE_BURST" in _codes(body)
    assert any(s["detail"] == "4 new accounts from this device" for s in body["signals"])
    # older than the 24-hour window: no burst
    _import_events(api, [(f"o_old{i}", "TABLET-OLD", None) for i in range(3)], hours_ago=48)
    assert "DEVICE_BURST" not in _codes(_accept(api, code, "late", device_id="TABLET-OLD").json())


def test_imported_events_sync_once_and_the_job_catches_up(api: TestClient) -> None:
    _import_events(api, [("o_a", "DEV-A", "1.2.3.4"), ("o_b", "DEV-A", "1.2.3.4")], hours_ago=1)
    with session_scope() as s:
        first = {(u.kind, u.person_id): (u.first_seen, u.last_seen) for u in s.scalars(select(FraudKnownUse))}
    assert len(first) == 4  # two persons × (device, address)
    jobs.run_job("fraud-known-uses")  # nothing new: the watermark stops a second reading
    with session_scope() as s:
        again = {(u.kind, u.person_id): (u.first_seen, u.last_seen) for u in s.scalars(select(FraudKnownUse))}
    assert again == first


def test_a_very_large_import_is_left_to_the_job(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(known, "IMPORT_SYNC_MAX_EVENTS", 1)  # "very large": more than one event
    _import_events(api, [("o_big1", "DEV-BIG", None), ("o_big2", "DEV-BIG", None)], hours_ago=1)
    with session_scope() as s:
        assert s.scalars(select(FraudKnownUse)).all() == []
    assert jobs.run_job("fraud-known-uses") == 2  # the job learns them: two persons on one device
    with session_scope() as s:
        assert len(s.scalars(select(FraudKnownUse)).all()) == 2


# ---------------------------------------------------------------- the real reason


def test_a_device_reused_by_a_second_friend_is_refused_by_its_real_reason(api: TestClient) -> None:
    cid = _campaign(api, "c_reuse")
    code = _invite(api, cid, "alice")
    assert _accept(api, code, "bob", device_id="PHONE-BOB").status_code == 201
    second = _accept(api, code, "carl", device_id="PHONE-BOB")
    assert second.status_code == 409
    body = second.json()
    assert (body["code"], body["field"]) == ("device_not_new", "device_id")
    assert "device" in body["message_en"] and "设备" in body["message_zh"]
    assert "already accepted" not in body["message_en"]
    # the same friend again is still `already_accepted`
    assert _accept(api, code, "bob", device_id="PHONE-BOB").json()["code"] == "already_accepted"


def test_a_shared_device_in_an_open_campaign_is_its_own_friend_not_the_first_one(api: TestClient) -> None:
    # Last touch, existing users welcome: the device's first friend must not move to a new inviter
    # because someone else used their phone; the second friend is a friend of their own.
    cid = _campaign(api, "c_family", require_new_friend=False, attribution="last_touch")
    bob = _accept(api, _invite(api, cid, "alice"), "bob", device_id="FAMILY-PAD").json()
    carl = _accept(api, _invite(api, cid, "dave"), "carl", device_id="FAMILY-PAD")
    assert carl.status_code == 201, carl.text
    assert carl.json()["friend_person_id"] != bob["friend_person_id"]
    assert carl.json()["reattributed"] is False
    tree = {r["referral_id"]: r for r in api.get(f"/api/v1/campaigns/{cid}/referrals").json()}
    assert tree[bob["referral_id"]]["inviter_person_id"] == bob["inviter_person_id"]


# ---------------------------------------------------------------- medium signals combine


def test_eight_accepts_within_seconds_from_one_script_are_held(api: TestClient) -> None:
    cid = _campaign(api, "c_script", require_new_friend=False)
    code = _invite(api, cid, "scripter")
    outs = [
        _accept(api, code, f"acct{i}", device_id=f"RAND-{i}", ip="47.96.3.4", user_agent=UA_EMULATOR).json()
        for i in range(8)
    ]
    assert [o["state"] for o in outs] == ["accepted"] * 5 + ["held"] * 3
    for o in outs[5:]:
        assert _codes(o) == {"VELOCITY", "IP_UA_CLUSTER"}
        assert o["risk_score"] == 60 >= 50  # 40 + 20 against the default hold threshold


def test_genuine_bursts_stay_accepted(api: TestClient) -> None:
    cid = _campaign(api, "c_genuine", require_new_friend=False)
    koc = _invite(api, cid, "koc")
    friends = [
        _accept(api, koc, f"fan{i}", device_id=f"FAN-PHONE-{i}", ip=f"112.{i}.8.{i + 1}",
                user_agent=f"Mozilla/5.0 (iPhone; CPU iPhone OS 17_{i}) MicroMessenger/8.0.{40 + i}").json()
        for i in range(8)
    ]  # fmt: skip
    assert {f["state"] for f in friends} == {"accepted"}
    assert _codes(friends[-1]) == {"VELOCITY"}  # fast, but nothing else in common
    boss = _invite(api, cid, "boss")
    office = [
        _accept(api, boss, f"coworker{i}", device_id=f"WORK-{i}", ip="101.230.7.9",
                user_agent=f"Mozilla/5.0 (Linux; Android 14; model-{i}) MicroMessenger/8.0.50").json()
        for i in range(8)
    ]  # fmt: skip
    assert {o["state"] for o in office} == {"accepted"}
    assert not {c for o in office for c in _codes(o)} & {"IP_UA_CLUSTER", "DEVICE_BURST", "IP_BURST"}


# ---------------------------------------------------------------- re-score on merge


def test_a_merge_after_the_referral_flags_it_and_holds_its_rewards(api: TestClient) -> None:
    cid = _campaign(api, "c_self")
    code = _invite(api, cid, "alice")
    # the second account is another app's openid (a person holds one unionid: OneID would refuse
    # to merge two)
    alt = {"id_type": "openid", "id": "alt-account"}
    ref = api.post("/api/v1/invites/accept", json={"code": code, **alt}).json()
    assert ref["state"] == "accepted"
    order = api.post(
        f"/api/v1/campaigns/{cid}/conversions", json={**alt, "order_id": "o-self-1", "amount_fen": 9900}
    )
    assert order.json()["status"] == "qualified", order.text
    with session_scope() as s:
        before = ledger.list_rewards(s, source_ref=f"order:{cid}:o-self-1", limit=10)
    assert len(before) == 2 and not any(r.held_for_review for r in before)
    # An identities file later proves both accounts hold one phone: OneID merges them.
    for who in ({"id_type": "unionid", "id": "alice"}, alt):
        r = api.post(
            "/api/v1/identities/link", json={"a": who, "b": {"id_type": "phone", "id": "13912345678"}}
        )
        assert r.status_code == 200, r.text
    cases = api.get("/api/v1/fraud/cases", params={"campaign_id": cid}).json()
    assert len(cases) == 1
    case = cases[0]
    assert case["source"] == "merge" and case["referral_id"] == ref["referral_id"]
    assert [r["code"] for r in case["reasons"]] == ["SELF_REFERRAL_MERGED"]
    assert (
        str(ref["friend_person_id"]) in case["reasons"][0]["detail"]
        or str(ref["inviter_person_id"]) in case["reasons"][0]["detail"]
    )
    tree = {r["referral_id"]: r for r in api.get(f"/api/v1/campaigns/{cid}/referrals").json()}
    assert tree[ref["referral_id"]]["state"] == "held"
    with session_scope() as s:
        held = ledger.list_rewards(s, source_ref=f"order:{cid}:o-self-1", limit=10)
    # held, never dropped: same rewards, same states, waiting for a reviewer
    assert [(r.id, r.state) for r in held] == [(r.id, r.state) for r in before]
    assert all(r.held_for_review for r in held)
    decided = api.post(f"/api/v1/fraud/cases/{case['id']}/reject", json={"note": "one person, two accounts"})
    assert decided.status_code == 200, decided.text
    with session_scope() as s:
        after = ledger.list_rewards(s, source_ref=f"order:{cid}:o-self-1", limit=10)
    assert {r.state for r in after} == {ledger.REJECTED}
    tree = {r["referral_id"]: r for r in api.get(f"/api/v1/campaigns/{cid}/referrals").json()}
    assert tree[ref["referral_id"]]["state"] == "blocked"


def test_merge_moves_the_fraud_memory_to_the_survivor(api: TestClient) -> None:
    # two accounts of one human on one phone, seen at different times: after the merge, one known
    # use with the span of both
    _import_events(api, [("o_twin", "TWIN-PHONE", None)], hours_ago=5)
    _import_events(api, [("o_twin2", "TWIN-PHONE", None)], hours_ago=1)
    with session_scope() as s:
        spans = sorted((u.first_seen, u.last_seen) for u in s.scalars(select(FraudKnownUse)))
        assert len(spans) == 2
        twin, twin2 = (identity.find_person(s, "openid", o) for o in ("o_twin", "o_twin2"))
        survivor = identity.merge(s, twin, twin2)
    with session_scope() as s:
        (use,) = s.scalars(select(FraudKnownUse)).all()
    assert (use.person_id, use.first_seen, use.last_seen) == (survivor, spans[0][0], spans[1][1])


def test_erasing_a_person_deletes_the_devices_and_addresses_known_of_them(api: TestClient) -> None:
    _import_events(api, [("o_erased", "PHONE-ERASED", "58.33.9.9"), ("o_kept", "PHONE-KEPT", None)], 24)
    with session_scope() as s:
        erased = identity.find_person(s, "openid", "o_erased")
        kept = identity.find_person(s, "openid", "o_kept")
        assert erased is not None and kept is not None
        by_person = {u.person_id for u in s.scalars(select(FraudKnownUse))}
        assert by_person == {erased, kept}
    r = api.post("/api/v1/privacy/requests/delete", json={"person_id": erased, "reason": "DSR 7"})
    assert r.status_code == 200, r.text
    assert r.json()["operational"]["fraud_known_uses.rows"] == 2  # the device and the address
    with session_scope() as s:
        assert {u.person_id for u in s.scalars(select(FraudKnownUse))} == {kept}
