"""Campaign pages of the console: the list, the editor (htmx, the service's problems next to the
fields they name), the detail page with the compliance check, launch/pause/end, the poster preview
and the referral list. Browser journeys against the real server, TestClient tests for the rest."""

from __future__ import annotations

import re
import uuid

import pytest
from console_helpers import check_accessibility, check_page, role_page
from fastapi.testclient import TestClient

from liebian.campaigns import flows, invites, views
from liebian.campaigns import service as campaigns
from liebian.db.session import session_scope
from liebian.web.app import create_app

CONFIRM = {"confirm": "1"}  # what the confirm dialog's button adds
RULES_TEXT = "每邀请一位新朋友完成首单即可获得奖励，每人最多邀请 5 位，奖励在退款期结束后发放。"


def _slug(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- browser journeys ---------------------------------------------------------------------------


@pytest.mark.browser
def test_create_fix_launch_and_see_the_campaign_live_in_the_list(page, console_url) -> None:
    cid = _slug("spring")
    page.goto("/campaigns")
    check_page(page, "campaigns-list")
    check_accessibility(page)
    page.locator("#new-campaign").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/campaigns/new")

    # switching the type re-renders the reward fields and keeps what was typed
    page.locator("#f-title").fill("春季邀友有礼")
    page.locator("#f-type").select_option("double_sided")
    page.locator("#f-inviter-reward-code").wait_for()
    assert page.locator("#f-title").input_value() == "春季邀友有礼"
    assert page.locator("#f-tiers-0-threshold").count() == 0
    page.locator("#f-type").select_option("invite_task")
    page.locator("#f-tiers-0-threshold").wait_for()

    page.locator("#f-id").fill(cid)
    page.locator("#f-rules-text").fill(RULES_TEXT)
    page.locator("#f-tiers-0-threshold").fill("3")
    page.locator("#f-tiers-0-reward-code").fill("T3")
    page.locator("#f-tiers-0-reward-value-fen").fill("5")
    page.locator("#add-row").click()  # one row to start; the button adds the next
    page.locator("#f-tiers-1-threshold").fill("2")  # not increasing: the service refuses it
    page.locator("#f-tiers-1-reward-code").fill("T5")
    page.locator("#f-tiers-1-reward-value-fen").fill("20")
    page.locator("#f-budget-fen").fill("1000")
    page.locator("#f-start-at").fill("2026-01-01T09:00")
    page.locator("#f-end-at").fill("2030-12-31T21:00")
    check_accessibility(page)
    page.get_by_role("button", name="创建活动").click()
    error = page.locator("#f-tiers-1-threshold-err")
    error.wait_for()
    assert "档位门槛必须逐档递增" in error.inner_text()  # the service's reason, in the catalogue
    assert page.locator("#f-tiers-1-threshold").get_attribute("aria-invalid") == "true"
    assert page.get_by_role("alert").first.is_visible()
    assert page.url.endswith("/campaigns/new"), "nothing was saved"
    check_page(page, "campaign-editor-errors")
    check_accessibility(page)

    page.locator("#f-tiers-1-threshold").fill("5")
    page.get_by_role("button", name="创建活动").click()
    page.wait_for_url(f"**/campaigns/{cid}")
    page.wait_for_load_state("networkidle")

    # the compliance check: no per-inviter cap → hard failure, launch refused and the page says why
    api = page.request.get(f"/api/v1/campaigns/{cid}/compliance").json()
    assert not api["passed"] and [h["rule"] for h in api["hard"]] == ["invite_cap"]
    assert page.locator("#compliance-result").inner_text() == "未通过"
    assert page.locator("#risk-score").inner_text() == str(api["risk_score"])
    assert page.locator("#hard-failures li[data-rule=invite_cap]").is_visible()
    assert page.locator("#launch").is_disabled()
    assert "邀请上限" in page.locator("#launch-blocked").inner_text()
    soft = page.locator("#soft-findings tbody tr").evaluate_all("rows => rows.map(r => r.dataset.rule)")
    assert soft == [f["rule"] for f in api["soft"]]
    # the poster preview is the PNG the campaign domain makes, drawn by the browser
    poster = page.locator("img#poster")
    assert poster.evaluate("img => img.complete && img.naturalWidth") == 750
    png = page.request.get(poster.get_attribute("src"))
    assert png.headers["content-type"] == "image/png" and png.body()[:8] == b"\x89PNG\r\n\x1a\n"
    check_page(page, "campaign-detail-draft")
    check_accessibility(page)

    # fix the rules in the editor (a draft is edited in place) and launch
    page.locator("#edit").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("#f-start-at").input_value() == "2026-01-01T09:00"  # shown in the brand's zone
    assert page.locator("#f-budget-fen").input_value() == "1000.00"
    page.locator("#f-per-inviter-cap").fill("5")
    page.get_by_role("button", name="保存").click()
    page.wait_for_url(f"**/campaigns/{cid}")
    page.wait_for_load_state("networkidle")
    assert page.locator("#compliance-result").inner_text() == "通过"
    # launch asks first: dismissing the dialog launches nothing
    dialogs: list[str] = []
    page.once("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.locator("#launch").click()
    page.wait_for_load_state("networkidle")
    assert dialogs and "确定发布" in dialogs[0]
    assert page.request.get(f"/api/v1/campaigns/{cid}").json()["status"] == "draft"
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#launch").click()
    page.wait_for_load_state("networkidle")
    page.locator("#campaign-status", has_text="进行中").wait_for()
    view = page.request.get(f"/api/v1/campaigns/{cid}").json()
    assert view["status"] == "live" and view["version"] == 1
    assert view["rules"]["start_at"] == "2026-01-01T01:00:00Z"  # 09:00 in Shanghai is 01:00 UTC
    assert view["rules"]["budget_fen"] == 100_000

    page.goto("/campaigns?status=live")
    row = page.locator("table#campaigns tbody tr", has=page.locator(f"a[href='/campaigns/{cid}']"))
    cells = row.locator("td").all_inner_texts()
    assert cells[0] == cid and cells[1] == "春季邀友有礼" and cells[2] == "任务宝" and cells[3] == "进行中"
    assert cells[4] == "2026-01-01 09:00" and cells[7] == "¥1,000.00"
    # every listed campaign is live, as the API says
    live = {c["id"] for c in page.request.get("/api/v1/campaigns?status=live").json()}
    listed = page.locator("table#campaigns tbody tr td:first-child").all_inner_texts()
    assert set(listed) == live
    check_page(page, "campaigns-list-live")


@pytest.mark.browser
def test_detail_lists_the_referrals_the_service_knows(page, console_store) -> None:
    from liebian.campaigns.schemas import AcceptRequest, Participant

    cid = _slug("refs")
    doc = {
        "type": "double_sided", "title": "双向奖励", "rules_text": RULES_TEXT, "per_inviter_cap": 5,
        "qualifying_event": {"kind": "signup"}, "budget_fen": 100_000,
        "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
    }  # fmt: skip
    with session_scope() as s:
        campaigns.create_campaign(s, doc, campaign_id=cid)
        campaigns.launch(s, cid)
    with session_scope() as s:
        code = invites.get_invite(s, cid, Participant(id_type="unionid", id=f"{cid}-alice"))["code"]
    for friend in ("bob", "carol"):
        with session_scope() as s:
            flows.accept_invite(s, AcceptRequest(code=code, id_type="unionid", id=f"{cid}-{friend}"))
    with session_scope() as s:
        tree = views.referral_tree(s, cid)
        view = campaigns.get_campaign(s, cid)

    page.goto(f"/campaigns/{cid}")
    assert page.locator("#stat-referrals").inner_text() == "2"
    assert page.locator("#stat-participants").inner_text() == "1"
    assert page.locator("#budget-used").inner_text() == f"¥{view['budget_used_fen'] / 100:,.2f}"
    rows = page.locator("table#referrals tbody tr")
    assert rows.count() == len(tree) == 2
    for i, referral in enumerate(tree):
        cells = rows.nth(i).locator("td").all_inner_texts()
        # inviter and friend shown by name, each linking to their profile (title: the person id)
        shown = rows.nth(i).locator("a.person").evaluate_all("links => links.map(a => a.title)")
        assert shown == [str(referral.inviter_person_id), str(referral.friend_person_id)]
        assert cells[5] == "已达标"  # qualified at signup: 已达标, no longer 已接受
    # rewards by state come from the ledger: 2 referrals x (inviter + friend), pending while on hold
    rewards = page.locator("table#rewards tbody tr").first.locator("td").all_inner_texts()
    assert rewards[0].startswith("待发放") and rewards[1] == "4" and rewards[2] == "¥30.00"
    check_page(page, "campaign-detail-live")
    check_accessibility(page)


@pytest.mark.browser
def test_a_reviewer_reads_campaigns_but_cannot_edit_and_a_viewer_sees_none(browser, console_url) -> None:
    context, tab = role_page(browser, console_url, "reviewer1")
    tab.goto("/campaigns")
    assert tab.locator("h1").inner_text() == "裂变活动"
    assert tab.locator("#new-campaign").count() == 0
    assert tab.request.get("/campaigns/new").status == 403
    context.close()
    assert not tab.console_errors
    context, tab = role_page(browser, console_url, "viewer1")
    assert "/campaigns" not in tab.locator("nav.side").inner_html()
    assert tab.request.get("/campaigns").status == 403
    context.close()


# --- TestClient: the editor's field mapping, versions, refusals -----------------------------------


@pytest.fixture
def client(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as c:
        yield c


def _form(**overrides: str) -> dict[str, str]:
    form = {
        "_submitted": "1", "type": "double_sided", "title": "邀友有礼", "rules_text": RULES_TEXT,
        "qualifying_event.kind": "first_order", "attribution": "first_touch", "poster_template": "classic",
        "inviter_reward.code": "INV", "inviter_reward.value_fen": "10", "friend_reward.code": "NEW",
        "friend_reward.value_fen": "5.50", "per_inviter_cap": "3", "per_device_cap": "2", "budget_fen": "2000",
        "hold_days": "7", "claim_window_days": "7", "invite_ttl_days": "30", "risk_policy.hold_at": "50",
        "risk_policy.block_at": "100", "require_new_friend": "on", "reward_value_disclosed": "on",
        "regions": "east，west", "collects": "phone", "consent_step": "on",
    }  # fmt: skip
    return form | overrides


def _errors(html: str) -> dict[str, str]:
    return dict(re.findall(r'<p class="field-error" id="f-([a-z0-9-]+)-err">([^<]*)</p>', html))


def test_the_form_becomes_the_services_rules_document(client) -> None:
    r = client.post("/campaigns/new", data=_form(id="two-sided"), headers={"HX-Request": "true"})
    assert r.status_code == 204 and r.headers["HX-Redirect"] == "/campaigns/two-sided"
    rules = client.get("/api/v1/campaigns/two-sided").json()["rules"]
    assert rules["inviter_reward"] == {"code": "INV", "value_fen": 1000, "name": ""}
    assert rules["friend_reward"]["value_fen"] == 550 and rules["budget_fen"] == 200_000
    assert rules["regions"] == ["east", "west"] and rules["collects"] == ["phone"]
    assert rules["consent_step"] and rules["require_new_friend"] and not rules["forced_sharing"]
    assert rules["per_ip_cap"] is None and rules["start_at"] is None  # empty → the schema's default


def test_problems_land_next_to_the_fields_they_name(client) -> None:
    # an amount that is not yuan is caught before the service; the tier rows are renumbered
    form = _form(type="invite_task", budget_fen="12.345")
    page = client.post("/campaigns/new", data=form).text
    assert "budget-fen" in _errors(page) and "两位小数" in _errors(page)["budget-fen"]
    # empty first row, then 5 and 4 friends: the service says tiers.1, the user sees it on row 3
    form = _form(type="invite_task", budget_fen="2000", per_inviter_cap="3")
    form |= {"tiers.1.threshold": "5", "tiers.1.reward.code": "A", "tiers.1.reward.value_fen": "1"}
    form |= {"tiers.2.threshold": "4", "tiers.2.reward.code": "B", "tiers.2.reward.value_fen": "2"}
    page = client.post("/campaigns/new", data=form).text
    errors = _errors(page)
    assert errors["tiers-2-threshold"] == "档位门槛必须逐档递增"
    assert "tiers-1-threshold" not in errors
    assert "最高档位需要 4 位好友，但邀请上限是 3" in page  # a group error, on the section
    # the id the editor's own address uses, and an id the service's slug pattern refuses
    assert "保留" in _errors(client.post("/campaigns/new", data=_form(id="new")).text)["id"]
    assert _errors(client.post("/campaigns/new", data=_form(id="Bad Id")).text)["id"] == "格式不正确"
    assert client.get("/api/v1/campaigns").json() == []


def test_editing_a_live_campaign_makes_a_new_version_and_keeps_its_type(client) -> None:
    assert client.post("/campaigns/new", data=_form(id="versioned")).status_code == 204
    assert (
        client.post("/campaigns/versioned/launch", data=CONFIRM).headers["HX-Redirect"]
        == "/campaigns/versioned"
    )
    page = client.get("/campaigns/versioned/edit").text
    assert "第 2 版" in page and 'name="note"' in page
    form = _form(type="invite_task", title="邀友有礼 · 加码", note="奖励加码")
    form["inviter_reward.value_fen"] = "12"
    r = client.post("/campaigns/versioned/edit", data=form)
    assert r.status_code == 204
    versions = client.get("/api/v1/campaigns/versioned/versions").json()
    assert [v["version"] for v in versions] == [1, 2] and versions[1]["note"] == "奖励加码"
    assert versions[1]["rules"]["type"] == "double_sided"  # the type of a launched campaign stays
    assert versions[1]["rules"]["inviter_reward"]["value_fen"] == 1200
    detail = client.get("/campaigns/versioned").text
    assert "奖励加码" in detail and "邀友有礼 · 加码" in detail


def test_lifecycle_refusals_are_shown_not_crashes(client) -> None:
    assert client.post("/campaigns/new", data=_form(id="bare", per_inviter_cap="")).status_code == 204
    refused = client.post("/campaigns/bare/launch", data=CONFIRM)
    assert refused.status_code == 200 and "flash error" in refused.text
    assert "per_inviter_cap" in refused.text
    assert client.get("/api/v1/campaigns/bare").json()["status"] == "draft"
    paused = client.post("/campaigns/bare/pause")
    assert "only a launched campaign pauses" in paused.text
    assert client.post("/campaigns/bare/end", data=CONFIRM).headers["HX-Redirect"] == "/campaigns/bare"
    ended = client.get("/campaigns/bare/edit").text
    assert "活动已结束" in ended
    assert client.get("/campaigns/nope").status_code == 404
    assert client.get("/campaigns/nope/poster.png").status_code == 404


def test_list_filters_by_status_type_text_and_period(client) -> None:
    form = _form(id="autumn", title="秋季拼团", type="group_buy", start_at="2026-09-01T00:00",
                 end_at="2026-09-30T00:00")  # fmt: skip
    form |= {"group.size": "3", "group.initiator_reward.code": "G", "group.initiator_reward.value_fen": "10"}
    assert client.post("/campaigns/new", data=form).status_code == 204
    assert client.post("/campaigns/new", data=_form(id="always")).status_code == 204

    def listed(query: str) -> list[str]:
        return re.findall(r'<a href="/campaigns/([a-z0-9-]+)">', client.get("/campaigns" + query).text)

    assert sorted(listed("")) == ["always", "autumn"]
    assert listed("?type=group_buy") == ["autumn"]
    assert listed("?q=秋季") == ["autumn"]
    assert listed("?status=live") == []
    assert sorted(listed("?start=2026-10-01")) == ["always"]  # autumn ended before the period
    assert sorted(listed("?end=2026-09-15")) == ["always", "autumn"]
    csv_text = client.get("/campaigns?type=group_buy&export=campaigns&format=csv").content.decode("utf-8-sig")
    assert csv_text.splitlines()[1].startswith("autumn,秋季拼团,拼团,草稿,2026-09-01 00:00")


def test_english_labels(client) -> None:
    page = client.get("/campaigns/new?lang=en").text
    assert "New campaign" in page and "Reward value (yuan)" in page and "Invite task" in page
