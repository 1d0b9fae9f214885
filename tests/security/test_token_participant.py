"""The public key sees only its caller: `my/*`, progress and consent need the participant token the
invite and accept answers carry, and no answer tells an existing identifier from an unknown one."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from liebian.config import reset_settings_cache
from liebian.privacy import tokens
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import Api, rules  # noqa: E402


@pytest.fixture
def clients(store, admin_headers, public_headers):
    app = create_app()
    with TestClient(app, headers=admin_headers) as admin, TestClient(app, headers=public_headers) as public:
        yield Api(admin), public


def _journey(admin: Api, public: TestClient) -> tuple[dict, dict]:
    """alice invites bob through the public key; bob orders; returns their invite and accept answers."""
    admin.create(rules("double_sided", hold_days=0), cid="ds")
    invite = public.post(
        "/api/v1/campaigns/ds/invites", json={"id_type": "unionid", "id": "alice", "channel": "share"}
    )
    assert invite.status_code == 200, invite.text
    accepted = public.post(
        "/api/v1/invites/accept", json={"code": invite.json()["code"], "id_type": "unionid", "id": "bob"}
    )
    assert accepted.status_code == 201, accepted.text
    assert admin.order("ds", "bob", "o-1").status_code == 200
    return invite.json(), accepted.json()


def test_public_key_reads_only_the_token_s_person(clients):
    admin, public = clients
    invite, accepted = _journey(admin, public)
    alice, bob = invite["inviter_person_id"], accepted["friend_person_id"]
    as_alice = {tokens.HEADER: invite["participant_token"]}
    as_bob = {tokens.HEADER: accepted["participant_token"]}

    # without a token: refused, whoever is named (the reproduction: this answered alice's rewards)
    r = public.get("/api/v1/my/rewards", params={"person_id": alice})
    assert (r.status_code, r.json()["code"]) == (401, "participant_token")
    mine = public.get("/api/v1/my/rewards", headers=as_alice).json()
    assert mine["rewards"] and {x["person_id"] for x in mine["rewards"]} == {alice}
    assert public.get("/api/v1/my/rewards", params={"person_id": alice}, headers=as_alice).status_code == 200
    # naming someone else, existing (bob) or not: the same 403
    for other in (bob, 424242424242):
        r = public.get("/api/v1/my/rewards", params={"person_id": other}, headers=as_alice)
        assert (r.status_code, r.json()["code"]) == (403, "forbidden")
    bobs = public.get("/api/v1/my/rewards", headers=as_bob).json()
    assert {x["person_id"] for x in bobs["rewards"]} == {bob}
    # operators still name any person
    assert admin.c.get("/api/v1/my/rewards", params={"person_id": bob}).json() == bobs


def test_progress_is_no_membership_oracle(clients):
    admin, public = clients
    invite, accepted = _journey(admin, public)
    # the reproduction: 200 for a known identifier, 404 for an unknown one
    answers = {
        uid: public.get("/api/v1/campaigns/ds/progress", params={"id_type": "unionid", "id": uid})
        for uid in ("alice", "nobody-at-all")
    }
    assert {(r.status_code, r.json()["code"]) for r in answers.values()} == {(401, "participant_token")}
    as_alice = {tokens.HEADER: invite["participant_token"]}
    mine = public.get("/api/v1/campaigns/ds/progress", headers=as_alice).json()
    assert (mine["person_id"], mine["invited"]) == (invite["inviter_person_id"], 1)
    # identifiers sent beside the token are not consulted: the same answer for known and unknown ones
    for uid in ("bob", "nobody-at-all"):
        r = public.get(
            "/api/v1/campaigns/ds/progress", params={"id_type": "unionid", "id": uid}, headers=as_alice
        )
        assert r.json() == mine
    # bob's token: bob's own (empty) progress as an inviter
    as_bob = {tokens.HEADER: accepted["participant_token"]}
    bobs = public.get("/api/v1/campaigns/ds/progress", headers=as_bob).json()
    assert (bobs["person_id"], bobs["invited"]) == (accepted["friend_person_id"], 0)
    # the invite lookup by code never carries the inviter's token
    assert "participant_token" not in public.get(f"/api/v1/invites/{invite['code']}").json()


def test_forged_tampered_and_expired_tokens_are_refused_alike(clients, monkeypatch):
    admin, public = clients
    invite, _ = _journey(admin, public)
    good = invite["participant_token"]
    version, pid, expires, sig = good.split(".")
    monkeypatch.setenv("LIEBIAN_PARTICIPANT_TOKEN_TTL_SECONDS", "60")
    reset_settings_cache()
    expired = tokens.issue(int(pid), now=time.time() - 120)
    for bad in (
        "",
        "garbage",
        f"{version}.{int(pid) + 1}.{expires}.{sig}",  # another person, same signature
        f"{version}.{pid}.{int(expires) + 10**6}.{sig}",  # a longer life
        expired,
    ):
        r = public.get("/api/v1/my/rewards", headers={tokens.HEADER: bad})
        assert (r.status_code, r.json()["code"]) == (401, "participant_token"), bad
    assert tokens.verify(tokens.issue(int(pid))) == int(pid)
    assert int(tokens.issue(1).split(".")[2]) - time.time() <= 60


def test_a_typed_phone_earns_no_token_from_the_public_key(clients):
    """Anyone can type someone else's phone: with the public key, a phone invite carries no token
    (a unionid, which WeChat gives only to its owner, does); the brand's server key gets one."""
    admin, public = clients
    admin.create(rules("double_sided"), cid="ds")
    body = {"id_type": "phone", "id": "13912345678", "channel": "share"}
    by_public = public.post("/api/v1/campaigns/ds/invites", json=body)
    assert by_public.status_code == 200 and by_public.json()["participant_token"] is None
    by_server = admin.c.post("/api/v1/campaigns/ds/invites", json=body).json()
    assert tokens.verify(by_server["participant_token"]) == by_server["inviter_person_id"]
