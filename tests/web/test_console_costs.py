"""The costs page in Chromium: an operator enters a cost of a demo campaign (picked by its title),
sees it in the table, the KPI sheet counts its days in the period, and removes it; a viewer cannot
open the page; a bad amount is refused with the reason."""

from __future__ import annotations

from datetime import date

import pytest
from console_helpers import check_accessibility, check_page, role_page
from playwright.sync_api import expect

from liebian.analytics.common import Filters
from liebian.costs import service
from liebian.db.session import session_scope


def _costs_of(campaign: str) -> list[dict]:
    with session_scope() as s:
        return service.list_costs(s, campaign)


@pytest.mark.browser
def test_a_viewer_cannot_open_the_costs_page(browser, console_url) -> None:
    context, page = role_page(browser, console_url, "viewer1")
    try:
        response = page.goto("/costs")
        assert response is not None and response.status == 403
        assert page.locator("nav a[href='/costs']").count() == 0
    finally:
        context.close()


@pytest.mark.browser
def test_an_operator_enters_and_removes_a_cost(browser, console_url, console_store) -> None:
    context, page = role_page(browser, console_url, "operator1")
    try:
        page.goto("/costs")
        check_page(page, "costs")
        check_accessibility(page)
        form = page.locator("#cost-form")
        options = form.locator("select[name=campaign_id] option")
        labels = options.all_inner_texts()
        assert "全部活动（品牌级）" in labels and len(labels) > 1
        campaign = options.nth(1).get_attribute("value")
        assert campaign
        form.locator("select[name=campaign_id]").select_option(campaign)
        form.locator("select[name=category]").select_option("media")
        form.get_by_label("金额（元）").fill("abc")
        form.get_by_label("开始日期").fill("2026-11-01")
        form.get_by_label("结束日期（含）").fill("2026-11-10")
        form.get_by_role("button", name="录入成本").click()
        expect(page.locator("#cost-result .flash")).to_contain_text("金额")
        assert _costs_of(campaign) == []

        form.get_by_label("金额（元）").fill("1,000.50")
        form.get_by_role("button", name="录入成本").click()
        row = page.locator("#costs-table tbody tr").first
        expect(row).to_contain_text("媒介投放")
        (cost,) = _costs_of(campaign)
        assert cost["amount_fen"] == 100050 and cost["created_by"] == "user:operator1"
        assert (cost["start_date"], cost["end_date"]) == (date(2026, 11, 1), date(2026, 11, 10))
        # 2 of its 10 days fall in 9–10 November: 20,010 fen
        filters = Filters(start=date(2026, 11, 9), end=date(2026, 11, 30), campaigns=(campaign,))
        assert service.other_cost_fen(filters) == 20010

        page.locator(f"#costs-table tr[data-cost='{cost['id']}']").get_by_role("button", name="删除").click()
        expect(page.locator("#costs-table")).to_have_count(0)
        assert _costs_of(campaign) == []
        assert not page.console_errors
    finally:
        context.close()
