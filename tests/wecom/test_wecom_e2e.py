"""End to end through the HTTP API: 联系我 codes made through (a local stand-in of) WeCom's API,
encrypted callbacks in, referral edges, campaign progress, churn, OneID links and pipeline events out.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from wecom_helpers import envelope, event_xml

from liebian.campaigns import outbox
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.identity import service as identity
from liebian.wecom import attribution, service

sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import rules  # noqa: E402

CB = "/api/v1/wecom/callback"
STAY_RULES = {"qualifying_event": {"kind": "custom", "event_name": "add_external_contact"}, "regions": None}


def post_event(client, change_type: str, event: str = "change_external_contact", **fields):
    params, body = envelope(event_xml(change_type, event=event, **fields))
    r = client.post(CB, params=params, content=body)
    assert r.status_code == 200 and r.text == "success", r.text
    return params, body


def launch(client, rules_doc: dict, cid: str) -> str:
    r = client.post("/api/v1/campaigns", json={"id": cid, "rules": rules_doc}, headers=client.operator)
    assert r.status_code == 201, r.text
    r = client.post(f"/api/v1/campaigns/{cid}/launch", headers=client.operator)
    assert r.status_code == 200, r.text
    return cid


def contact_way(client, cid: str | None, inviter_unionid: str | None, **extra) -> dict:
    body = {"campaign_id": cid, "users": ["zhangsan"], **extra}
    if inviter_unionid:
        body["inviter"] = {"id_type": "unionid", "id": inviter_unionid, "nickname": "小红"}
    r = client.post("/api/v1/wecom/contact-ways", json=body, headers=client.operator)
    assert r.status_code == 201, r.text
    return r.json()


def progress(client, cid: str, unionid: str) -> dict:
    r = client.get(
        f"/api/v1/campaigns/{cid}/progress",
        params={"id_type": "unionid", "id": unionid},
        headers=client.operator,
    )
    assert r.status_code == 200, r.text
    return r.json()


def warehouse_events(event: str) -> list[dict]:
    service.flush_outbox()  # what the server's background thread does about a second later
    with session_scope() as s:
        outbox.flush_warehouse(s)
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT person_id, user_id, campaign_id, invite_code, props FROM events WHERE event = ? ORDER BY ts, event_id",
            [event],
        ).fetchall()
    return [
        {"person_id": p, "user_id": u, "campaign_id": c, "invite_code": i, "props": json.loads(pr or "{}")}
        for p, u, c, i, pr in rows
    ]


def test_add_through_an_invite_moves_progress_and_a_delete_is_churn(client, fake_wecom):
    cid = launch(client, rules("invite_task", **STAY_RULES), "wecom-spring")
    way = contact_way(client, cid, "oINVITER")
    # the code exists in WeCom with the short state, not the long invite code
    assert fake_wecom.contact_ways[way["config_id"]]["state"] == way["state"]
    assert len(way["state"]) <= 30 and way["state"] != way["invite_code"]
    fake_wecom.contacts["woFRIEND1"] = {
        "external_userid": "woFRIEND1",
        "name": "小明",
        "type": 1,
        "unionid": "oFRIEND1",
    }

    post_event(
        client,
        "add_external_contact",
        UserID="zhangsan",
        ExternalUserID="woFRIEND1",
        State=way["state"],
        WelcomeCode="WELCOMECODE1",
    )

    # the referral edge, inviter → friend, qualified by the add itself
    tree = client.get(f"/api/v1/campaigns/{cid}/referrals", headers=client.operator).json()
    assert len(tree) == 1
    ref = tree[0]
    assert ref["inviter_person_id"] == way["inviter_person_id"] and ref["state"] == "accepted"
    assert ref["channel"] == "wecom" and ref["qualified_at"] is not None
    p = progress(client, cid, "oINVITER")
    assert p["qualified"] == 1 and p["next_tier"] == 3
    assert [(r["reward_code"], r["state"]) for r in p["rewards"]] == [("T1", "pending")]
    # OneID: external_userid and unionid are one person, the referral's friend
    with session_scope() as s:
        keys = [identity.key_of("external_userid", "woFRIEND1"), identity.key_of("unionid", "oFRIEND1")]
        persons = identity.lookup(s, keys)
        assert set(persons.values()) == {ref["friend_person_id"]}
        (follow,) = service.follows(s, "woFRIEND1")
        assert follow.wecom_staff == "zhangsan" and follow.welcome_code_received is True
        assert follow.referral_id == ref["referral_id"]
    # the pipeline: the add event (with the staff member as wecom_staff, not a person id) and the edge
    (added,) = warehouse_events("add_external_contact")
    assert added["person_id"] == ref["friend_person_id"] and added["campaign_id"] == cid
    assert added["props"]["wecom_staff"] == "zhangsan" and added["props"]["attribution"] == "attributed"
    assert added["props"]["state"] == way["state"]
    with warehouse.connect() as con:
        edges = con.execute(
            "SELECT inviter_person_id, invitee_person_id FROM referral_edges WHERE campaign_id = ?", [cid]
        ).fetchall()
    assert edges == [(way["inviter_person_id"], ref["friend_person_id"])]

    # the friend deletes the staff member: churn, and this campaign counts only friends who stay
    post_event(client, "del_follow_user", UserID="zhangsan", ExternalUserID="woFRIEND1")
    p = progress(client, cid, "oINVITER")
    assert p["qualified"] == 0
    assert [(r["reward_code"], r["state"]) for r in p["rewards"]] == [("T1", "revoked")]
    tree = client.get(f"/api/v1/campaigns/{cid}/referrals", headers=client.operator).json()
    assert tree[0]["state"] == "refunded"
    (churn,) = warehouse_events("del_follow_user")
    assert churn["person_id"] == ref["friend_person_id"]
    assert churn["props"]["churn"] == "true" and churn["props"]["deleted_by"] == "customer"
    recorded = client.get("/api/v1/wecom/callbacks", headers=client.operator).json()
    assert [c["outcome"] for c in recorded] == ["churned", "attributed"]


def test_progress_counts_friends_who_stay(client, fake_wecom):
    """Several friends and deletions; the count is checked against a plain recount of who stays."""
    cid = launch(client, rules("invite_task", **STAY_RULES), "wecom-stay")
    way = contact_way(client, cid, "oINV2", users=["zhangsan", "lisi"])
    script = [
        ("add_external_contact", "woA", "zhangsan", way["state"]),
        ("add_external_contact", "woB", "zhangsan", way["state"]),
        ("add_external_contact", "woB", "lisi", None),  # B also follows lisi (no state)
        ("add_external_contact", "woC", "lisi", way["state"]),
        ("del_follow_user", "woB", "lisi", None),  # B still follows zhangsan: stays
        ("del_external_contact", "woC", "lisi", None),  # staff removed C: the friend did not leave
        ("del_follow_user", "woA", "zhangsan", None),  # A left every staff member: churn
    ]
    following: dict[str, set[str]] = {}
    left: set[str] = set()
    for change, ext, staff, state in script:
        fields = {"UserID": staff, "ExternalUserID": ext}
        if state:
            fields["State"] = state
        post_event(client, change, **fields)
        if change == "add_external_contact":
            following.setdefault(ext, set()).add(staff)
        else:
            following[ext].discard(staff)
            if change == "del_follow_user" and not following[ext]:
                left.add(ext)
    expected = len({ext for _c, ext, _s, st in script if st}) - len(left)
    assert expected == 2
    assert progress(client, cid, "oINV2")["qualified"] == expected
    assert (
        len(warehouse_events("del_follow_user")) == 2 and len(warehouse_events("del_external_contact")) == 1
    )
    outcomes = [c["outcome"] for c in client.get("/api/v1/wecom/callbacks", headers=client.operator).json()]
    assert outcomes.count("churned") == 1


def test_signup_campaign_records_churn_without_subtracting(client):
    doc = rules("double_sided", qualifying_event={"kind": "signup"}, regions=None)
    cid = launch(client, doc, "wecom-signup")
    way = contact_way(client, cid, "oINV3")
    post_event(client, "add_external_contact", UserID="zhangsan", ExternalUserID="woD", State=way["state"])
    before = progress(client, cid, "oINV3")
    assert before["qualified"] == 1
    post_event(client, "del_follow_user", UserID="zhangsan", ExternalUserID="woD")
    after = progress(client, cid, "oINV3")
    assert after["qualified"] == 1 and after["rewards"] == before["rewards"]
    (churn,) = warehouse_events("del_follow_user")
    assert churn["props"]["churn"] == "true" and churn["campaign_id"] == cid
    last = client.get("/api/v1/wecom/callbacks", headers=client.operator).json()[0]
    assert last["detail"]["campaigns"][cid]["outcome"] == "recorded"


def test_refusals_of_the_engine_are_outcomes(client):
    cid = launch(client, rules("invite_task", **STAY_RULES), "wecom-refuse")
    way = contact_way(client, cid, "oINV4")
    # the inviter adds through their own code: refused by the engine, still an add event
    r = client.post(
        "/api/v1/wecom/contact-ways",
        json={
            "campaign_id": cid,
            "inviter": {"id_type": "external_userid", "id": "woSELF"},
            "create_in_wecom": False,
        },
        headers=client.operator,
    )
    own = r.json()
    post_event(client, "add_external_contact", UserID="zhangsan", ExternalUserID="woSELF", State=own["state"])
    # a friend already known to OneID is not new
    with session_scope() as s:
        identity.resolve(s, [identity.RawIdentifier("external_userid", "woKNOWN")], source="test")
    post_event(
        client, "add_external_contact", UserID="zhangsan", ExternalUserID="woKNOWN", State=way["state"]
    )
    # an unknown state
    post_event(client, "add_external_contact", UserID="zhangsan", ExternalUserID="woNEW", State="nosuchstate")
    details = {
        c["external_userid"]: c["detail"]
        for c in client.get("/api/v1/wecom/callbacks", headers=client.operator).json()
    }
    assert details["woSELF"]["code"] == "own_invite"
    assert details["woKNOWN"]["code"] == "friend_not_new"
    assert "not a liebian contact way" in details["woNEW"]["reason"]
    assert client.get(f"/api/v1/campaigns/{cid}/referrals", headers=client.operator).json() == []
    assert {e["user_id"] for e in warehouse_events("add_external_contact")} == {"woSELF", "woKNOWN", "woNEW"}


def test_channel_code_attributes_to_the_channel(client):
    cid = launch(client, rules("invite_task", **STAY_RULES), "wecom-channel")
    way = contact_way(client, cid, None, channel="store_sh01", store="sh01", create_in_wecom=False)
    assert way["kind"] == "channel" and way["config_id"] is None
    post_event(
        client, "add_external_contact", UserID="zhangsan", ExternalUserID="woSTORE1", State=way["state"]
    )
    (ev,) = warehouse_events("add_external_contact")
    assert ev["campaign_id"] == cid and ev["props"]["campaign_channel"] == "store_sh01"
    assert ev["props"]["attribution"] == "channel"
    assert client.get(f"/api/v1/campaigns/{cid}/referrals", headers=client.operator).json() == []


def test_retry_of_a_processed_event_changes_nothing(client):
    cid = launch(client, rules("invite_task", **STAY_RULES), "wecom-retry")
    way = contact_way(client, cid, "oINV5")
    plain = event_xml("add_external_contact", UserID="zhangsan", ExternalUserID="woRETRY", State=way["state"])
    for _ in range(3):  # WeCom retries: the same message under new nonces
        params, body = envelope(plain)
        assert client.post(CB, params=params, content=body).text == "success"
    assert progress(client, cid, "oINV5")["qualified"] == 1
    assert len(warehouse_events("add_external_contact")) == 1
    assert len(client.get("/api/v1/wecom/callbacks", headers=client.operator).json()) == 1


def test_a_failure_midway_leaves_nothing_and_the_retry_succeeds(client, monkeypatch):
    cid = launch(client, rules("invite_task", **STAY_RULES), "wecom-atomic")
    way = contact_way(client, cid, "oINV6")
    real = attribution.attribute_add

    def attribute_then_crash(*args, **kwargs):
        real(*args, **kwargs)  # the referral is written …
        raise RuntimeError("database went away")  # … then processing fails

    monkeypatch.setattr(attribution, "attribute_add", attribute_then_crash)
    params, body = envelope(
        event_xml("add_external_contact", UserID="zhangsan", ExternalUserID="woATOM", State=way["state"])
    )
    assert client.post(CB, params=params, content=body).status_code == 500
    assert client.get(f"/api/v1/campaigns/{cid}/referrals", headers=client.operator).json() == []
    with session_scope() as s:
        assert (
            service.callbacks(s) == []
            and service.follows(s, "woATOM") == []
            and service.pending_events(s) == 0
        )
        assert identity.lookup(s, [identity.key_of("external_userid", "woATOM")]) == {}
    monkeypatch.setattr(attribution, "attribute_add", real)
    # WeCom's retry (same nonce: it was not consumed by the failed attempt) goes through
    assert client.post(CB, params=params, content=body).text == "success"
    assert progress(client, cid, "oINV6")["qualified"] == 1


def test_group_membership(client):
    post_event(
        client,
        "update",
        event="change_external_chat",
        ChatId="wrCHAT1",
        UpdateDetail="add_member",
        JoinScene="3",
        MemChangeCnt="2",
        MemChangeList=["woMEMBER1", "zhangsan"],
    )
    members = client.get("/api/v1/wecom/groups/wrCHAT1/members", headers=client.operator).json()
    assert {(m["member_id"], m["member_kind"], m["in_group"]) for m in members} == {
        ("woMEMBER1", "external", True),
        ("zhangsan", "staff", True),
    }
    post_event(
        client,
        "update",
        event="change_external_chat",
        ChatId="wrCHAT1",
        UpdateDetail="del_member",
        QuitScene="0",
        MemChangeList=["woMEMBER1"],
    )
    members = {
        m["member_id"]: m
        for m in client.get("/api/v1/wecom/groups/wrCHAT1/members", headers=client.operator).json()
    }
    assert members["woMEMBER1"]["in_group"] is False and members["zhangsan"]["in_group"] is True
    (joined,) = warehouse_events("group_join")  # staff members are not persons: no event for zhangsan
    (left,) = warehouse_events("group_leave")
    assert joined["user_id"] == left["user_id"] == "woMEMBER1"
    assert joined["props"]["chat_id"] == "wrCHAT1" and left["props"]["group_id"] == "wrCHAT1"
    assert joined["person_id"] == left["person_id"]


def test_edit_links_the_unionid(client, fake_wecom):
    fake_wecom.contacts["woEDIT"] = {"external_userid": "woEDIT", "type": 1, "unionid": "oEDIT"}
    post_event(client, "edit_external_contact", UserID="zhangsan", ExternalUserID="woEDIT")
    with session_scope() as s:
        persons = identity.lookup(
            s, [identity.key_of("external_userid", "woEDIT"), identity.key_of("unionid", "oEDIT")]
        )
    assert len(persons) == 2 and len(set(persons.values())) == 1
    (ev,) = warehouse_events("edit_external_contact")
    assert ev["props"]["unionid_known"] == "true"


def test_contact_way_update_and_delete(client, fake_wecom):
    cid = launch(client, rules("invite_task", **STAY_RULES), "wecom-manage")
    way = contact_way(client, cid, "oINV7")
    r = client.put(
        f"/api/v1/wecom/contact-ways/{way['state']}",
        json={"users": ["lisi"], "remark": "换人"},
        headers=client.operator,
    )
    assert r.status_code == 200 and r.json()["users"] == ["lisi"]
    assert fake_wecom.contact_ways[way["config_id"]]["user"] == ["lisi"]
    r = client.delete(f"/api/v1/wecom/contact-ways/{way['state']}", headers=client.operator)
    assert r.status_code == 200 and r.json()["deleted_at"] is not None
    assert way["config_id"] not in fake_wecom.contact_ways
    # bad input: named field and reason
    r = client.post(
        "/api/v1/wecom/contact-ways",
        json={"campaign_id": cid, "state": "x" * 31, "users": ["u"]},
        headers=client.operator,
    )
    assert r.status_code == 422 and any(e["field"] == "state" for e in r.json()["errors"])
    r = client.post(
        "/api/v1/wecom/contact-ways", json={"campaign_id": "nope", "users": ["u"]}, headers=client.operator
    )
    assert r.status_code == 404 and r.json()["code"] == "unknown_campaign"
    r = client.post(
        "/api/v1/wecom/contact-ways",
        json={"campaign_id": cid, "users": ["u"], "state": way["state"]},
        headers=client.operator,
    )
    assert r.status_code == 409 and r.json()["code"] == "state_exists"
    # WeCom refusing: 502 with WeCom's code and a clear message; nothing stored
    fake_wecom.rate_limited = 100
    from liebian.wecom import client as wecom_client

    get = service.get_client()
    get._sleep = lambda _s: None  # no real waiting in the test
    r = client.post(
        "/api/v1/wecom/contact-ways",
        json={"campaign_id": cid, "users": ["u"], "state": "ratelimited"},
        headers=client.operator,
    )
    assert r.status_code == 502 and r.json()["code"] == "wecom_45009", r.text
    assert client.get("/api/v1/wecom/contact-ways/ratelimited", headers=client.operator).status_code == 404
    assert wecom_client.ERROR_MESSAGES[45009] in r.json()["detail"]


def test_callbacks_need_no_login_but_operator_routes_do(client):
    assert client.get("/api/v1/wecom/contact-ways").status_code == 401
    params, body = envelope(event_xml("edit_external_contact", UserID="zhangsan", ExternalUserID="woANON"))
    assert client.post(CB, params=params, content=body).status_code == 200


def test_outbox_survives_a_warehouse_failure(client, monkeypatch):
    from liebian.ingest import service as ingest

    def broken(*_a, **_k):
        raise OSError("warehouse locked")

    monkeypatch.setattr(ingest, "ingest_items", broken)
    post_event(client, "edit_external_contact", UserID="zhangsan", ExternalUserID="woQUEUED")
    with pytest.raises(OSError):
        service.flush_outbox()
    with session_scope() as s:
        assert service.pending_events(s) == 1  # kept for the next round
    monkeypatch.undo()
    (ev,) = warehouse_events("edit_external_contact")
    assert ev["user_id"] == "woQUEUED"
    with session_scope() as s:
        assert service.pending_events(s) == 0
