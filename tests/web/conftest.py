"""The console in a real browser: Debian's Chromium driven by Playwright against a real uvicorn.

One server for the whole test session, over a copy of the 5,000-person demo brand (tests may write:
they create campaigns, decide fraud cases, acknowledge alerts). Users of several roles exist with
known passwords. `page` is a logged-in admin tab; every page it opens must leave no error in the
browser console (CSP violations included) — checked when the test ends. `check_page` saves a
screenshot of the page as a test artefact and checks that every chart drew something.

Without Chromium (LIEBIAN_TEST_CHROMIUM or /usr/bin/chromium) these tests skip with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from shared_helpers import free_port

from liebian.config import reset_settings_cache
from liebian.db.session import dispose_engines

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
ARTIFACTS = Path(os.environ.get("LIEBIAN_TEST_ARTIFACTS", Path(__file__).parents[2] / "test-artifacts")) / "console"
ENV_KEYS = (
    "LIEBIAN_DATA_DIR",
    "LIEBIAN_DATABASE_URL",
    "LIEBIAN_WAREHOUSE_PATH",
    "LIEBIAN_ENGINE",
    "LIEBIAN_CONFIG",
    "LIEBIAN_SCHEDULER_ENABLED",
)


def chromium_path() -> str | None:
    path = os.environ.get("LIEBIAN_TEST_CHROMIUM") or "/usr/bin/chromium"
    return path if Path(path).exists() else None


@pytest.fixture(scope="session")
def console_data_dir(demo_brand_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of the demo brand with console users (admin, reviewer1, viewer1, operator1)."""
    target = tmp_path_factory.mktemp("console") / "data"
    shutil.copytree(demo_brand_dir, target)
    with pointed_at(target):
        from liebian.auth import service
        from liebian.db import migrate
        from liebian.db.session import session_scope

        migrate.upgrade()
        with session_scope() as s:
            for username, role in USERS.items():
                if service.get_user(s, username) is None:
                    service.create_user(s, username, PASSWORD, role, actor="test")
    return target


class pointed_at:  # noqa: N801 - used as a context manager like a function
    """Point this process's settings at `data_dir` for the block, then restore them."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir

    def __enter__(self) -> Path:
        self.saved = {key: os.environ.get(key) for key in ENV_KEYS}
        for key in ENV_KEYS:
            os.environ.pop(key, None)
        os.environ["LIEBIAN_DATA_DIR"] = str(self.data_dir)
        os.environ["LIEBIAN_SCHEDULER_ENABLED"] = "0"
        reset_settings_cache()
        dispose_engines()
        return self.data_dir

    def __exit__(self, *exc) -> None:
        dispose_engines()
        for key, value in self.saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings_cache()


@pytest.fixture
def console_store(console_data_dir: Path) -> Iterator[Path]:
    """Point this test's process at the console server's stores (to arrange data for a journey)."""
    with pointed_at(console_data_dir) as path:
        yield path


@pytest.fixture(scope="session")
def console_url(console_data_dir: Path) -> Iterator[str]:
    """The real server (uvicorn in a child process) over the console's data directory."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env |= {"LIEBIAN_DATA_DIR": str(console_data_dir), "LIEBIAN_SCHEDULER_ENABLED": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "liebian.web.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning"],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("the console server did not start")
        time.sleep(0.3)
    yield url
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip("console browser tests need Chromium: apt-get install chromium (or set LIEBIAN_TEST_CHROMIUM)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="console browser tests need playwright")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


def login(browser, console_url: str, username: str, password: str = PASSWORD, locale: str = "zh-CN"):
    """A new browser context logged in through the login form; returns (context, page, errors)."""
    context = browser.new_context(base_url=console_url, locale=locale, viewport={"width": 1400, "height": 900})
    context.set_default_timeout(20_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(f"console {msg.type}: {msg.text}") if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"page error: {exc}"))
    page.goto("/login")
    page.get_by_label("用户名" if locale == "zh-CN" else "Username").fill(username)
    page.get_by_label("密码" if locale == "zh-CN" else "Password").fill(password)
    page.locator("form.stack button[type=submit]").click()
    page.wait_for_load_state("networkidle")
    assert "/login" not in page.url, f"login as {username} failed: {page.content()[:500]}"
    return context, page, errors


@pytest.fixture
def page(browser, console_url: str):
    """A logged-in admin tab. When the test ends, the browser console must have shown no error."""
    context, tab, errors = login(browser, console_url, "admin")
    tab.console_errors = errors
    yield tab
    context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


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


def check_page(page, name: str, min_charts: int = 0) -> None:
    """Save a full-page screenshot as a test artefact; every chart must have a non-blank canvas."""
    page.wait_for_load_state("networkidle")
    charts = page.locator("[data-chart]")
    assert charts.count() >= min_charts, f"{name}: expected at least {min_charts} charts, found {charts.count()}"
    for i in range(charts.count()):
        chart = charts.nth(i)
        chart.locator("canvas").first.wait_for(state="attached")
        page.wait_for_timeout(150)  # let ECharts finish its first frame
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
