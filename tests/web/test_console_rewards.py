"""The rewards page (/rewards): pending rewards (earned through the real campaign engine) approved
one by one and in bulk, issued in one payout batch, the payout file exported — each move the
ledger's own, recorded with the acting user or API key in the ledger and the audit log. Viewers and
reviewers cannot move rewards; hostile ids and numbers answer a message, never a 5xx. On SQLite and
PostgreSQL (the `store` fixture) over real HTTP (TestClient), and in Chromium against a real server."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest
from console_helpers import check_accessibility, check_page, login
from fastapi.testclient import TestClient

from liebian.auth import service as auth_service
from liebian.campaigns import flows, invites
from liebian.campaigns import service as campaigns
from liebian.campaigns.schemas import AcceptRequest, Participant
from liebian.db.session import session_scope
from liebian.rewards import service as ledger
from liebian.web.app import create_app
from shared_helpers import export_csv, make_api_key

RULES = {
    "type": "double_sided", "title": "奖励页测试", "rules_text": "每邀请一位新朋友注册即可获得奖励，每人最多 10 位。",
    "qualifying_event": {"kind": "signup"}, "per_inviter_cap": 10, "budget_fen": 1_000_000, "hold_days": 7,
    "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
}  # fmt: skip


def earned_rewards(friends: int, nickname: str = "小红") -> tuple[str, int]:
    """A live campaign whose inviter (who sent a nickname) brings `friends` friends who sign up:
    each referral grants the inviter ¥10 and the friend ¥5, pending (7-day hold). Returns the
    campaign id and the inviter's person id."""
    cid = f"rw-{uuid.uuid4().hex[:8]}"
    with session_scope() as s:
        campaigns.create_campaign(s, RULES, campaign_id=cid)
        campaigns.launch(s, cid)
    with session_scope() as s:
        invite = invites.get_invite(
            s, cid, Participant(id_type="unionid", id=f"{cid}-inviter", nickname=nickname)
        )
    for i in range(friends):
        with session_scope() as s:
            result = flows.accept_invite(
                s, AcceptRequest(code=invite["code"], id_type="unionid", id=f"{cid}-f{i}")
            )
        assert result.state == "accepted", result
    return cid, invite["inviter_person_id"]


def rewards_of(cid: str) -> list[ledger.RewardView]:
    with session_scope() as s:
        return ledger.list_rewards(s, campaign_id=cid, limit=1000)


def _flash(html: str) -> str:
    found = re.search(r'id="reward-result">([^<]*)<', html)
    return found.group(1) if found else ""


def _audit(action: str) -> list[dict]:
    with session_scope() as s:
        return auth_service.audit_entries(s, action=action, limit=1000)


