"""An alert's options in the console (Chromium): the effects shown are the decisions service's, an
operator proposes one (a draft, nothing live changes), English texts come from the catalogue."""

from __future__ import annotations

import sys
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from console_helpers import check_page, login

from liebian.campaigns import service as campaigns
from liebian.db.session import session_scope
from liebian.decisions import options as decision_options
from liebian.decisions import service as decisions
from liebian.monitor import service as monitor

sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import rules as campaign_rules  # noqa: E402


def _alert_on_a_live_campaign() -> tuple[str, dict]:
    cid = f"opt-{uuid.uuid4().hex[:6]}"
    now = datetime.now(UTC).replace(tzinfo=None)
    with session_scope() as s:
        campaigns.create_campaign(s, campaign_rules("invite_task"), campaign_id=cid)
        campaigns.launch(s, cid, now=now - timedelta(days=1))
        alert, _ = monitor.raise_alert(
            s, kind="threshold", metric="participation_rate", scope={"campaign_id": cid}, level="重要",
            title=f"参与率低于15%（{cid}）", observed=0.08, threshold=0.15, period="2026-11-14", now=now,
        )  # fmt: skip
    return cid, alert


@pytest.mark.browser
def test_an_operator_sees_the_options_of_an_alert_and_proposes_one(page, console_store):
    cid, alert = _alert_on_a_live_campaign()
    with session_scope() as s:
        expected = {o["option"]: o for o in decision_options.for_alert(s, alert["id"])["options"]}

    page.goto("/alerts")
    page.locator(f"#alert-{alert['id']} a.options-link").click()
    page.wait_for_selector("#decision-options")
    rows = page.locator("tr.decision-option")
    assert [rows.nth(i).get_attribute("data-option") for i in range(rows.count())] == list(expected)
    raise_row = page.locator("tr[data-option=raise_invitee_reward]")
    assert (
        raise_row.locator(".users").inner_text()
        == f"{expected['raise_invitee_reward']['expected']['users']:+.1f}"
    )
    assert "每档奖励提高 ¥5" in raise_row.inner_text() and "假设值" in raise_row.inner_text()
    check_page(page, "decision-options")

    raise_row.get_by_role("button", name="提交变更提案").click()
    page.wait_for_selector("#flash .flash.ok")
    with session_scope() as s:
        (draft,) = [p for p in decisions.list_proposals(s, "draft") if p["campaign_id"] == cid]
        live = campaigns.get_campaign(s, cid)
    assert f"#{draft['id']}" in page.locator("#flash").inner_text()
    assert draft["option"] == "raise_invitee_reward" and live["version"] == draft["base_version"]
    assert [t["reward"]["value_fen"] for t in live["rules"]["tiers"]] == [500, 3000]  # not live yet


@pytest.mark.browser
def test_the_options_page_in_english(browser, console_url, console_store):
    _, alert = _alert_on_a_live_campaign()
    context, tab, errors = login(browser, console_url, "operator1")
    try:
        tab.goto(f"/alerts/{alert['id']}/options?lang=en")
        assert f"Options for alert #{alert['id']}" in tab.locator("h1").inner_text()
        assert "Pause the campaign" in tab.locator("tr[data-option=pause_campaign]").inner_text()
        assert "Not a rules change" in tab.locator("tr[data-option=pause_campaign]").inner_text()
    finally:
        context.close()
    assert not errors
