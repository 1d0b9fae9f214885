"""A user on a one-time password (the first admin the server creates, or one an admin reset) must
choose their own at first login: every console page leads to the change-password page until then;
API keys are not affected."""

from __future__ import annotations

import uuid

import pytest

from liebian.auth import service
from liebian.db.session import session_scope

pytestmark = pytest.mark.browser

ONE_TIME = "one-time-pass-123"
CHOSEN = "my-own-password-456"


def _user_on_one_time_password() -> str:
    name = f"first{uuid.uuid4().hex[:6]}"
    with session_scope() as s:
        service.create_user(s, name, ONE_TIME, "admin", actor="test", must_change_password=True)
    return name


def _api_key() -> str:
    with session_scope() as s:
        key, _ = service.create_api_key(
            s, name="first-login test", actor="test", kind="service", role="admin"
        )
    return key


def _login(tab, name: str, password: str) -> None:
    tab.goto("/login")
    tab.get_by_label("用户名").fill(name)
    tab.get_by_label("密码").fill(password)
    tab.locator("form.stack button[type=submit]").click()
    tab.wait_for_load_state("networkidle")


def test_first_login_forces_a_password_change_before_anything_else(browser, console_url, console_store):
    name = _user_on_one_time_password()
    key = _api_key()
    context = browser.new_context(base_url=console_url, locale="zh-CN")
    context.set_default_timeout(90_000)  # the overview after the change computes on a shared machine
    tab = context.new_page()
    _login(tab, name, ONE_TIME)
    assert tab.url.endswith("/password"), "the console opens on the change-password page"
    assert tab.locator("h1").inner_text() == "修改初始密码"
    for page in ("/", "/campaigns", "/settings"):
        tab.goto(page)
        assert tab.url.endswith("/password"), f"{page} leads back to the change-password page"
    # the JSON API with the session cookie is refused too; an API key is not affected
    assert tab.request.get("/api/v1/campaigns").status == 403
    assert tab.request.get("/api/v1/campaigns", headers={"Authorization": f"Bearer {key}"}).status == 200

    # a mistyped confirmation is refused, in Chinese, and nothing changes
    tab.get_by_label("当前密码").fill(ONE_TIME)
    tab.get_by_label("新密码", exact=True).fill(CHOSEN)
    tab.get_by_label("再次输入新密码").fill(CHOSEN + "x")
    tab.get_by_role("button", name="修改密码").click()
    assert tab.get_by_role("status").inner_text() == "两次输入的新密码不一致"
    assert tab.url.endswith("/password")

    tab.get_by_label("再次输入新密码").fill(CHOSEN)
    tab.get_by_role("button", name="修改密码").click()
    tab.wait_for_url(f"{console_url}/")
    tab.wait_for_load_state("networkidle")
    assert tab.locator("h1").inner_text() == "北极星指标总览"
    tab.goto("/settings")
    assert tab.url.endswith("/settings")
    context.close()

    with session_scope() as s:
        user = service.get_user(s, name)
        assert user is not None and not user.must_change_password
        assert service.authenticate(s, name, CHOSEN).username == name
    with session_scope() as s, pytest.raises(service.AuthError):
        service.authenticate(s, name, ONE_TIME)


def test_a_user_with_their_own_password_is_not_sent_to_the_change_page(page):
    page.goto("/campaigns")
    assert page.url.endswith("/campaigns")
    assert page.request.get("/password").status == 200  # reachable, never forced