def test_approve_issue_and_export_through_the_page(store, admin_headers) -> None:
    cid, inviter = earned_rewards(2)
    rewards = rewards_of(cid)
    assert len(rewards) == 4 and {r.state for r in rewards} == {"pending"}
    inviter_rewards = [r for r in rewards if r.person_id == inviter]
    with TestClient(create_app(), headers=admin_headers) as client:
        page = client.get(f"/rewards?campaign={cid}")
        assert page.status_code == 200
        # the inviter is shown by the nickname sent with the invite, linking to the profile
        assert f'href="/people/{inviter}"' in page.text and "小红" in page.text
        assert "¥10.00" in page.text and "¥5.00" in page.text and "待发放（冻结期）" in page.text

        # one approved on its own, then the rest in bulk (the first one again: unchanged)
        first = inviter_rewards[0].id
        assert f"#{first}" in _flash(client.post(f"/rewards/{first}/approve", data={"campaign": cid}).text)
        rest = [str(r.id) for r in rewards]
        message = _flash(client.post("/rewards/approve", data={"campaign": cid, "reward_ids": rest}).text)
        assert message.startswith("已批准") and f"无变化（已是该状态）： #{first}" in message
        assert {r.state for r in rewards_of(cid)} == {"approved"}
        entries = [e for r in rewards for e in ledger_entries(r.id) if e["to_state"] == "approved"]
        assert {e["actor"] for e in entries} == {"key:" + admin_key_id(admin_headers)}

        # the payout file: the approved rewards of this campaign, watermarked
        csv_rows = export_csv(client.get(f"/rewards/payouts?campaign={cid}&format=csv").content)
        assert csv_rows[0][:2] == ["reward_id", "campaign_id"]
        assert sorted(int(row[0]) for row in csv_rows[1:]) == sorted(r.id for r in rewards)
        xlsx = client.get(f"/rewards/payouts?campaign={cid}&format=xlsx")
        assert xlsx.status_code == 200 and xlsx.content[:2] == b"PK"

        # issue two selected, then all the others of the campaign; a repeated batch key is a no-op
        two = [str(r.id) for r in rewards[:2]]
        message = _flash(client.post("/rewards/issue", data={"campaign": cid, "state": "approved",
                                                              "reward_ids": two, "batch_key": "b1"}).text)  # fmt: skip
        assert message.startswith("已发放 2 笔")
        again = client.post("/rewards/issue", data={"campaign": cid, "reward_ids": two, "batch_key": "b1"})
        assert _flash(again.text).startswith("已发放 2 笔")  # the first batch, nothing written twice
        message = _flash(
            client.post("/rewards/issue", data={"campaign": cid, "all": "1", "batch_key": "b2"}).text
        )
        assert message.startswith("已发放 2 笔")
        assert {r.state for r in rewards_of(cid)} == {"issued"}
        # every move is in the audit log with the key that acted
        actor = "key:" + admin_key_id(admin_headers)
        approved = [e for e in _audit("reward.approve") if e["target"] in {f"reward:{r.id}" for r in rewards}]
        assert len(approved) == 4 and {e["actor"] for e in approved} == {actor}
        assert actor in {e["actor"] for e in _audit("payout.issue")}
        # the page's own table export
        lines = export_csv(client.get(f"/rewards?campaign={cid}&state=all&export=rewards&format=csv").content)
        assert len(lines) == 5 and {row[5] for row in lines[1:]} == {"issued"}


def ledger_entries(reward_id: int) -> list[dict]:
    with session_scope() as s:
        return ledger.entries(s, reward_id=reward_id)


def admin_key_id(headers: dict[str, str]) -> str:
    key = headers["Authorization"].removeprefix("Bearer ")
    return auth_service.verified_key_principal(key).key_id


def test_refusals_and_hostile_input_never_5xx(store, admin_headers) -> None:
    cid, _inviter = earned_rewards(1)
    (one, _other) = rewards_of(cid)
    with TestClient(create_app(), headers=admin_headers) as client:
        assert _flash(client.post("/rewards/approve", data={}).text) == "请先勾选奖励。"
        assert "奖励编号无效" in _flash(client.post("/rewards/approve", data={"reward_ids": "1; DROP"}).text)
        huge = "9" * 40
        assert "奖励编号无效" in _flash(client.post("/rewards/approve", data={"reward_ids": huge}).text)
        assert client.post(f"/rewards/{huge}/approve").status_code == 422
        assert "奖励不存在" in _flash(client.post("/rewards/999999999/approve").text)
        # issuing a pending reward is refused whole, naming why; nothing changes
        refused = _flash(
            client.post("/rewards/issue", data={"reward_ids": str(one.id), "batch_key": "x"}).text
        )
        assert refused.startswith("未执行") and "整批未发放" in refused
        assert rewards_of(cid)[0].state == "pending"
        # NUL characters in free text and filters are dropped, not sent to the store
        approved = client.post(f"/rewards/{one.id}/approve", data={"note": "a\x00b", "campaign": "c\x00"})
        assert approved.status_code == 200 and _flash(approved.text).startswith("已批准")
        assert ledger_entries(one.id)[-1]["note"] == "ab"
        for query in ("state=burn", "page=-5", "page=" + huge, "campaign=" + "x" * 500, "campaign=%00"):
            assert client.get(f"/rewards?{query}").status_code == 200, query
        assert client.get("/rewards/payouts?format=pdf").status_code == 422
        assert client.get("/rewards?export=nothing").status_code == 404
        en = client.get(f"/rewards?campaign={cid}&lang=en").text
        assert "Approve and issue rewards" in en and "pending (on hold)" in en


