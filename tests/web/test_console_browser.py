"""The console's shell in Chromium: login, the north-star overview, language switch, filters kept in
the URL, PNG and CSV/XLSX downloads, role-based menus and the accessible basics."""

from __future__ import annotations

import pytest
from console_helpers import check_accessibility, check_page, login, role_page
from openpyxl import load_workbook

from shared_helpers import export_csv, export_sheet

pytestmark = pytest.mark.browser


def test_login_page_refuses_a_wrong_password_then_lets_the_admin_in(browser, console_url):
    context = browser.new_context(base_url=console_url)
    tab = context.new_page()
    tab.goto("/")
    assert tab.url.endswith("/login"), "the console asks for a login first"
    tab.get_by_label("用户名").fill("admin")
    tab.get_by_label("密码").fill("not the password")
    tab.locator("form.stack button[type=submit]").click()
    assert tab.get_by_role("alert").is_visible()
    assert tab.url.endswith("/login")
    check_accessibility(tab)
    context.close()

    context, tab, errors = login(browser, console_url, "admin")
    assert tab.locator("h1").inner_text() == "北极星指标总览"
    context.close()
    assert not errors


def test_overview_shows_the_north_star_cards_and_a_drawn_trend(page):
    page.goto("/")
    assert page.locator("html").get_attribute("lang") == "zh-CN"
    north_star = page.locator("#north-star").inner_text()
    assert north_star not in ("", "—")
    assert page.get_by_text("K 因子").first.is_visible()
    check_page(page, "overview-zh", min_charts=1)
    check_accessibility(page)


def test_language_switch_changes_labels_and_money_format_and_sticks(page):
    page.goto("/")
    zh_revenue = page.locator(".card", has_text="成交额").locator(".value").inner_text()
    page.get_by_role("link", name="English").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "en"
    assert page.locator("h1").inner_text() == "North-star overview"
    en_revenue = page.locator(".card", has_text="Revenue").locator(".value").inner_text()
    # the demo's revenue is above ¥10,000: 万 in Chinese, thousands separators in English
    assert zh_revenue.startswith("¥") and zh_revenue.endswith("万")
    assert en_revenue.startswith("¥") and "," in en_revenue and "万" not in en_revenue
    page.goto("/")  # the choice is remembered (cookie)
    assert page.locator("html").get_attribute("lang") == "en"
    check_page(page, "overview-en", min_charts=1)
    page.get_by_role("link", name="中文").click()
    page.wait_for_load_state("networkidle")
    assert page.locator("html").get_attribute("lang") == "zh-CN"


def test_drill_down_by_channel_keeps_the_filter_in_the_url_across_pages(page):
    page.goto("/")
    table = page.locator("table#by_channel")
    first = table.locator("tbody tr").first.locator("a")
    channel_label = first.inner_text()
    first.click()
    page.wait_for_load_state("networkidle")
    assert "channel=" in page.url
    channel = page.url.split("channel=")[1].split("&")[0]
    assert channel_label == channel or page.locator("select[name=channel]").input_value() == channel
    # the drilled table has exactly that one channel
    assert page.locator("table#by_channel tbody tr").count() == 1
    # every menu link carries the filter on to the other analysis pages
    hrefs = page.locator("nav.side a").evaluate_all("els => els.map(e => e.getAttribute('href'))")
    analysis = [h for h in hrefs if not h.startswith(("/settings", "/import"))]
    assert analysis and all(f"channel={channel}" in h for h in analysis)


def test_trend_downloads_as_png_and_tables_export_as_csv_and_xlsx(page):
    page.goto("/")
    with page.expect_download() as png:
        page.locator("button[data-png=trend]").click()
    png_path = png.value.path()
    with open(png_path, "rb") as fh:
        assert fh.read(8) == b"\x89PNG\r\n\x1a\n"

    shown = page.locator("table#by_channel tbody tr").count()
    with page.expect_download() as got:
        page.locator("section.table-box", has=page.locator("table#by_channel")).get_by_text(
            "导出 CSV"
        ).click()
    with open(got.value.path(), "rb") as fh:
        raw = fh.read()
    assert raw.startswith("\ufeff".encode()), "CSV starts with a BOM so Excel reads the Chinese headers"
    rows = export_csv(raw)  # the data rows, without the watermark's footer and mark column
    assert rows[0][0] == "渠道" and len(rows) - 1 == shown

    with page.expect_download() as got:
        page.locator("section.table-box", has=page.locator("table#by_channel")).get_by_text(
            "导出 Excel"
        ).click()
    assert got.value.suggested_filename == "by_channel.xlsx"
    with open(got.value.path(), "rb") as fh:
        sheet = load_workbook(fh).active
    values = export_sheet(sheet)  # without the watermark's footer row and hidden mark column
    assert len(values) - 1 == shown
    # exports keep raw numbers, and they are the analytics API's numbers
    api = {r["channel"]: r for r in page.request.get("/api/v1/analytics/channels").json()}
    for xlsx_row, csv_row in zip(values[1:], rows[1:], strict=True):
        channel, invites, k_factor = xlsx_row[0], xlsx_row[1], xlsx_row[2]
        assert csv_row[0] == channel and int(csv_row[1]) == invites == api[channel]["invites_sent"]
        if api[channel]["k_factor"] is None:
            assert k_factor is None and csv_row[2] == ""
        else:
            assert k_factor == pytest.approx(api[channel]["k_factor"]) == pytest.approx(float(csv_row[2]))


def test_roles_see_only_their_pages(browser, console_url):
    context, tab = role_page(browser, console_url, "viewer1")
    menu = tab.locator("nav.side").inner_text()
    assert "总览" in menu and "设置" not in menu and "风控审核" not in menu
    assert tab.request.get("/settings").status in (403, 404)
    context.close()
    assert not tab.console_errors


def test_keyboard_users_can_skip_to_the_content(page):
    page.goto("/")
    page.keyboard.press("Tab")
    skip = page.locator("a.skip")
    assert skip.evaluate("el => el === document.activeElement")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "main"
