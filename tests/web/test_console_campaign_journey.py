"""The operator's campaign journey in real Chromium against the real server: create a tiered
campaign in the editor (rows added as needed, the poster previewed live), check compliance, launch
(the confirm dialog dismissed launches nothing; accepted, it launches), a participant takes a link
and poster through the public API, a friend accepts, a conversion arrives and is verified by a
signed shop callback, the participants page shows the progress, and the reward earned is approved
and issued on the rewards page and its payout exported."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from console_helpers import check_accessibility, check_page
from l10n_crawl import problems_of
from test_console_rewards import rewards_of

from liebian.campaigns import verification
from shared_helpers import export_csv, make_api_key

RULES_TEXT = "每邀请一位新朋友完成首单即可获得奖励，每人最多邀请 3 位，奖励在退款期结束后发放。"


@pytest.mark.browser
def test_operator_journey_from_editor_to_an_issued_reward(page, console_store) -> None:
    cid = f"journey-{uuid.uuid4().hex[:8]}"
    public = {"X-API-Key": make_api_key("public", None)}
    operator = {"Authorization": f"Bearer {make_api_key('service', 'admin')}"}

    # the editor: one tier row to start, a second added with the button
    page.goto("/campaigns/new")
    assert page.locator("[id^=f-tiers-][id$=-threshold]").count() == 1
    page.locator("#f-id").fill(cid)
    page.locator("#f-title").fill("春季邀友 · 旅程")
    page.locator("#f-rules-text").fill(RULES_TEXT)
    page.locator("#f-per-inviter-cap").fill("3")
    page.locator("#f-budget-fen").fill("1000")
    page.locator("#f-end-at").fill("2030-12-31T21:00")
    page.locator("#f-tiers-0-threshold").fill("1")
    page.locator("#f-tiers-0-reward-code").fill("T1")
    page.locator("#f-tiers-0-reward-value-fen").fill("5")
    page.locator("#add-row").click()
    page.locator("#f-tiers-1-threshold").wait_for()
    page.locator("#f-tiers-1-threshold").fill("2")
    page.locator("#f-tiers-1-reward-code").fill("T2")
    page.locator("#f-tiers-1-reward-value-fen").fill("20")
    page.locator("#f-poster-brand").fill("花间咖啡")
    page.locator("#f-poster-pattern").select_option("dots")
    # the live preview is the domain's PNG, drawn from the form as it stands
    preview = page.locator("img#poster-preview-img")
    preview.wait_for()
    page.wait_for_function(
        "() => { const i = document.querySelector('#poster-preview-img'); return i && i.complete && i.naturalWidth === 750; }"
    )
    assert problems_of(page, "zh-CN") == {}
    check_page(page, "campaign-editor-tiers")
    check_accessibility(page)
    page.get_by_role("button", name="创建活动").click()
    page.wait_for_url(f"**/campaigns/{cid}")
    page.wait_for_load_state("networkidle")
    rules = page.request.get(f"/api/v1/campaigns/{cid}", headers=operator).json()["rules"]
    assert [t["threshold"] for t in rules["tiers"]] == [1, 2]
    assert rules["poster"]["brand"] == "花间咖啡" and rules["poster"]["pattern"] == "dots"

    # compliance, then launch: dismissing the dialog launches nothing
    assert page.locator("#compliance-result").inner_text() == "通过"
    page.once("dialog", lambda dialog: dialog.dismiss())
    page.locator("#launch").click()
    page.wait_for_timeout(300)
    assert page.request.get(f"/api/v1/campaigns/{cid}", headers=operator).json()["status"] == "draft"
    page.once("dialog", lambda dialog: dialog.accept())
    page.locator("#launch").click()
    page.locator("#campaign-status", has_text="进行中").wait_for()

    # a participant takes their link and poster (the public key), a friend accepts and buys
    invite = page.request.post(f"/api/v1/campaigns/{cid}/invites", headers=public,
                               data={"id_type": "unionid", "id": f"{cid}-alice", "nickname": "小红"}).json()  # fmt: skip
    url = urlsplit(invite["poster_url"])  # on the public address; here the test server's
    poster = page.context.request.get(f"{url.path}?{url.query}", headers={"Cookie": ""})
    assert poster.status == 200 and poster.headers["content-type"] == "image/png"
    friend = {"id_type": "unionid", "id": f"{cid}-bob"}
    accepted = page.request.post(
        "/api/v1/invites/accept", headers=public, data={"code": invite["code"], **friend}
    )
    assert accepted.status == 201, accepted.text()
    conversion = page.request.post(f"/api/v1/campaigns/{cid}/conversions", headers=public,
                                   data={**friend, "order_id": f"{cid}-o1", "amount_fen": 9900}).json()  # fmt: skip
    assert conversion["status"] == "pending"  # the public key's word is not enough
    page.goto(f"/campaigns/{cid}/participants")
    assert page.locator("#participants td.verified").inner_text() == "0"

    # the shop's server confirms the order (signed callback): the conversion is verified
    shop = page.request.post("/api/v1/orders/shops", headers=operator, data={"shop_id": f"{cid}-shop"}).json()
    body = json.dumps({"shop_id": shop["shop_id"], "order_id": f"{cid}-o1", "status": "paid", "amount_fen": 9900,
                       "buyer": friend}).encode()  # fmt: skip
    signed = {
        verification.SIGNATURE_HEADER: verification.sign(shop["secret"], body),
        "Content-Type": "application/json",
    }
    assert page.request.post("/api/v1/orders/callback", headers=signed, data=body).status == 200

    # the participants page shows it: by nickname, with link, poster and progress toward each tier
    page.goto(f"/campaigns/{cid}")
    page.locator("#participants-link").click()
    page.wait_for_url(f"**/campaigns/{cid}/participants")
    row = page.locator("#participants tbody tr").first
    assert row.locator("td.nickname").inner_text() == "小红"
    assert row.locator("td.progress").inner_text() == "第 1 档 1/1 · 第 2 档 1/2"
    assert row.locator("td.accepted").inner_text() == "1" and row.locator("td.verified").inner_text() == "1"
    assert row.locator("a.invite-link").inner_text() == invite["link"]
    thumb = row.locator("img.poster-thumb")
    thumb.scroll_into_view_if_needed()
    page.wait_for_function(
        "() => { const i = document.querySelector('img.poster-thumb'); return i.complete && i.naturalWidth === 750; }"
    )
    progress = page.request.get(f"/api/v1/campaigns/{cid}/progress", headers=operator,
                                params={"id_type": "unionid", "id": f"{cid}-alice"}).json()  # fmt: skip
    assert progress["qualified"] == 1 and str(progress["person_id"]) not in page.content()
    assert problems_of(page, "zh-CN") == {}
    check_page(page, "campaign-participants")
    check_accessibility(page)

    # the reward the verified friend earned: approved and issued on the rewards page (each move
    # confirmed), the payout file exported in between
    earned = rewards_of(cid)
    assert earned and {r.state for r in earned} == {"pending"}
    page.on("dialog", lambda dialog: dialog.accept())
    page.goto(f"/rewards?campaign={cid}")
    page.locator("#check-all").check()
    page.locator("#bulk-approve").click()
    page.locator("#reward-result").wait_for()
    assert {r.state for r in rewards_of(cid)} == {"approved"}
    page.goto(f"/rewards?campaign={cid}&state=approved")
    with page.expect_download() as download:
        page.locator("#payouts-csv").click()
    exported = export_csv(Path(download.value.path()).read_bytes())
    assert sorted(int(row[0]) for row in exported[1:]) == sorted(r.id for r in earned)
    page.locator("#check-all").check()
    page.locator("#bulk-issue").click()
    page.locator("#reward-result").wait_for()
    assert {r.state for r in rewards_of(cid)} == {"issued"}
    assert problems_of(page, "zh-CN") == {}
