"""The fraud review queue in the console: held referrals (arranged through the real campaign engine
with its inline checks) are approved or rejected by a reviewer, one by one or in bulk; the decisions
reach the referral and the reward ledger as the fraud service makes them. Viewers never see it."""

from __future__ import annotations

import random
import re
import uuid

import pytest
from console_helpers import check_accessibility, check_page, role_page
from fastapi.testclient import TestClient

from liebian.campaigns import flows, invites
from liebian.campaigns import service as campaigns
from liebian.campaigns.models import Referral
from liebian.campaigns.schemas import AcceptRequest, Participant
from liebian.db.session import session_scope
from liebian.fraud import service as fraud
from liebian.fraud.reasons import describe
from liebian.rewards import service as ledger
from liebian.web.app import create_app
from shared_helpers import export_lines

RULES = {
    "type": "double_sided", "title": "邀友有礼", "rules_text": "每邀请一位新朋友注册即可获得奖励，每人最多 10 位。",
    "qualifying_event": {"kind": "signup"}, "per_inviter_cap": 10, "budget_fen": 1_000_000, "hold_days": 7,
    "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
}  # fmt: skip


def held_referrals(friends: int) -> tuple[str, list[int]]:
    """A live campaign whose friends sign up with virtual-operator phones: the inline check
    VIRTUAL_PHONE (50) reaches the hold threshold, so each referral is held and its rewards are
    granted held for review; the fraud service then opens a case per held referral."""
    cid = f"fr-{uuid.uuid4().hex[:8]}"
    with session_scope() as s:
        campaigns.create_campaign(s, RULES, campaign_id=cid)
        campaigns.launch(s, cid)
    with session_scope() as s:
        code = invites.get_invite(s, cid, Participant(id_type="unionid", id=f"{cid}-inviter"))["code"]
    referral_ids = []
    for i in range(friends):
        phone = f"170{random.randrange(10**8):08d}"
        with session_scope() as s:
            result = flows.accept_invite(
                s,
                AcceptRequest(
                    code=code, id_type="unionid", id=f"{cid}-friend-{i}", other_ids={"phone": phone}
                ),
            )
        assert result.state == "held" and [x["code"] for x in result.signals] == ["VIRTUAL_PHONE"]
        referral_ids.append(result.referral_id)
    with session_scope() as s:
        assert fraud.sync_held_referrals(s) >= friends
    return cid, referral_ids


def cases_of(cid: str) -> list[dict]:
    with session_scope() as s:
        return fraud.list_cases(s, status=None, campaign_id=cid, limit=1000)


def rewards_of(cid: str) -> list[ledger.RewardView]:
    with session_scope() as s:
        return ledger.list_rewards(s, campaign_id=cid, limit=1000)


def referral_state(referral_id: int) -> str:
    with session_scope() as s:
        return s.get(Referral, referral_id).state


@pytest.mark.browser
def test_a_reviewer_approves_a_held_referral_and_the_reward_is_released(
    browser, console_url, console_store
) -> None:
    cid, (referral_id,) = held_referrals(1)
    (case,) = cases_of(cid)
    assert all(r.held_for_review and r.state == "pending" for r in rewards_of(cid))

    context, tab = role_page(browser, console_url, "reviewer1")
    assert "风控审核" in tab.locator("nav.side").inner_text()
    tab.goto(f"/fraud?campaign={cid}")
    row = tab.locator(f"tr#case-{case['id']}")
    # what the reviewer reads is the service's case: score, reasons in Chinese, inviter and friend
    assert row.locator("[data-score]").inner_text() == f"{case['score']:.0f}" == "50"
    assert row.locator("[data-code=VIRTUAL_PHONE]").inner_text() == describe("VIRTUAL_PHONE", "zh-CN")
    assert row.locator("[data-inviter]").inner_text() == str(case["inviter_person_id"])
    assert row.locator("[data-friend]").inner_text() == str(case["person_id"])
    assert row.locator("[data-referral]").inner_text() == str(referral_id) == str(case["referral_id"])
    with session_scope() as s:
        open_total = fraud.count_cases(s, status="open")
    assert tab.locator("#count-open").inner_text() == str(open_total)
    check_page(tab, "fraud-queue")
    check_accessibility(tab)

    tab.locator("#review-note").fill("电话核实为真实用户")
    row.get_by_role("button", name=f"通过案件 #{case['id']}").click()
    tab.locator("#decision-result").wait_for()
    assert f"#{case['id']}" in tab.locator("#decision-result").inner_text()
    assert tab.locator(f"tr#case-{case['id']}").count() == 0, "decided cases leave the open queue"

    # the decision reached the referral and the ledger, as the service does it
    api = tab.request.get(f"/api/v1/fraud/cases/{case['id']}").json()
    assert api["status"] == "approved" and api["reviewer"] == "user:reviewer1"
    assert api["note"] == "电话核实为真实用户"
    assert referral_state(referral_id) == "accepted"
    after = rewards_of(cid)
    assert len(after) == 2 and all(not r.held_for_review and r.state == "pending" for r in after)
    assert api["audit"][-1]["effects"]["released"] == sorted(r.id for r in after)

    # the decided case shows under "approved" with its reviewer
    tab.goto(f"/fraud?status=approved&campaign={cid}")
    assert tab.locator(f"tr#case-{case['id']} [data-status=approved]").is_visible()
    assert "user:reviewer1" in tab.locator(f"tr#case-{case['id']}").inner_text()
    check_page(tab, "fraud-queue-approved")
    context.close()
    assert not tab.console_errors