def test_who_may_see_and_move_rewards(sqlite_store, admin_headers) -> None:
    cid, _inviter = earned_rewards(1)
    reward = rewards_of(cid)[0]
    viewer = {"Authorization": f"Bearer {make_api_key(role='viewer')}"}
    reviewer = {"Authorization": f"Bearer {make_api_key(role='reviewer')}"}
    with TestClient(create_app()) as client:
        assert client.get("/rewards", headers=viewer).status_code == 403
        assert client.post(f"/rewards/{reward.id}/approve", headers=viewer).status_code == 403
        page = client.get(f"/rewards?campaign={cid}", headers=reviewer)
        assert page.status_code == 200 and "bulk-approve" not in page.text  # reads, cannot move
        # a reviewer may not look persons up: ids, not names
        assert "/people/" not in page.text and str(reward.person_id) in page.text
        assert client.post(f"/rewards/{reward.id}/approve", headers=reviewer).status_code == 403
        assert client.get("/rewards/payouts", headers=reviewer).status_code == 403
    assert rewards_of(cid)[0].state == "pending"


@pytest.mark.browser
def test_an_operator_approves_issues_and_exports_in_the_browser(browser, console_url, console_store) -> None:
    cid, inviter = earned_rewards(1, nickname="阿青")
    # a shared test machine may be slow: the landing page after login is computed cold
    context, tab, errors = login(browser, console_url, "operator1", timeout=120_000)
    tab.on("dialog", lambda dialog: dialog.accept())  # the confirmations
    assert "奖励发放" in tab.locator("nav.side").inner_text()
    tab.goto(f"/rewards?campaign={cid}")
    rows = tab.locator("#rewards-table tbody tr")
    assert rows.count() == 2
    assert "阿青" in tab.locator(f"#rewards-table a[href='/people/{inviter}']").inner_text()
    check_page(tab, "rewards-pending")
    check_accessibility(tab)

    tab.locator("#check-all").check()
    tab.locator("#reward-note").fill("核对无误")
    tab.locator("#bulk-approve").click()
    tab.locator("#reward-result").wait_for()
    assert tab.locator("#reward-result").inner_text().startswith("已批准")
    tab.locator("#no-rewards").wait_for()  # none pending left
    assert {r.state for r in rewards_of(cid)} == {"approved"}

    tab.goto(f"/rewards?campaign={cid}&state=approved")
    with tab.expect_download() as download:
        tab.locator("#payouts-csv").click()
    exported = export_csv(Path(download.value.path()).read_bytes())
    assert sorted(int(r[0]) for r in exported[1:]) == sorted(r.id for r in rewards_of(cid))

    tab.locator("#check-all").check()
    tab.locator("#bulk-issue").click()
    tab.locator("#reward-result").wait_for()
    assert tab.locator("#reward-result").inner_text().startswith("已发放 2 笔")
    assert {r.state for r in rewards_of(cid)} == {"issued"}
    entries = [
        e for r in rewards_of(cid) for e in ledger_entries(r.id) if e["to_state"] in ("approved", "issued")
    ]
    assert {e["actor"] for e in entries} == {"user:operator1"}
    tab.goto(f"/rewards?campaign={cid}&state=issued")
    assert tab.locator("#rewards-table [data-state=issued]").count() == 2
    check_page(tab, "rewards-issued")
    context.close()
    assert not errors, errors
