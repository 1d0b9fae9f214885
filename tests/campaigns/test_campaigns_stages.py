"""Staged roll-out (001 §4.1: pilot → rollout → optimise, with the exit rule) and rule variants per
region / store type, end to end over HTTP as an operator and a brand's front end use them, on
SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.auth import service as auth_service
from liebian.campaigns import jobs, stages
from liebian.campaigns.schemas import AcceptRequest
from liebian.campaigns.stage_schemas import StagePlanDoc
from liebian.cli import app as cli
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.rewards import service as rewards
from liebian.web.app import create_app

WEST = {
    "name": "west-mall",
    "region": "west",
    "overrides": {"inviter_reward": {"code": "INV-W", "value_fen": 1500}},
}

PLAN = {
    "pilot": {"regions": ["east"]},
    "gates": {"pilot": {"min_participants": 2, "min_qualified": 2, "min_fission_rate": 0.5}},
    "exit_rules": {
        "rollout": {
            "min_fission_rate": 0.10,
            "min_participants": 5,
            "action": "raise",
            "step_pct": 0.5,
            "max_reward_fen": 1800,
        }
    },
}


@pytest.fixture
def client(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def _pid(uid: str) -> int:
    with session_scope() as s:
        return identity.current_person(s, identity.find_person(s, "unionid", uid))


def _rewards_of(cid: str, uid: str) -> list[tuple[str, int]]:
    with session_scope() as s:
        found = rewards.list_rewards(s, campaign_id=cid, limit=1000)
    return sorted((r.reward_code, r.value_fen) for r in found if r.person_id == _pid(uid))


def test_a_staged_campaign_pilot_in_one_region_gate_rollout_and_the_exit_rule(client: TestClient) -> None:
    api = Api(client)
    doc = rules("double_sided", regions=["east", "west"], variants=[WEST])
    api.create(doc, "staged")
    r = client.put("/api/v1/campaigns/staged/stages", json=PLAN)
    assert r.status_code == 200, r.text
    assert r.json()["stage"] == "pilot" and r.json()["next_stage"] == "rollout"

    # pilot: only the east region is admitted, with a stable error code for everyone else
    alice = api.invite("staged", "alice")["code"]
    assert api.accept(alice, "bob", region="east").status_code == 201
    outside = api.accept(alice, "wendy", region="west")
    assert outside.status_code == 403 and outside.json()["code"] == "outside_pilot"
    assert outside.json()["errors"][0]["field"] == "region"
    assert api.accept(alice, "nowhere").json()["code"] == "outside_pilot"  # no region given
    carol = api.invite("staged", "carol")["code"]
    assert api.accept(carol, "dave", region="east").status_code == 201

    # the gate is not met before the friends buy: moving on is refused, saying which metric fails
    refused = client.post("/api/v1/campaigns/staged/stages/advance", json={})
    assert refused.status_code == 409 and refused.json()["code"] == "stage_gate_not_met"
    assert {e["field"] for e in refused.json()["errors"]} == {"qualified", "fission_rate"}
    api.order("staged", "bob", "o-bob")
    api.order("staged", "dave", "o-dave")
    gate = client.post("/api/v1/campaigns/staged/stages/evaluate").json()
    assert gate["passed"] and gate["metrics"]["participants"] == 2 and gate["metrics"]["qualified"] == 2
    assert gate["metrics"]["fission_rate"] == 1.0
    moved = client.post("/api/v1/campaigns/staged/stages/advance", json={"note": "pilot ok"})
    assert moved.status_code == 200 and moved.json()["stage"] == "rollout"

    # rollout: the west region joins, judged under its variant (a larger inviter reward)
    assert api.accept(alice, "wendy", region="west").status_code == 201
    assert api.order("staged", "wendy", "o-wendy", region="west").json()["status"] == "qualified"
    assert _rewards_of("staged", "alice") == [("INV", 1000), ("INV-W", 1500)]

    # ten more sharers bring nobody: 1 qualified / 11 participants = 9 % < 10 % → the exit rule fires
    for i in range(10):
        api.invite("staged", f"quiet-{i}")
    view = client.get("/api/v1/campaigns/staged/stages").json()
    assert view["exit_rule"]["action"] == "due" and view["exit_rule"]["metrics"]["participants"] == 11
    fired = client.post("/api/v1/campaigns/staged/stages/exit-rule").json()
    assert fired["fired"] and fired["action"] == "raised", fired
    rules_now = client.get("/api/v1/campaigns/staged").json()
    assert rules_now["version"] == 2 and rules_now["status"] == "live"
    assert rules_now["rules"]["inviter_reward"]["value_fen"] == 1500
    assert rules_now["rules"]["friend_reward"]["value_fen"] == 750
    assert (
        rules_now["rules"]["variants"][0]["overrides"]["inviter_reward"]["value_fen"] == 1800
    )  # the ceiling
    again = client.post("/api/v1/campaigns/staged/stages/exit-rule").json()
    assert not again["fired"] and again["action"] == "cooldown"

    # everything is in the campaign's audit trail, the tamper-evident audit log and the history
    actions = [a["action"] for a in reversed(client.get("/api/v1/campaigns/staged/audit").json())]
    for expected in ("stage.plan", "stage.gate", "stage.enter", "stage.exit", "campaign.edit"):
        assert expected in actions, actions
    # the raise is the new version the exit rule made, recorded with it
    assert actions.index("stage.enter") < actions.index("campaign.edit") < actions.index("stage.exit")
    with session_scope() as s:
        chain = auth_service.audit_entries(s, action="campaign.stage.")
        assert auth_service.verify_audit(s)["ok"]
    kinds = [(e["action"], e["detail"].get("action")) for e in chain if e["target"] == "campaign:staged"]
    assert ("campaign.stage.enter", "pilot→rollout") in kinds and ("campaign.stage.exit", "raised") in kinds
    history = client.get("/api/v1/campaigns/staged/stages").json()["history"]
    assert [h["kind"] for h in history][:3] == ["exit", "enter", "gate"]

    # the console's detail page shows the stage, the gate against its thresholds and the history
    page = client.get("/campaigns/staged").text
    current = page.split('id="stage-current"')[1].split("</")[0]
    assert "推广" in current
    assert (
        'data-event="exit"' in page and 'data-event="enter"' in page and 'data-check="fission_rate"' in page
    )
    english = client.get("/campaigns/staged?lang=en").text
    assert "Rollout" in english and "Exit rule" in english


def test_the_exit_rule_pauses_at_the_ceiling_and_the_job_runs_it(client: TestClient) -> None:
    api = Api(client)
    api.create(rules("double_sided"), "capped")
    plan = {
        "pilot": {"share": 1.0},
        "exit_rules": {
            "pilot": {"min_participants": 3, "step_pct": 0.5, "max_reward_fen": 1000, "cooldown_hours": 0}
        },
        "auto_advance": False,
    }
    assert client.put("/api/v1/campaigns/capped/stages", json=plan).status_code == 200
    for i in range(3):
        api.invite("capped", f"idle-{i}")
    # the inviter's reward is at the ceiling already; the friend's is raised to it, then nothing is left
    assert jobs.check_stages()["exit_fired"] == ["capped"]
    assert client.get("/api/v1/campaigns/capped").json()["rules"]["friend_reward"]["value_fen"] == 750
    for i in range(3, 6):
        api.invite("capped", f"idle-{i}")
    assert jobs.check_stages()["exit_fired"] == ["capped"]
    assert client.get("/api/v1/campaigns/capped").json()["rules"]["friend_reward"]["value_fen"] == 1000
    for i in range(6, 9):
        api.invite("capped", f"idle-{i}")
    assert jobs.check_stages()["exit_fired"] == ["capped"]
    assert client.get("/api/v1/campaigns/capped").json()["status"] == "paused"
    last = client.get("/api/v1/campaigns/capped/stages").json()["history"][0]
    assert last["kind"] == "exit" and last["action"] == "paused"
    assert "ceiling" in last["detail"]["changes"][0]
    assert jobs.check_stages()["exit_fired"] == []  # a paused campaign is left alone


def test_the_job_records_gate_changes_once_and_moves_on_when_asked(client: TestClient) -> None:
    api = Api(client)
    api.create(rules("double_sided", qualifying_event={"kind": "signup"}), "auto")
    gates = {"pilot": {"min_qualified": 1}, "rollout": {"min_participants": 5}}
    plan = {"pilot": {"stores": ["s-1"]}, "gates": gates, "auto_advance": True}
    assert client.put("/api/v1/campaigns/auto/stages", json=plan).status_code == 200
    assert jobs.check_stages()["gates_recorded"] == ["auto"]  # not met: recorded once
    assert jobs.check_stages()["gates_recorded"] == []
    code = api.invite("auto", "shop-owner")["code"]
    assert api.accept(code, "guest-1", store="s-2").json()["code"] == "outside_pilot"
    assert api.accept(code, "guest-1", store="s-1").status_code == 201  # signup qualifies
    assert jobs.check_stages()["advanced"] == ["auto"]
    assert client.get("/api/v1/campaigns/auto/stages").json()["stage"] == "rollout"
    assert api.accept(code, "guest-2", store="s-2").status_code == 201  # everyone, after the pilot
    last = client.post("/api/v1/campaigns/auto/stages/advance", json={}).json()
    assert last["code"] == "stage_gate_not_met"  # 1 participant of the 5 the rollout gate wants
    assert jobs.check_stages()["advanced"] == []
    forced = client.post("/api/v1/campaigns/auto/stages/advance", json={"force": True, "note": "ops call"})
    assert forced.json()["stage"] == "optimise"
    assert forced.json()["history"][0]["detail"]["forced"] is True
    end = client.post("/api/v1/campaigns/auto/stages/advance", json={"force": True})
    assert end.status_code == 409 and end.json()["code"] == "last_stage"


def test_stage_plans_and_places_are_checked(client: TestClient) -> None:
    api = Api(client)
    api.create(rules("double_sided"), "checked")
    assert client.get("/api/v1/campaigns/checked/stages").json()["code"] == "no_stage_plan"
    bad = [
        {"pilot": {}},
        {"pilot": {"share": 1.5}},
        {"pilot": {"regions": ["east"]}, "exit_rules": {"pilot": {"action": "raise"}}},  # no ceiling
        {"pilot": {"regions": ["east"]}, "gates": {"beta": {}}},
        {"pilot": {"regions": ["east"]}, "extra": 1},
    ]
    for body in bad:
        r = client.put("/api/v1/campaigns/checked/stages", json=body)
        assert r.status_code == 422, (body, r.text)
    assert client.put("/api/v1/campaigns/nope/stages", json=PLAN).json()["code"] == "unknown_campaign"
    code = api.invite("checked", "alice")["code"]
    r = api.accept(code, "bob", region="<script>")
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("region")


def test_pilot_share_admits_a_stable_part_of_traffic() -> None:
    doc = StagePlanDoc.model_validate({"pilot": {"share": 0.3}})
    admitted = [
        stages.in_pilot("cmp", AcceptRequest(code="x", id_type="unionid", id=f"u{i}"), doc)[0]
        for i in range(2000)
    ]
    assert 0.25 < sum(admitted) / len(admitted) < 0.35
    again = [
        stages.in_pilot("cmp", AcceptRequest(code="x", id_type="unionid", id=f"u{i}"), doc)[0]
        for i in range(2000)
    ]
    assert admitted == again


def test_variants_are_checked_and_judged_per_store_type(client: TestClient) -> None:
    api = Api(client)
    fixed = rules("double_sided", variants=[{"name": "v", "region": "west", "overrides": {"budget_fen": 1}}])
    r = client.post("/api/v1/campaigns", json={"id": "fixed", "rules": fixed})
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "variants.0.overrides.budget_fen"
    nameless = rules("double_sided", variants=[{"name": "v", "overrides": {}}])
    assert (
        client.post("/api/v1/campaigns", json={"rules": nameless}).json()["errors"][0]["field"]
        == "variants.0.region"
    )
    wrong = rules("double_sided", variants=[{"name": "v", "store_type": "mall", "overrides": {"tiers": "x"}}])
    r = client.post("/api/v1/campaigns", json={"rules": wrong})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].startswith("variants.0.overrides.tiers")

    # compliance per variant: a variant without an invite cap blocks the launch, naming the variant
    uncapped = {"name": "kiosk", "store_type": "kiosk", "overrides": {"per_inviter_cap": None}}
    mall = {
        "name": "mall",
        "store_type": "mall",
        "overrides": {"friend_reward": {"code": "MALL", "value_fen": 900}},
    }
    api.create(rules("double_sided", variants=[uncapped, mall]), "per-type", launch=False)
    report = client.get("/api/v1/campaigns/per-type/compliance").json()
    assert not report["passed"]
    assert [h["field"] for h in report["hard"]] == ["variants.0.per_inviter_cap"] and "[kiosk]" in report[
        "hard"
    ][0]["message"]
    refused = client.post("/api/v1/campaigns/per-type/launch")
    assert refused.status_code == 422 and refused.json()["code"] == "compliance_failed"
    edited = rules("double_sided", variants=[mall])
    assert client.put("/api/v1/campaigns/per-type", json={"rules": edited}).status_code == 200
    assert client.post("/api/v1/campaigns/per-type/launch").status_code == 200

    code = api.invite("per-type", "owner")["code"]
    assert api.accept(code, "mall-guest", store_type="mall").status_code == 201
    assert api.accept(code, "street-guest", store_type="street").status_code == 201
    api.order("per-type", "mall-guest", "o-1")
    api.order("per-type", "street-guest", "o-2")
    assert _rewards_of("per-type", "mall-guest") == [("MALL", 900)]
    assert _rewards_of("per-type", "street-guest") == [("NEW", 500)]


def test_stage_cli(client: TestClient, tmp_path) -> None:
    Api(client).create(rules("double_sided"), "cli-staged")
    plan = tmp_path / "plan.json"
    plan.write_text('{"pilot": {"regions": ["east"]}}', encoding="utf-8")
    runner = CliRunner()
    r = runner.invoke(cli, ["campaign", "stage", "plan", "cli-staged", str(plan)])
    assert r.exit_code == 0, r.output
    r = runner.invoke(cli, ["campaign", "stage", "evaluate", "cli-staged"])
    assert r.exit_code == 1 and "not met" in r.output  # no participants: the fission rate is n/a
    r = runner.invoke(cli, ["campaign", "stage", "advance", "cli-staged"])
    assert r.exit_code == 2
    r = runner.invoke(cli, ["campaign", "stage", "show", "cli-staged", "--format", "json"])
    assert r.exit_code == 0 and '"stage": "pilot"' in r.output
    r = runner.invoke(cli, ["campaign", "stage", "exit-rule", "cli-staged"])
    assert r.exit_code == 0 and "none" in r.output


def test_exit_rule_waits_for_its_window(client: TestClient) -> None:
    api = Api(client)
    api.create(rules("double_sided"), "windowed")
    plan = {"pilot": {"share": 1.0}, "exit_rules": {"pilot": {"action": "pause", "min_participants": 2}}}
    client.put("/api/v1/campaigns/windowed/stages", json=plan)
    api.invite("windowed", "a")
    assert client.post("/api/v1/campaigns/windowed/stages/exit-rule").json()["action"] == "small_sample"
    api.invite("windowed", "b")
    with session_scope() as s:  # an hour later, on the service's clock
        out = stages.apply_exit_rule(s, "windowed", actor="test", now=utcnow() + timedelta(hours=1))
    assert out["fired"] and out["action"] == "paused"