@pytest.mark.browser
def test_bulk_reject_rejects_every_selected_case_in_the_ledger(page, console_store) -> None:
    cid, referral_ids = held_referrals(2)
    cases = cases_of(cid)
    page.goto(f"/fraud?campaign={cid}")
    assert page.locator("#cases-table tbody tr").count() == 2
    page.locator("#check-all").check()
    assert page.locator("input[name=case_ids]:checked").count() == 2
    page.locator("#review-note").fill("虚拟号段批量注册")
    page.once("dialog", lambda dialog: dialog.accept())  # rejecting asks for confirmation
    page.locator("#bulk-reject").click()
    page.locator("#decision-result").wait_for()
    assert "已驳回案件" in page.locator("#decision-result").inner_text()
    page.locator("#no-cases").wait_for()

    assert {c["status"] for c in cases_of(cid)} == {"rejected"}
    assert [referral_state(r) for r in referral_ids] == ["blocked", "blocked"]
    rejected = rewards_of(cid)
    assert len(rejected) == 4 and {r.state for r in rejected} == {"rejected"}
    # the fraud rate table is the service's: 2 rejected of 2 referrals in this campaign
    rate = page.request.get("/api/v1/fraud/rate").json()
    mine = next(r for r in rate if r["campaign_id"] == cid)
    assert mine["referrals"] == 2 and mine["rejected"] == 2
    page.goto(f"/fraud?status=rejected&campaign={cid}")
    row = page.locator("table#fraud_rate tbody tr", has_text=cid).locator("td").all_inner_texts()
    assert row == [cid, "邀友有礼", "2", "2", "100.0%"]

    # the case page shows the audit trail of the decision
    page.locator(f"tr#case-{cases[0]['id']} a").first.click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#case-status").inner_text() == "已驳回"
    assert "虚拟号段批量注册" in page.locator("table#audit").inner_text()
    check_page(page, "fraud-case")
    check_accessibility(page)


@pytest.mark.browser
def test_a_viewer_cannot_see_or_use_the_review_queue(browser, console_url) -> None:
    context, tab = role_page(browser, console_url, "viewer1")
    assert "风控审核" not in tab.locator("nav.side").inner_text()
    assert tab.request.get("/fraud").status == 403
    assert tab.request.get("/fraud/cases/1").status == 403
    context.close()
    assert not tab.console_errors


# --- TestClient -----------------------------------------------------------------------------------


@pytest.fixture
def client(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as c:
        yield c


def _decision(html: str) -> str:
    found = re.search(r'id="decision-result">([^<]*)<', html)
    return found.group(1) if found else ""


def test_english_reasons_sync_and_refusals(client) -> None:
    from shared_helpers import make_api_key

    cid, (referral_id,) = held_referrals(1)
    with session_scope() as s:  # a second held referral the queue does not know yet
        code = invites.get_invite(s, cid, Participant(id_type="unionid", id=f"{cid}-inviter"))["code"]
    with session_scope() as s:
        extra = flows.accept_invite(
            s,
            AcceptRequest(code=code, id_type="unionid", id=f"{cid}-late", other_ids={"phone": "17100000001"}),
        )
    assert extra.state == "held"
    page = client.post("/fraud/sync", data={"status": "open"}).text
    assert _decision(page) == "新载入案件： 1"
    assert len(cases_of(cid)) == 2

    (first, second) = sorted(cases_of(cid), key=lambda c: c["id"])
    assert "已通过" in _decision(client.post(f"/fraud/cases/{first['id']}/approve", data={}).text)
    again = _decision(client.post(f"/fraud/cases/{first['id']}/approve", data={}).text)
    assert again.startswith("无变化")  # the same decision again changes nothing
    refused = _decision(client.post(f"/fraud/cases/{first['id']}/reject", data={"confirm": "1"}).text)
    assert "already approved" in refused  # a decided case cannot be turned around
    assert _decision(client.post("/fraud/bulk", data={"action": "approve"}).text) == "请先勾选案件。"
    assert "action" in _decision(client.post("/fraud/bulk", data={"action": "burn", "case_ids": "1"}).text)
    assert client.get("/fraud/cases/999999").status_code == 404
    # CSV export of the queue: every matching case with its reasons
    lines = export_lines(client.get(f"/fraud?status=all&campaign={cid}&export=cases&format=csv").content)
    assert len(lines) == 3 and "VIRTUAL_PHONE" in lines[1]
    # pagination and counts agree with the service
    with session_scope() as s:
        assert fraud.count_cases(s, status="open", campaign_id=cid) == 1
    assert second["status"] == "open"
    # a reviewer key decides; a viewer key may not even read
    reviewer = {"Authorization": f"Bearer {make_api_key(role='reviewer')}"}
    viewer = {"Authorization": f"Bearer {make_api_key(role='viewer')}"}
    assert client.get("/fraud", headers=reviewer).status_code == 200
    unconfirmed = client.post(f"/fraud/cases/{second['id']}/reject", headers=reviewer)
    assert "需要先确认" in _decision(unconfirmed.text)  # a replayed POST without confirm=1
    rejected = client.post(f"/fraud/cases/{second['id']}/reject", headers=reviewer, data={"confirm": "1"})
    assert "已驳回" in _decision(rejected.text)
    assert client.get("/fraud", headers=viewer).status_code == 403
    assert client.post("/fraud/bulk", headers=viewer, data={"action": "approve"}).status_code == 403
    assert referral_state(referral_id) == "accepted"
    en = client.get("/fraud?lang=en&status=all").text
    assert "Fraud review queue" in en and describe("VIRTUAL_PHONE", "en") in en
