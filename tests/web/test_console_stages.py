"""The stage section of a campaign's detail page in a real browser: a campaign piloted in one
region, its gate met, moved on to the rollout from the console, the exit rule fired by a low
fission rate — each step on the page and in the audit trail the page lists."""

from __future__ import annotations

import uuid

import pytest
from console_helpers import check_accessibility, check_page
from fastapi.testclient import TestClient

from liebian.campaigns import flows, invites, stages
from liebian.campaigns import service as campaigns
from liebian.campaigns.schemas import AcceptRequest, Participant
from liebian.campaigns.stage_schemas import StagePlanDoc
from liebian.db.session import session_scope
from liebian.web.app import create_app

RULES_TEXT = "每邀请一位新朋友注册即可获得奖励，每人最多邀请 3 位，奖励在退款期结束后发放。"


@pytest.mark.browser
def test_a_staged_campaign_on_its_detail_page(page, console_store) -> None:

    cid = f"staged-{uuid.uuid4().hex[:8]}"
    doc = {
        "type": "double_sided", "title": "分阶段邀友", "rules_text": RULES_TEXT, "per_inviter_cap": 3,
        "qualifying_event": {"kind": "signup"}, "budget_fen": 100_000, "regions": ["east", "west"],
        "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
    }  # fmt: skip
    plan = {
        "pilot": {"regions": ["east"]},
        "gates": {"pilot": {"min_qualified": 1}},
        "exit_rules": {"rollout": {"min_participants": 5, "max_reward_fen": 1500}},
    }
    with session_scope() as s:
        campaigns.create_campaign(s, doc, campaign_id=cid)
        campaigns.launch(s, cid)
        stages.set_plan(s, cid, StagePlanDoc.model_validate(plan), actor="test")
    with session_scope() as s:
        code = invites.get_invite(s, cid, Participant(id_type="unionid", id=f"{cid}-alice"))["code"]
    with session_scope() as s:
        flows.accept_invite(s, AcceptRequest(code=code, id_type="unionid", id=f"{cid}-bob", region="east"))

    page.goto(f"/campaigns/{cid}")
    assert page.locator("#stage-current").inner_text() == "试点"
    assert page.locator("#gate-result").inner_text() == "已达到"
    fission = page.locator("#stage-gate tr[data-check=fission_rate] td").all_inner_texts()
    assert fission[1] == "100.0%" and fission[2] == "≥ 10.0%"
    check_accessibility(page)

    page.locator("#stage-advance").click()  # through the console, as an operator would
    page.locator("#stage-current", has_text="推广").wait_for()
    assert page.locator("#stage-history tbody tr").first.get_attribute("data-event") == "enter"

    with session_scope() as s:  # ten sharers who bring nobody: fission rate 0 % on 10 participants
        for i in range(10):
            invites.get_invite(s, cid, Participant(id_type="unionid", id=f"{cid}-quiet-{i}"))
    page.reload()
    assert page.locator("#exit-rule-status").get_attribute("data-action") == "due"
    page.locator("#stage-exit").click()
    page.locator("#stage-history tbody tr[data-event=exit]").wait_for()
    fired = page.locator("#stage-history tbody tr[data-event=exit]").inner_text()
    assert "已提高奖励" in fired and "10.0%" in fired
    audit = page.locator("table#audit").inner_text()
    assert "执行退出规则" in audit and "进入下一阶段" in audit and "编辑活动" in audit  # actions by name
    with session_scope() as s:
        view = campaigns.get_campaign(s, cid)
    assert view["version"] == 2 and view["rules"]["inviter_reward"]["value_fen"] == 1200
    check_page(page, "campaign-stages")
    check_accessibility(page)
    page.goto(f"/campaigns/{cid}?lang=en")
    assert page.locator("#stage-current").inner_text() == "Rollout"
    page.goto(f"/campaigns/{cid}?lang=zh-CN")


# --- TestClient ------------------------------------------------------------------------------------


@pytest.fixture
def client(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as c:
        yield c


def test_editing_in_the_console_keeps_the_variants_and_an_unstaged_campaign_shows_no_stages(client) -> None:
    variant = {
        "name": "mall",
        "store_type": "mall",
        "overrides": {"friend_reward": {"code": "M", "value_fen": 900}},
    }
    doc = {
        "type": "double_sided", "title": "邀友有礼", "rules_text": RULES_TEXT, "per_inviter_cap": 3,
        "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
        "variants": [variant],
    }  # fmt: skip
    assert client.post("/api/v1/campaigns", json={"id": "kept", "rules": doc}).status_code == 201
    assert 'id="stages"' not in client.get("/campaigns/kept").text
    form = {
        "_submitted": "1", "type": "double_sided", "title": "邀友有礼 · 改", "rules_text": RULES_TEXT,
        "qualifying_event.kind": "first_order", "attribution": "first_touch", "poster_template": "classic",
        "inviter_reward.code": "INV", "inviter_reward.value_fen": "12", "friend_reward.code": "NEW",
        "friend_reward.value_fen": "5", "per_inviter_cap": "3", "hold_days": "7", "claim_window_days": "7",
        "invite_ttl_days": "30", "risk_policy.hold_at": "50", "risk_policy.block_at": "100",
        "require_new_friend": "on", "reward_value_disclosed": "on",
    }  # fmt: skip
    assert client.post("/campaigns/kept/edit", data=form).status_code == 204
    rules = client.get("/api/v1/campaigns/kept").json()["rules"]
    assert rules["title"] == "邀友有礼 · 改" and rules["variants"] == [{**variant, "region": None}]
