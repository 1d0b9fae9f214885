"""Versions, lifecycle, attribution (first/last touch, chains), OneID merges, rules and the audit trail."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian import ports
from liebian.campaigns import budget, flows, invites
from liebian.campaigns import service as campaigns
from liebian.campaigns.schemas import AcceptRequest, ConversionRequest, Participant
from liebian.cli import app as cli
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import service as rewards
from liebian.risk import RiskContext, RiskSignal
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


def pid(uid: str) -> int:
    with session_scope() as s:
        return identity.current_person(s, identity.find_person(s, "unionid", uid))


def ledger(cid: str) -> list:
    with session_scope() as s:
        return rewards.list_rewards(s, campaign_id=cid, limit=1000)


def test_each_referral_is_judged_by_the_version_in_force(api: Api) -> None:
    api.create(rules("double_sided"), "ver")
    code = api.invite("ver", "alice")["code"]
    assert api.accept(code, "bob").json()["version"] == 1
    doc = rules("double_sided", inviter_reward={"code": "INV2", "value_fen": 2000})
    edited = api.c.put("/api/v1/campaigns/ver", json={"rules": doc, "note": "double the reward"})
    assert edited.status_code == 200 and edited.json()["version"] == 2
    assert api.accept(code, "carl").json()["version"] == 2
    api.order("ver", "bob", "o-bob")
    api.order("ver", "carl", "o-carl")
    got = sorted((r.reward_code, r.value_fen) for r in ledger("ver") if r.person_id == pid("alice"))
    assert got == [("INV", 1000), ("INV2", 2000)]
    versions = api.c.get("/api/v1/campaigns/ver/versions").json()
    assert [(v["version"], v["note"]) for v in versions] == [(1, ""), (2, "double the reward")]
    # A launched campaign keeps its type.
    r = api.c.put("/api/v1/campaigns/ver", json={"rules": rules("invite_task")})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "type"


def test_lifecycle_pause_resume_end_and_audit(api: Api) -> None:
    api.create(rules("double_sided"), "life")
    code = api.invite("life", "alice")["code"]
    assert api.c.post("/api/v1/campaigns/life/pause").json()["status"] == "paused"
    r = api.accept(code, "bob")
    assert r.status_code == 409 and r.json()["code"] == "campaign_not_live"
    assert api.c.post("/api/v1/campaigns/life/launch").json()["status"] == "live"
    assert api.accept(code, "bob").status_code == 201
    assert api.c.post("/api/v1/campaigns/life/end").json()["status"] == "ended"
    assert api.accept(code, "carl").json()["code"] == "campaign_not_live"
    assert api.c.put("/api/v1/campaigns/life", json={"rules": rules("double_sided")}).status_code == 409
    actions = [a["action"] for a in reversed(api.c.get("/api/v1/campaigns/life/audit").json())]
    assert actions == [
        "campaign.create",
        "campaign.launch",
        "invite.create",
        "campaign.pause",
        "campaign.launch",
        "referral.accept",
        "campaign.end",
    ]
    listed = {c["id"]: c["status"] for c in api.c.get("/api/v1/campaigns").json()}
    assert listed == {"life": "ended"}


def test_scheduled_campaign_goes_live_at_its_start(api: Api) -> None:
    doc = rules("double_sided", start_at="2099-01-01T00:00:00", end_at="2099-02-01T00:00:00")
    assert api.create(doc, "later")["status"] == "scheduled"
    r = api.c.post("/api/v1/campaigns/later/invites", json={"id_type": "unionid", "id": "alice"})
    assert r.status_code == 409 and "scheduled" in r.json()["detail"]


def test_last_touch_moves_the_friend_and_chains_are_recorded(api: Api) -> None:
    api.create(rules("double_sided", attribution="last_touch"), "lt")
    alice_code = api.invite("lt", "alice")["code"]
    dave_code = api.invite("lt", "dave")["code"]
    assert api.accept(alice_code, "bob").status_code == 201
    moved = api.accept(dave_code, "bob")
    assert moved.status_code == 201 and moved.json()["reattributed"] is True
    assert api.accept(dave_code, "bob").json()["code"] == "already_accepted"
    api.order("lt", "bob", "o-bob")
    inviter_rewards = Counter(r.person_id for r in ledger("lt") if r.reward_code == "INV")
    assert inviter_rewards == {pid("dave"): 1}
    # bob brings carl: generation 2 under bob's referral
    bob_code = api.invite("lt", "bob")["code"]
    assert api.accept(bob_code, "carl").json()["generation"] == 2
    tree = {r["friend_person_id"]: r for r in api.c.get("/api/v1/campaigns/lt/referrals").json()}
    assert tree[pid("carl")]["parent_referral_id"] == tree[pid("bob")]["referral_id"]
    assert tree[pid("bob")]["inviter_person_id"] == pid("dave")


def test_claim_window_and_qualifying_amount(api: Api) -> None:
    doc = rules("double_sided", qualifying_event={"kind": "order_min_amount", "min_amount_fen": 5000})
    api.create(doc, "min")
    code = api.invite("min", "alice")["code"]
    api.accept(code, "bob")
    small = api.order("min", "bob", "o-small", amount_fen=4999).json()
    assert small["status"] == "not_qualifying" and ledger("min") == []
    wrong_region = api.order("min", "bob", "o-west", amount_fen=9000, region="west").json()
    assert wrong_region["status"] == "out_of_scope" and "west" in wrong_region["reason"]
    assert api.order("min", "bob", "o-big", amount_fen=5000).json()["status"] == "qualified"
    assert (
        api.order("min", "bob", "o-again", amount_fen=9000).json()["reason"]
        == "the referral qualified already"
    )
    assert len(ledger("min")) == 2


def test_referrer_spending_threshold(api: Api) -> None:
    api.create(rules("double_sided", referrer_min_spend_fen=10000), "spend")
    code = api.invite("spend", "alice")["code"]
    api.accept(code, "bob")
    api.accept(code, "carl")
    first = api.order("spend", "bob", "o-bob").json()
    assert "referrer_spend_below_threshold" in first["reason"]
    api.order("spend", "alice", "alice-own", amount_fen=10000)  # alice spends enough herself
    api.order("spend", "carl", "o-carl")
    got = Counter((r.person_id == pid("alice"), r.reward_code) for r in ledger("spend"))
    assert got == {(False, "NEW"): 2, (True, "INV"): 1}


def test_referrals_follow_oneid_merges(api: Api) -> None:
    api.create(rules("double_sided"), "merge")
    code = api.invite("merge", "alice")["code"]
    bob = api.accept(code, "bob").json()["friend_person_id"]
    with session_scope() as s:  # a later import proves bob's unionid and a phone are one human
        phone_person = identity.resolve(s, [identity.RawIdentifier("phone", "13800000001")])
        identity.link(
            s,
            [
                identity.LinkEvidence(
                    identity.RawIdentifier("unionid", "bob"), identity.RawIdentifier("phone", "13800000001")
                )
            ],
        )
    survivor = pid("bob")
    assert survivor == min(bob, *phone_person.values())
    tree = api.c.get("/api/v1/campaigns/merge/referrals").json()
    assert [r["friend_person_id"] for r in tree] == [survivor]
    # The merged person's order still finds the referral.
    assert api.order("merge", "bob", "o1").json()["status"] == "qualified"
    # Linking the inviter to the friend reveals a self-referral: the referral is held for review.
    carl_ref = api.c.post(
        "/api/v1/invites/accept", json={"code": code, "id_type": "openid", "id": "carl-oa"}
    ).json()
    with session_scope() as s:
        identity.link(
            s,
            [
                identity.LinkEvidence(
                    identity.RawIdentifier("unionid", "alice"), identity.RawIdentifier("openid", "carl-oa")
                )
            ],
        )
    tree = {r["referral_id"]: r for r in api.c.get("/api/v1/campaigns/merge/referrals").json()}
    assert tree[carl_ref["referral_id"]]["state"] == "held"


def test_cli_create_launch_compliance_poster_leaderboard(store: str, tmp_path) -> None:
    runner = CliRunner()
    doc = rules("leaderboard")
    (tmp_path / "lb.json").write_text(json.dumps(doc, ensure_ascii=False), encoding="utf-8")
    toml = tmp_path / "bad.toml"
    toml.write_text('type = "invite_task"\ntitle = "x"\nper_inviter_cap = 0\n', encoding="utf-8")
    r = runner.invoke(cli, ["campaign", "create", str(tmp_path / "lb.json"), "--id", "cli-lb", "-f", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["status"] == "draft"
    r = runner.invoke(cli, ["campaign", "create", str(toml)])
    assert r.exit_code == 2 and "tiers: invite_task campaigns need tiers" in r.output
    r = runner.invoke(cli, ["campaign", "compliance", "cli-lb", "-f", "json"])
    assert r.exit_code == 0 and json.loads(r.stdout)["passed"] is True
    assert runner.invoke(cli, ["campaign", "launch", "cli-lb"]).exit_code == 0
    out = tmp_path / "p.png"
    r = runner.invoke(
        cli,
        [
            "campaign",
            "poster",
            "cli-lb",
            "--id-type",
            "unionid",
            "--id",
            "alice",
            "--nickname",
            "小红",
            "-o",
            str(out),
        ],
    )
    assert r.exit_code == 0, r.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    r = runner.invoke(cli, ["campaign", "list", "-f", "json"])
    assert [c["id"] for c in json.loads(r.stdout)] == ["cli-lb"]
    with session_scope() as s:
        code = invites.get_invite(s, "cli-lb", Participant(id_type="unionid", id="alice"), channel="poster")[
            "code"
        ]
    with session_scope() as s:
        flows.accept_invite(s, AcceptRequest(code=code, id_type="unionid", id="bob"))
        flows.report_conversion(
            s, "cli-lb", ConversionRequest(id_type="unionid", id="bob", order_id="o1", region="east")
        )
    r = runner.invoke(cli, ["campaign", "leaderboard", "cli-lb", "-f", "json"])
    assert [(b["nickname"], b["qualified"]) for b in json.loads(r.stdout)] == [("小红", 1)]


def test_risk_policy_holds_and_blocks(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    """A check scoring 60 holds the referral (rewards pending, held for review); a circular referral blocks."""
    api.create(rules("double_sided", require_new_friend=False), "risk")
    code = api.invite("risk", "alice")["code"]

    def suspicious_ua(_session, ctx: RiskContext) -> list[RiskSignal]:
        if ctx.user_agent == "bot":
            return [RiskSignal("test_ua", 60, "scripted client")]
        return []

    wiring = ports.current()
    monkeypatch.setattr(ports, "_current", wiring.with_(risk_checks=(*wiring.risk_checks, suspicious_ua)))
    held = api.accept(code, "bob", user_agent="bot")
    assert held.status_code == 201 and held.json()["state"] == "held"
    assert [s["code"] for s in held.json()["signals"]] == ["test_ua"]
    api.order("risk", "bob", "o-bob")
    assert {(r.reward_code, r.state) for r in ledger("risk")} == {("INV", "pending"), ("NEW", "pending")}
    with session_scope() as s:
        got = [rewards.get_reward(s, r.id) for r in ledger("risk")]
        assert all(r.held_for_review for r in got)
        assert rewards.release_due(s, utcnow() + timedelta(days=30)) == 0
    # bob invites alice back: alice is upstream of bob — a circular referral, blocked and kept.
    bob_code = api.invite("risk", "bob")["code"]
    blocked = api.accept(bob_code, "alice")
    assert blocked.status_code == 403 and blocked.json()["code"] == "blocked"
    assert "circular_referral" in [s["code"] for s in blocked.json()["signals"]]
    tree = api.c.get("/api/v1/campaigns/risk/referrals").json()
    assert [r["state"] for r in tree] == ["held", "blocked"]


def test_close_due_ends_and_settles_a_leaderboard_past_its_end(api: Api) -> None:
    api.create(rules("leaderboard", end_at="2099-01-01T00:00:00"), "lbend")
    code = api.invite("lbend", "alice")["code"]
    api.accept(code, "bob")
    api.order("lbend", "bob", "o1")
    with session_scope() as s:
        assert campaigns.close_due(s) == []  # not yet over
    with session_scope() as s:
        assert campaigns.close_due(s, now=datetime(2099, 1, 2)) == ["lbend"]
    with session_scope() as s:
        assert campaigns.close_due(s, now=datetime(2099, 1, 3)) == []
    assert [(r.person_id, r.reward_code) for r in ledger("lbend")] == [(pid("alice"), "GOLD")]
    assert api.c.get("/api/v1/campaigns/lbend").json()["status"] == "ended"


def test_a_reward_rejected_in_the_ledger_gives_its_budget_back(api: Api) -> None:
    api.create(rules("double_sided"), "rej")
    code = api.invite("rej", "alice")["code"]
    api.accept(code, "bob")
    api.order("rej", "bob", "o1")
    assert api.c.get("/api/v1/campaigns/rej").json()["budget_used_fen"] == 1500
    friend_reward = next(r for r in ledger("rej") if r.reward_code == "NEW")
    with session_scope() as s:  # an operator rejects it through the ledger, not through the campaign
        rewards.transition(s, friend_reward.id, "rejected", idempotency_key="review-1", actor="ops")
    # the ledger told the campaign budget in the same transaction (a wired subscriber, not a poll)
    assert api.c.get("/api/v1/campaigns/rej").json()["budget_used_fen"] == 1000
    with session_scope() as s:  # so the repair job has nothing left to do
        assert budget.reconcile_reservations(s) == 0
    assert api.c.get("/api/v1/campaigns/rej").json()["budget_used_fen"] == 1000


def test_the_repair_job_releases_what_a_process_without_the_subscriber_missed(api: Api) -> None:
    api.create(rules("double_sided"), "rep")
    api.accept(api.invite("rep", "alice")["code"], "bob")
    api.order("rep", "bob", "o1")
    friend_reward = next(r for r in ledger("rep") if r.reward_code == "NEW")
    wiring = ports.current()
    unsubscribed = tuple(s for s in wiring.ledger_subscribers if s is not budget.release_on_entry)
    with ports.use(wiring.with_(ledger_subscribers=unsubscribed)), session_scope() as s:
        rewards.transition(s, friend_reward.id, "rejected", idempotency_key="review-1", actor="ops")
    assert api.c.get("/api/v1/campaigns/rep").json()["budget_used_fen"] == 1500
    with session_scope() as s:
        assert budget.reconcile_reservations(s) == 1
    with session_scope() as s:
        assert budget.reconcile_reservations(s) == 0
    assert api.c.get("/api/v1/campaigns/rep").json()["budget_used_fen"] == 1000
