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
from collections.abc import Iterator
from pathlib import Path

import pytest
from console_helpers import CHROMIUM_FLAGS, PASSWORD, USERS, chromium_path, login

from liebian.config import reset_settings_cache
from liebian.db.session import dispose_engines
from shared_helpers import uvicorn_server

ENV_KEYS = (
    "LIEBIAN_DATA_DIR",
    "LIEBIAN_DATABASE_URL",
    "LIEBIAN_WAREHOUSE_PATH",
    "LIEBIAN_ENGINE",
    "LIEBIAN_CONFIG",
    "LIEBIAN_SCHEDULER_ENABLED",
)


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
    env = {k: v for k, v in os.environ.items() if k not in ENV_KEYS}
    env |= {"LIEBIAN_DATA_DIR": str(console_data_dir), "LIEBIAN_SCHEDULER_ENABLED": "0"}
    # the tests' webhook receivers listen on the loopback, which liebian.urlguard refuses by default
    env["LIEBIAN_ALLOW_PRIVATE_URLS"] = "1"
    # once per session, on a machine that may be shared and slow: a failure only, if it waits long
    with uvicorn_server(env, timeout=300) as (_proc, url):
        yield url


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if path is None:
        pytest.skip(
            "console browser tests need Chromium: apt-get install chromium (or set LIEBIAN_TEST_CHROMIUM)"
        )
    sync_api = pytest.importorskip("playwright.sync_api", reason="console browser tests need playwright")
    with sync_api.sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=path, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, console_url: str):
    """A logged-in admin tab. When the test ends, the browser console must have shown no error."""
    # a shared machine may be slow: the landing page after login is computed cold
    context, tab, errors = login(browser, console_url, "admin", timeout=120_000)
    tab.console_errors = errors
    yield tab
    context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)
