"""Inline checks: every rule and reason code, each with a case that fires and one that must not.

The rules run against the real operational store (SQLite and PostgreSQL) and the real OneID
registry; the end-to-end tests at the bottom go through the campaign HTTP API, where the wiring
gives the campaign flows `inline.RISK_CHECKS`.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from liebian.bootstrap import default_wiring
from liebian.campaigns.schemas import CampaignRules
from liebian.db.session import session_scope
from liebian.fraud import inline
from liebian.fraud.models import FraudSighting
from liebian.fraud.reasons import REASONS
from liebian.identity import service as identity
from liebian.risk import RiskContext
from liebian.web.app import create_app

T0 = datetime(2026, 11, 1, 12, 0, 0)
OFFICE_IP = "101.230.7.9"
UA_A = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5) MicroMessenger/8.0.49"
UA_B = "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) MicroMessenger/8.0.50"


def rules(**overrides) -> CampaignRules:
    doc = {"type": "double_sided", "title": "邀友有礼", "inviter_reward": {"code": "INV", "value_fen": 1000}}
    doc.update(overrides)
    return CampaignRules.model_validate(doc)


def person(session, uid: str, **other: str) -> int:
    """Register a person by unionid plus other identifiers (linked as one human)."""
    raws = [identity.RawIdentifier("unionid", uid)] + [identity.RawIdentifier(t, v) for t, v in other.items()]
    identity.resolve(session, raws, source="test")
    if len(raws) > 1:
        identity.link(session, [identity.LinkEvidence(raws[0], r, source="test") for r in raws[1:]])
    return identity.find_person(session, "unionid", uid)


def ctx(inviter: int | None, friend: int | None, *, stage: str = "accept", ts: datetime = T0, campaign: str = "c1",
        campaign_rules: CampaignRules | None = None, **kw) -> RiskContext:  # fmt: skip
    return RiskContext(
        stage=stage, campaign_id=campaign, version=1, rules=campaign_rules or rules(), inviter=inviter,
        friend=friend, ts=ts, **kw,
    )  # fmt: skip


def codes(signals) -> list[str]:
    return sorted(s.code for s in signals)


def test_the_checks_are_a_constant_for_the_wiring_not_a_registration() -> None:
    assert (inline.inline_check,) == inline.RISK_CHECKS
    assert not hasattr(inline, "register")
    assert default_wiring().risk_checks == inline.RISK_CHECKS  # wired once, by bootstrap


def test_every_inline_code_is_in_the_catalogue_with_both_languages() -> None:
    for code in inline.CONFIG.scores:
        assert code in REASONS
        assert REASONS[code].zh and REASONS[code].en


def test_same_person(session) -> None:
    a = person(session, "u-a")
    b = person(session, "u-b")
    assert codes(inline.rule_same_person(session, ctx(a, a))) == ["SAME_PERSON"]
    assert inline.rule_same_person(session, ctx(a, b)) == []
    # two persons later merged by OneID are one person
    identity.merge(session, a, b)
    assert codes(inline.rule_same_person(session, ctx(a, b))) == ["SAME_PERSON"]


@pytest.mark.parametrize(
    ("field", "id_type", "value", "code"),
    [
        ("device_id", "device_id", "DEV-1", "SHARED_DEVICE"),
        ("phone", "phone", "13812345678", "SHARED_PHONE"),
        ("payment_account", "payment_account", "alipay:2088000111", "SHARED_PAYMENT"),
    ],
)
def test_identifier_shared_with_inviter(session, field: str, id_type: str, value: str, code: str) -> None:
    inviter = person(session, "u-inviter", **{id_type: value})
    # the friend has a unionid of their own: OneID keeps them apart (two unionids = conflict)
    friend = person(session, "u-friend")
    assert codes(inline.rule_shared_with_inviter(session, ctx(inviter, friend, **{field: value}))) == [code]
    # negative: an identifier of nobody / of someone else
    other = person(session, "u-other", **{id_type: value.replace("1", "9")})
    assert (
        inline.rule_shared_with_inviter(session, ctx(inviter, friend, **{field: value.replace("1", "7")}))
        == []
    )
    assert (
        inline.rule_shared_with_inviter(session, ctx(inviter, other, **{field: value.replace("1", "9")}))
        == []
    )


def test_device_seen_with_the_inviter_in_an_earlier_sighting(session) -> None:
    inviter, friend = person(session, "u-i"), person(session, "u-f")
    x = person(session, "u-x")
    # the inviter once converted from DEV-9 (not registered in OneID: conversions carry no device link)
    inline.inline_check(
        session, ctx(x, inviter, stage="conversion", device_id="DEV-9", ts=T0 - timedelta(days=3))
    )
    assert codes(inline.rule_shared_with_inviter(session, ctx(inviter, friend, device_id="DEV-9"))) == [
        "SHARED_DEVICE"
    ]
    assert inline.rule_shared_with_inviter(session, ctx(inviter, friend, device_id="DEV-10")) == []


def test_ip_with_user_agent_but_not_ip_alone(session) -> None:
    boss, colleague, stranger = person(session, "u-boss"), person(session, "u-col"), person(session, "u-str")
    root = person(session, "u-root")
    # the inviter was seen on the office IP with UA_A
    inline.inline_check(
        session, ctx(root, boss, ip=OFFICE_IP, user_agent=UA_A, device_id="D-boss", ts=T0 - timedelta(days=5))
    )
    # a coworker on the same office IP, another phone (other UA): nothing
    assert (
        inline.rule_ip_ua(session, ctx(boss, colleague, ip=OFFICE_IP, user_agent=UA_B, device_id="D-col"))
        == []
    )
    # same IP and same UA: the signal, worth less than the hold threshold alone
    signals = inline.rule_ip_ua(session, ctx(boss, stranger, ip=OFFICE_IP, user_agent=UA_A))
    assert codes(signals) == ["SHARED_IP_UA"]
    assert signals[0].score < rules().risk_policy.hold_at
    # no user agent: never an IP-only match
    assert inline.rule_ip_ua(session, ctx(boss, stranger, ip=OFFICE_IP)) == []


def test_velocity(session) -> None:
    inviter = person(session, "u-vel")
    friends = [person(session, f"u-vf{i}") for i in range(8)]
    for i, f in enumerate(friends[: inline.CONFIG.velocity_max]):
        out = inline.inline_check(session, ctx(inviter, f, ts=T0 + timedelta(minutes=i)))
        assert "VELOCITY" not in codes(out)
    six = friends[inline.CONFIG.velocity_max]
    out = inline.rule_velocity(session, ctx(inviter, six, ts=T0 + timedelta(minutes=6)))
    assert codes(out) == ["VELOCITY"] and "6 accepts" in out[0].detail
    # the same count spread over hours is not velocity
    assert inline.rule_velocity(session, ctx(inviter, six, ts=T0 + timedelta(hours=3))) == []


def test_device_burst_and_ip_burst(session) -> None:
    inviter = person(session, "u-burst")
    farm = [person(session, f"u-farm{i}") for i in range(12)]
    for i, f in enumerate(farm[:3]):
        out = inline.inline_check(
            session, ctx(inviter, f, device_id="FARM-DEV", ts=T0 + timedelta(minutes=i))
        )
        assert "DEVICE_BURST" not in codes(out)
    out = inline.rule_bursts(
        session, ctx(inviter, farm[3], device_id="FARM-DEV", ts=T0 + timedelta(minutes=5))
    )
    assert codes(out) == ["DEVICE_BURST"]
    # a family: three accounts on one handset is not a burst; a fourth a week later neither
    assert (
        inline.rule_bursts(session, ctx(inviter, farm[3], device_id="FARM-DEV", ts=T0 + timedelta(days=7)))
        == []
    )
    # IP: ten new accounts in an hour is normal for an office; the eleventh is a burst
    for i, f in enumerate(farm[:10]):
        inline.inline_check(
            session, ctx(inviter, f, campaign="c2", ip="47.96.1.2", ts=T0 + timedelta(minutes=i))
        )
    assert codes(
        inline.rule_bursts(session, ctx(inviter, farm[10], ip="47.96.1.2", ts=T0 + timedelta(minutes=20)))
    ) == ["IP_BURST"]
    assert (
        inline.rule_bursts(session, ctx(inviter, farm[10], ip="47.96.1.3", ts=T0 + timedelta(minutes=20)))
        == []
    )


@pytest.mark.parametrize(
    "phone", ["16212345678", "+86 170-1234-5678", "17112345678", "16712345678", "16512345678"]
)
def test_virtual_operator_phone(session, phone: str) -> None:
    assert codes(inline.rule_virtual_phone(session, ctx(1, 2, phone=phone))) == ["VIRTUAL_PHONE"]


@pytest.mark.parametrize("phone", ["13812345678", "17712345678", "1701234", None])
def test_ordinary_phone_is_not_virtual(session, phone: str | None) -> None:
    assert inline.rule_virtual_phone(session, ctx(1, 2, phone=phone)) == []


def test_virtual_prefixes_are_configurable(session, monkeypatch) -> None:
    monkeypatch.setenv("LIEBIAN_FRAUD_VIRTUAL_PREFIXES", '["192"]')
    from liebian.config import reset_settings_cache

    reset_settings_cache()
    assert codes(inline.rule_virtual_phone(session, ctx(1, 2, phone="19212345678"))) == ["VIRTUAL_PHONE"]
    assert inline.rule_virtual_phone(session, ctx(1, 2, phone="17012345678")) == []
    reset_settings_cache()


def test_new_device_requirement(session) -> None:
    inviter, friend, neighbour = (
        person(session, "u-nd-i"),
        person(session, "u-nd-f"),
        person(session, "u-nd-n"),
    )
    # a device another account used before (seen at that account's conversion)
    inline.inline_check(
        session, ctx(inviter, neighbour, stage="conversion", device_id="OLD-DEV", ts=T0 - timedelta(days=2))
    )
    assert codes(inline.rule_new_device(session, ctx(inviter, friend, device_id="OLD-DEV"))) == [
        "DEVICE_NOT_NEW"
    ]
    # a device registered in OneID to someone else
    person(session, "u-owner", device_id="OWNED-DEV")
    assert codes(inline.rule_new_device(session, ctx(inviter, friend, device_id="OWNED-DEV"))) == [
        "DEVICE_NOT_NEW"
    ]
    # a brand-new device, or a campaign that does not ask for new users: nothing
    assert inline.rule_new_device(session, ctx(inviter, friend, device_id="NEW-DEV")) == []
    lax = rules(require_new_friend=False)
    assert (
        inline.rule_new_device(session, ctx(inviter, friend, device_id="OLD-DEV", campaign_rules=lax)) == []
    )


def test_cap_hit(session) -> None:
    capped = rules(per_inviter_cap=2)
    inviter = person(session, "u-cap")
    friends = [person(session, f"u-capf{i}") for i in range(3)]
    for i, f in enumerate(friends[:2]):
        out = inline.inline_check(session, ctx(inviter, f, campaign_rules=capped, ts=T0 + timedelta(hours=i)))
        assert "CAP_HIT" not in codes(out)
    assert codes(inline.rule_cap(session, ctx(inviter, friends[2], campaign_rules=capped))) == ["CAP_HIT"]
    # no cap, or another campaign: nothing
    assert inline.rule_cap(session, ctx(inviter, friends[2])) == []
    assert inline.rule_cap(session, ctx(inviter, friends[2], campaign="other", campaign_rules=capped)) == []


def test_device_and_ip_caps_count_exactly_in_the_campaigns_counters(session) -> None:
    capped = rules(per_device_cap=2, per_ip_cap=3)
    inviter = person(session, "u-dc")
    seen = [
        codes(
            inline.rule_cap(
                session, ctx(inviter, 100 + i, campaign_rules=capped, device_id="D-1", ip="9.9.9.9")
            )
        )
        for i in range(4)
    ]
    assert seen == [[], [], ["device_cap"], ["device_cap", "ip_cap"]]
    # another campaign counts on its own; a conversion is not an accept
    assert (
        inline.rule_cap(session, ctx(inviter, 200, campaign="c9", campaign_rules=capped, device_id="D-1"))
        == []
    )
    assert (
        inline.rule_cap(
            session, ctx(inviter, 201, stage="conversion", campaign_rules=capped, device_id="D-1")
        )
        == []
    )


def test_circular_referral_across_campaigns(session) -> None:
    a, b, c = person(session, "u-ca"), person(session, "u-cb"), person(session, "u-cc")
    inline.inline_check(session, ctx(a, b, campaign="c_one", ts=T0))
    assert codes(inline.rule_circular(session, ctx(b, a, campaign="c_two", ts=T0 + timedelta(hours=1)))) == [
        "CIRCULAR"
    ]
    assert inline.rule_circular(session, ctx(b, c, campaign="c_two")) == []


def test_inline_check_records_each_sighting_without_clear_user_agent(session) -> None:
    a, b = person(session, "u-s1"), person(session, "u-s2")
    inline.inline_check(session, ctx(a, b, ip="1.2.3.4", user_agent=UA_A, device_id="D"))
    row = session.scalar(select(FraudSighting))
    assert session.scalar(select(func.count()).select_from(FraudSighting)) == 1
    assert row.ua_hash == inline.ua_hash(UA_A) and len(row.ua_hash) == 16 and UA_A not in row.ua_hash


# ---------------------------------------------------------------- through the campaign API


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield client


def _campaign(client, cid: str, **overrides) -> str:
    doc = {
        "type": "double_sided", "title": "邀友有礼", "rules_text": "每邀请一位新朋友完成首单即可获得奖励",
        "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
        "per_inviter_cap": 20, "budget_fen": 1_000_000, "hold_days": 7, "claim_window_days": 7,
        "collects": ["phone"], "consent_step": True,
    }  # fmt: skip
    doc.update(overrides)
    r = client.post("/api/v1/campaigns", json={"id": cid, "rules": doc})
    assert r.status_code == 201, r.text
    assert client.post(f"/api/v1/campaigns/{cid}/launch").status_code == 200
    return cid


def _invite(client, cid: str, uid: str) -> str:
    r = client.post(f"/api/v1/campaigns/{cid}/invites", json={"id_type": "unionid", "id": uid})
    assert r.status_code == 200, r.text
    return r.json()["code"]


def _accept(client, code: str, uid: str, **extra) -> dict:
    r = client.post("/api/v1/invites/accept", json={"code": code, "id_type": "unionid", "id": uid, **extra})
    assert r.status_code == 201, r.text
    return r.json()


def test_coworkers_on_one_office_ip_with_different_devices_are_not_held(api) -> None:
    cid = _campaign(api, "c_office")
    code = _invite(api, cid, "boss")
    states = []
    for i in range(4):
        out = _accept(
            api, code, f"colleague{i}", device_id=f"PHONE-{i}", ip=OFFICE_IP, user_agent=[UA_A, UA_B][i % 2]
        )
        states.append(out["state"])
        assert not {s["code"] for s in out["signals"]} & {
            "SHARED_DEVICE",
            "DEVICE_BURST",
            "IP_BURST",
            "DEVICE_NOT_NEW",
        }
    assert states == ["accepted"] * 4


def test_a_farm_bursting_from_one_ip_and_user_agent_is_held_through_the_seam(api) -> None:
    # The engine itself refuses a second account on a registered device (same friend), so a farm
    # rotates device ids: the burst from one address and the velocity on one inviter remain.
    cid = _campaign(api, "c_farm", require_new_friend=False)
    code = _invite(api, cid, "farmer")
    outs = [
        _accept(api, code, f"bot{i}", device_id=f"EMU-{i}", ip="47.96.3.4", user_agent=UA_B)
        for i in range(12)
    ]
    states = [o["state"] for o in outs]
    # From the third account on one IP + user agent: IP_UA_CLUSTER (20), under the hold threshold
    # alone; with VELOCITY (40, from the sixth accept) the two medium signals hold the referral.
    assert states[:5] == ["accepted"] * 5
    assert [{s["code"] for s in o["signals"]} for o in outs[:3]] == [set(), set(), {"IP_UA_CLUSTER"}]
    assert states[5:] == ["held"] * 7
    assert {s["code"] for s in outs[5]["signals"]} == {"VELOCITY", "IP_UA_CLUSTER"}
    assert {s["code"] for s in outs[10]["signals"]} == {"VELOCITY", "IP_BURST", "IP_UA_CLUSTER"}
    assert outs[10]["risk_score"] == sum(
        inline.CONFIG.scores[c] for c in ("VELOCITY", "IP_BURST", "IP_UA_CLUSTER")
    )
    with session_scope() as s:
        assert (
            s.scalar(select(func.count()).select_from(FraudSighting).where(FraudSighting.campaign_id == cid))
            == 12
        )
