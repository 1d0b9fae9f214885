"""The console on a phone (390 px wide) in real Chromium: no page scrolls sideways, the navigation
collapses behind a menu button, wide tables scroll inside their card, headings keep their width.
A full-page screenshot of every page is kept as a test artefact (test-artifacts/console/390/)."""

from __future__ import annotations

import pytest
from console_helpers import ARTIFACTS, login, open_page
from l10n_crawl import PAGES

pytestmark = pytest.mark.browser

PHONE = {"width": 390, "height": 844}
SHOTS = ARTIFACTS / "390"

# what is wider than the window, to name the culprit when a page scrolls sideways
_OVERFLOWING = """() => {
  const w = window.innerWidth, out = [];
  for (const el of document.querySelectorAll('body *')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && r.right > w + 1) out.push(`${el.tagName.toLowerCase()}#${el.id}.${el.className} → ${Math.round(r.right)} px`);
  }
  return out.slice(0, 5);
}"""


@pytest.fixture
def phone(browser, console_url):
    context, tab, errors = login(browser, console_url, "admin", timeout=120_000)
    tab.set_viewport_size(PHONE)
    yield tab
    context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


def test_every_page_fits_a_390_px_screen(phone):
    SHOTS.mkdir(parents=True, exist_ok=True)
    too_wide = {}
    for path in PAGES:
        open_page(phone, path)
        width, window = phone.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
        if width > window:
            too_wide[path] = (width, phone.evaluate(_OVERFLOWING))
        heading = phone.locator("main h1").first
        if heading.count():  # a heading keeps a readable width (never one character per line)
            assert heading.evaluate("el => el.getBoundingClientRect().width") >= 200, path
        name = path.strip("/").replace("/", "-").replace("?", "_").replace("=", "-").replace("&", "_")
        phone.screenshot(path=str(SHOTS / f"{name or 'overview'}.png"), full_page=True)
    assert not too_wide, "\n".join(f"{p}: {w} px wide; {culprits}" for p, (w, culprits) in too_wide.items())


def test_the_menu_collapses_behind_a_button_on_a_phone(phone):
    phone.goto("/quality")
    menu = phone.locator("nav.side")
    toggle = phone.get_by_role("button", name="菜单")
    assert not menu.is_visible() and toggle.get_attribute("aria-expanded") == "false"
    toggle.click()
    assert menu.is_visible() and toggle.get_attribute("aria-expanded") == "true"
    menu.get_by_role("link", name="数据导入").click()
    phone.wait_for_url("**/import")
    assert not phone.locator("nav.side").is_visible(), "a new page starts with the menu closed"
    # a wide table scrolls inside its card, not the page
    phone.goto("/quality")
    box = phone.locator("section.table-box", has=phone.locator("table#findings"))
    assert box.evaluate(
        "el => el.querySelector('.scroll').scrollWidth > el.querySelector('.scroll').clientWidth"
    )
    assert phone.evaluate("document.documentElement.scrollWidth <= window.innerWidth")


def test_the_desktop_keeps_its_side_menu(page):
    page.goto("/")
    assert page.locator("nav.side").is_visible()
    assert not page.locator(".nav-toggle").is_visible()
