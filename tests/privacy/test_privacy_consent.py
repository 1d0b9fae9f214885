"""Consent: versioned notices, records per purpose, withdrawal counts at once, re-consent, merges."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.privacy import service, tokens


def _person(session, openid: str) -> int:
    return identity.resolve(session, [identity.RawIdentifier("openid", openid)], source="test")[
        ("openid", openid)
    ]


def _person_outside_session(openid: str) -> int:
    with session_scope() as s:
        return _person(s, openid)


def _notice(session, reconsent=()):
    return service.publish_notice(
        session,
        title="隐私政策",
        body="我们收集手机号用于会员识别……",
        purposes=["collection", "marketing", "analytics"],
        reconsent_purposes=list(reconsent),
        actor="user:dpo",
    )


def test_consent_grant_withdraw_and_reconsent(session):
    alice, bob = _person(session, "o-alice-0001"), _person(session, "o-bob-00002")
    # no notice, no consent: nothing counts, and a grant needs a published notice
    assert not service.has_consent(session, alice, "marketing")
    with pytest.raises(service.PrivacyError, match="publish a privacy notice"):
        service.record_consent(session, alice, "marketing", True, actor="t")
    v1 = _notice(session)["version"]
    service.record_consent(session, alice, "marketing", True, actor="t", source="miniprogram")
    assert service.has_consent(session, alice, "marketing")
    assert not service.has_consent(session, alice, "analytics")  # per purpose
    assert not service.has_consent(session, bob, "marketing")  # per person
    # sharing is not in the notice: no grant for it
    with pytest.raises(service.PrivacyError, match="does not describe"):
        service.record_consent(session, alice, "sharing", True, actor="t")
    with pytest.raises(service.PrivacyError, match="unknown"):
        service.record_consent(session, alice, "profiling", True, actor="t")

    # withdrawal counts from the moment it is stored
    service.record_consent(session, alice, "marketing", False, actor="t")
    assert not service.has_consent(session, alice, "marketing")
    service.record_consent(session, alice, "marketing", True, actor="t")
    service.record_consent(session, bob, "analytics", True, actor="t")
    assert service.consented(session, [alice, bob], "marketing") == {alice}

    # a material change: v2 requires marketing consent again; analytics grants under v1 still count
    v2 = _notice(session, reconsent=["marketing"])["version"]
    assert v2 == v1 + 1
    assert not service.has_consent(session, alice, "marketing")
    assert service.has_consent(session, bob, "analytics")
    service.record_consent(session, alice, "marketing", True, actor="t")
    assert service.has_consent(session, alice, "marketing")
    state = {r["purpose"]: r for r in service.consent_state(session, alice)}
    assert state["marketing"]["notice_version"] == v2 and state["marketing"]["effective"]
    assert not state["sharing"]["granted"]


def test_consent_follows_merges(session):
    a, b = _person(session, "o-merge-a01"), _person(session, "o-merge-b01")
    _notice(session)
    service.record_consent(session, b, "marketing", True, actor="t")
    survivor = identity.merge(session, a, b)
    other = b if survivor == a else a
    assert service.has_consent(session, survivor, "marketing")
    # the merged id asks for the survivor's consent
    assert service.has_consent(session, other, "marketing")


def test_consent_over_http_and_cli(store, admin_headers, public_headers, monkeypatch):
    from liebian.cli import app as cli_app
    from liebian.web.app import create_app

    with session_scope() as s:
        pid = _person(s, "o-http-000001")
    client = TestClient(create_app(run_migrations=False))
    body = {"title": "隐私政策 v1", "body": "…", "purposes": ["collection", "marketing"]}
    # only privacy admins publish; the front end's public key cannot
    assert client.post("/api/v1/privacy/notices", json=body, headers=public_headers).status_code == 403
    assert client.post("/api/v1/privacy/notices", json=body, headers=admin_headers).status_code == 201
    assert client.get("/api/v1/privacy/notices/current", headers=public_headers).json()["version"] == 1
    # the front end records the user's choice with the public key and the user's participant token
    mine = public_headers | {tokens.HEADER: tokens.issue(pid)}
    r = client.post(
        "/api/v1/privacy/consents",
        json={"person_id": pid, "purpose": "marketing", "granted": True},
        headers=mine,
    )
    assert r.status_code == 201, r.text
    # another person, existing or not, is refused alike; no token is refused
    for other in (424242, _person_outside_session("o-http-000002")):
        r = client.post(
            "/api/v1/privacy/consents",
            json={"person_id": other, "purpose": "marketing", "granted": False},
            headers=mine,
        )
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    r = client.post(
        "/api/v1/privacy/consents",
        json={"person_id": pid, "purpose": "marketing", "granted": False},
        headers=public_headers,
    )
    assert (r.status_code, r.json()["code"]) == (401, "participant_token")
    r = client.post(
        "/api/v1/privacy/consents",
        json={"person_id": 424242, "purpose": "marketing", "granted": True},
        headers=admin_headers,
    )
    assert r.status_code == 404 and "person_id" in r.json()["detail"]
    # but cannot read anyone's consent
    assert client.get(f"/api/v1/privacy/consents/{pid}", headers=public_headers).status_code == 403
    states = {
        s["purpose"]: s["effective"]
        for s in client.get(f"/api/v1/privacy/consents/{pid}", headers=admin_headers).json()
    }
    assert states == {"collection": False, "marketing": True, "analytics": False, "sharing": False}
    # withdrawal from the CLI is honoured at once
    r = CliRunner().invoke(cli_app, ["privacy", "consent", "record", str(pid), "marketing", "--withdraw"])
    assert r.exit_code == 0, r.output
    with session_scope() as s:
        assert not service.has_consent(s, pid, "marketing")
