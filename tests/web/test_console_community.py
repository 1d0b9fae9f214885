"""The community page in Chromium over the demo brand: the groups (the demo has no join/leave
events, so every group is "posters only" with no speaking share), the weekly series against a
target set through the community service, check-in streaks for an admin and not for a viewer; in
Chinese and English, with the menu entry, exports and no browser-console error."""

from __future__ import annotations

import pytest
from console_helpers import check_accessibility, check_page, role_page

from liebian.community import programme
from liebian.db.session import session_scope

WINDOW = "?start=2026-10-05&end=2026-10-25"  # three whole weeks of the demo's messages


@pytest.mark.browser
def test_the_community_page_shows_groups_targets_and_streaks(
    page, console_store, console_url, browser
) -> None:
    page.goto("/community" + WINDOW)
    assert page.locator("h1").inner_text() == "社群运营"
    assert page.locator("nav.side a[aria-current=page]").inner_text() == "社群运营"
    groups = page.locator("#community_groups tbody tr")
    assert groups.count() > 0
    first = groups.nth(0).locator("td").all_inner_texts()
    assert first[1] == "仅发言者" and first[4] == "—"  # no membership events: no speaking share
    group_id = first[0]
    with session_scope() as s:
        programme.set_target(s, group_id, 0.99, actor="test")
    page.reload()
    weeks = page.locator("#community_weekly tbody tr", has_text=group_id)
    assert weeks.count() == 3
    assert all(row[6] == "99.0%" and row[7] == "低于目标" for row in (
        weeks.nth(i).locator("td").all_inner_texts() for i in range(3)))  # fmt: skip
    assert page.locator("#community_checkins").count() == 1
    check_page(page, "community")
    check_accessibility(page)
    page.goto("/community" + WINDOW + "&lang=en")
    assert page.locator("h1").inner_text() == "Community programme"
    assert "Posters only" in page.locator("#community_groups").inner_text()
    viewer_ctx, viewer = role_page(browser, console_url, "viewer1")
    viewer.goto("/community" + WINDOW)
    assert (
        viewer.locator("#community_groups").count() == 1
        and viewer.locator("#community_checkins").count() == 0
    )
    viewer_ctx.close()
    assert not viewer.console_errors
    with session_scope() as s:
        programme.clear_target(s, group_id, actor="test")
