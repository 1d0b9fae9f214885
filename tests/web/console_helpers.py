"""Helpers of the console's browser tests (imported by name; fixtures live in conftest.py)."""

from __future__ import annotations

import os
import time
from pathlib import Path

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
PASSWORD = "console-test-password-1"
USERS = {"admin": "admin", "reviewer1": "reviewer", "viewer1": "viewer", "operator1": "operator"}
ARTIFACTS = (
    Path(os.environ.get("LIEBIAN_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "console"
)


def chromium_path() -> str | None:
    path = os.environ.get("LIEBIAN_TEST_CHROMIUM") or "/usr/bin/chromium"
    return path if Path(path).exists() else None


def login(
    browser,
    console_url: str,
    username: str,
    password: str = PASSWORD,
    locale: str = "zh-CN",
    timeout: int = 20_000,
):
    """A new browser context logged in through the login form; returns (context, page, errors)."""
    context = browser.new_context(
        base_url=console_url, locale=locale, viewport={"width": 1400, "height": 900}
    )
    context.set_default_timeout(timeout)
    page = context.new_page()
    errors: list[str] = []
    page.on(
        "console",
        lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None,
    )
    # with the script's stack: a page error seen once in CI must say where it came from
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}\n{exc.stack}"))
    page.goto("/login")
    page.get_by_label("用户名" if locale == "zh-CN" else "Username").fill(username)
    page.get_by_label("密码" if locale == "zh-CN" else "Password").fill(password)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url, f"login as {username} failed: {page.content()[:500]}"
    return context, page, errors


# an htmx box polling a background task ("every 1s"): when the poll finds the work done the server
# answers HX-Refresh and the page reloads itself, which aborts whatever navigation the test started.
_POLLING = "[hx-trigger^='every']"


def settle(page, timeout_s: float = 180.0) -> None:
    """Wait until the page is loaded and no background work on it is still polling (a computed-cold
    page reloads itself when its task is done)."""
    from playwright.sync_api import Error

    deadline = time.monotonic() + timeout_s
    while True:
        page.wait_for_load_state("networkidle")
        try:
            if not page.locator(_POLLING).count():
                return
        except Error:  # the page reloaded while we looked: look again
            pass
        assert time.monotonic() < deadline, f"{page.url} still polling after {timeout_s:.0f} s"
        page.wait_for_timeout(250)


def open_page(page, path: str) -> None:
    """Go to `path` and settle there (see `settle`)."""
    page.goto(path)
    settle(page)


def role_page(browser, console_url: str, username: str):
    """A tab of another role (close its context yourself); errors are in tab.console_errors."""
    context, tab, errors = login(browser, console_url, username)
    tab.console_errors = errors
    return context, tab


# Counts the canvas pixels that are neither transparent nor white: a chart that drew nothing has none.
_INKED_PIXELS = """(el) => {
  const canvases = el.querySelectorAll('canvas');
  let inked = 0;
  for (const c of canvases) {
    const ctx = c.getContext('2d');
    if (!ctx || !c.width || !c.height) continue;
    const data = ctx.getImageData(0, 0, c.width, c.height).data;
    for (let i = 0; i < data.length; i += 16) {
      if (data[i + 3] > 0 && (data[i] < 240 || data[i + 1] < 240 || data[i + 2] < 240)) inked++;
    }
  }
  return {canvases: canvases.length, inked: inked};
}"""


def _wait_for_ink(chart, seconds: float = 5.0) -> None:
    """Poll until ECharts has drawn its first frame into the chart's canvas (ink on it), at most
    `seconds`; the caller then checks the ink. (A fixed pause per chart cost more and could be short.)"""
    deadline = time.monotonic() + seconds
    while chart.evaluate(_INKED_PIXELS)["inked"] <= 50 and time.monotonic() < deadline:
        time.sleep(0.03)


def check_page(page, name: str, min_charts: int = 0) -> None:
    """Save a full-page screenshot as a test artefact; every chart must have a non-blank canvas."""
    page.wait_for_load_state("networkidle")
    charts = page.locator("[data-chart]")
    assert charts.count() >= min_charts, (
        f"{name}: expected at least {min_charts} charts, found {charts.count()}"
    )
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.locator("canvas").first.wait_for(state="attached")
        _wait_for_ink(chart)
        drawn = chart.evaluate(_INKED_PIXELS)
        label = chart.get_attribute("id")
        assert drawn["canvases"] >= 1, f"{name}: chart {label} has no canvas"
        assert drawn["inked"] > 50, f"{name}: chart {label} is blank"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


# Accessible basics, checked in the page itself: every form control has a label (a <label>, or
# aria-label), every chart has an accessible name, and text contrast is at least 4.5:1 (WCAG AA)
# against the first opaque background behind it.
_A11Y = """() => {
  const problems = [];
  for (const el of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
    const labelled = el.labels && el.labels.length > 0 || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
    if (!labelled) problems.push('unlabelled control: ' + (el.name || el.outerHTML.slice(0, 80)));
  }
  for (const el of document.querySelectorAll('[data-chart]')) {
    if (!el.getAttribute('aria-label')) problems.push('chart without a name: ' + el.id);
  }
  const rgb = (s) => (s.match(/[0-9.]+/g) || []).map(Number);
  const lum = (c) => {
    const [r, g, b] = c.slice(0, 3).map((v) => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); });
    return 0.2126 * r + 0.7152 * g + 0.0722 * b;
  };
  const background = (el) => {
    for (let e = el; e; e = e.parentElement) {
      const c = rgb(getComputedStyle(e).backgroundColor);
      if (c.length === 3 || (c.length === 4 && c[3] > 0.9)) return c;
    }
    return [255, 255, 255];
  };
  const texts = document.querySelectorAll('a, button, label, th, td, h1, h2, p, span, li, .value, .label');
  for (const el of texts) {
    if (!el.offsetParent || !el.textContent.trim()) continue;
    const fg = rgb(getComputedStyle(el).color);
    const l1 = lum(fg), l2 = lum(background(el));
    const ratio = (Math.max(l1, l2) + 0.05) / (Math.min(l1, l2) + 0.05);
    if (ratio < 4.5) problems.push('contrast ' + ratio.toFixed(2) + ': ' + el.tagName + ' ' + el.textContent.trim().slice(0, 30));
  }
  return problems;
}"""


def check_accessibility(page) -> None:
    problems = page.evaluate(_A11Y)
    assert not problems, "accessibility problems:\n" + "\n".join(problems[:20])
