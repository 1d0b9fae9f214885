"""Settings in Chromium (admins only): users created, re-roled, deactivated and given a new password;
the roles' permissions as the policy has them; an API key shown once, used, then revoked; a webhook
notification channel added, tested against a real local receiver, and removed — each checked
against the auth and monitor services and the audit log."""

from __future__ import annotations

import json
import threading
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from console_helpers import check_accessibility, check_page, role_page
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from liebian.auth import policy
from liebian.auth import service as auth
from liebian.db.session import session_scope
from liebian.monitor import notifications as monitor_notifications
from liebian.monitor import notify
from liebian.web.app import create_app


def _user(username: str) -> dict:
    with session_scope() as s:
        user = auth.get_user(s, username)
        return dict(auth.user_view(user)) if user else {}


def _password_works(username: str, password: str) -> bool:
    with session_scope() as s:
        try:
            auth.authenticate(s, username, password)
        except auth.AuthError:
            return False
    return True


def _audited(action: str, target: str) -> list[dict]:
    with session_scope() as s:
        return [e for e in auth.audit_entries(s, action=action, limit=None) if e["target"] == target]


def _flash(page, section: str, text: str) -> None:
    """Wait for the section's status line (htmx swaps the section) to say `text`."""
    expect(page.locator(f"#settings-{section} .flash")).to_contain_text(text)


@pytest.mark.browser
def test_an_admin_manages_users_from_the_settings_page(page, console_store):
    name = f"op{uuid.uuid4().hex[:6]}"
    page.goto("/settings")
    check_page(page, "settings")
    check_accessibility(page)
    users = page.locator("#settings-users")
    users.get_by_label("用户名").fill(name)
    users.locator("form[hx-post='/settings/users'] select[name=role]").select_option("operator")
    users.get_by_role("button", name="创建用户").click()
    _flash(page, "users", "已创建用户")
    one_time = page.locator("#settings-users #new-secret").inner_text()
    created = _user(name)
    assert created["role"] == "operator" and created["active"] and created["must_change_password"]
    assert _password_works(name, one_time)
    assert _audited("user.create", f"user:{name}")[0]["actor"] == "user:admin"

    row = page.locator(f"#settings-users tr[data-user={name}]")
    row.locator("select[name=role]").select_option("analyst")
    row.get_by_role("button", name="修改角色").click()
    _flash(page, "users", "已修改角色")
    assert _user(name)["role"] == "analyst"

    page.locator(f"#settings-users tr[data-user={name}]").get_by_role("button", name="停用").click()
    _flash(page, "users", "已停用用户")
    assert _user(name)["active"] is False
    assert not _password_works(name, one_time)  # a deactivated user cannot log in

    page.locator(f"#settings-users tr[data-user={name}]").get_by_role("button", name="启用").click()
    _flash(page, "users", "已启用用户")
    page.locator(f"#settings-users tr[data-user={name}]").get_by_role("button", name="重置密码").click()
    _flash(page, "users", "已重置密码")
    fresh = page.locator("#settings-users #new-secret").inner_text()
    assert fresh != one_time and _password_works(name, fresh) and not _password_works(name, one_time)

    # an admin does not lock themselves out
    page.locator("#settings-users tr[data-user=admin]").get_by_role("button", name="停用").click()
    _flash(page, "users", "不能停用或降级自己的账号")
    assert _user("admin")["active"] is True


@pytest.mark.browser
def test_the_roles_table_is_the_policy(page):
    page.goto("/settings#settings-roles")
    shown = page.locator("#roles-table").evaluate(
        """t => Object.fromEntries([...t.querySelectorAll('tbody tr')].map(r => [r.dataset.permission,
             [...r.querySelectorAll('td[data-role]')].filter(c => c.textContent.trim() === '✓')
                 .map(c => c.dataset.role)]))"""
    )
    assert set(shown) == set(policy.PERMISSIONS)
    for permission, roles in shown.items():
        assert set(roles) == {r for r in policy.ROLES if permission in policy.permissions_of(r)}, permission


@pytest.mark.browser
def test_an_api_key_is_shown_once_works_and_is_revoked(page, console_store):
    name = f"bi-export-{uuid.uuid4().hex[:6]}"
    page.goto("/settings")
    keys = page.locator("#settings-keys")
    keys.get_by_label("名称").fill(name)
    keys.locator("select[name=kind]").select_option("service")
    keys.locator("select[name=role]").select_option("viewer")
    keys.get_by_role("button", name="创建密钥").click()
    page.locator("#settings-keys #new-secret").wait_for()
    key = page.locator("#settings-keys #new-secret").inner_text()
    assert key.startswith("lb_")
    me = page.request.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert me.status == 200 and me.json()["role"] == "viewer"
    with session_scope() as s:
        record = dict(next(k for k in auth.list_api_keys(s) if k.name == name))
    assert key.startswith(record["key_id"] + "_") and record["created_by"] == "user:admin"

    page.locator(f"#settings-keys tr[data-key={record['key_id']}]").get_by_role("button", name="吊销").click()
    _flash(page, "keys", "已吊销密钥")
    refused = page.request.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {key}"})
    assert refused.status == 401
    page.goto("/settings")
    assert key not in page.content()  # shown once: liebian keeps only its hash
    assert _audited("apikey.revoke", f"apikey:{record['key_id']}")


class _Receiver(BaseHTTPRequestHandler):
    received: list[dict] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        _Receiver.received.append({"headers": dict(self.headers), "body": body})
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def receiver(allow_private_urls):
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Receiver)
    _Receiver.received = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/hook", _Receiver.received
    server.shutdown()
    server.server_close()


@pytest.mark.browser
def test_a_notification_channel_is_added_tested_and_removed(page, console_store, receiver):
    url, received = receiver
    name = f"ops-hook-{uuid.uuid4().hex[:6]}"
    page.goto("/settings")
    channels = page.locator("#settings-channels")
    channels.get_by_label("名称").fill(name)
    channels.locator("select[name=kind]").select_option("webhook")
    channels.get_by_label("地址（URL 或邮箱，逗号分隔）").fill(url + "?token=abc")
    channels.get_by_label("签名密钥（可选）").fill("s3cret-signing")
    channels.get_by_role("button", name="添加渠道").click()
    _flash(page, "channels", "已添加渠道")
    row = page.locator(f"#settings-channels tr[data-channel={name}]")
    assert "?…" in row.inner_text() and "token=abc" not in page.content()  # the URL's key is not shown
    with session_scope() as s:
        channel = next(c for c in monitor_notifications.list_channels(s) if c["name"] == name)
    assert channel["kind"] == "webhook" and channel["signed"] and channel["enabled"]

    row.get_by_role("button", name="发送测试").click()
    _flash(page, "channels", "测试消息已送达")
    assert len(received) == 1
    got = received[0]
    assert got["headers"]["X-Liebian-Event"] == "test"
    ts = int(got["headers"]["X-Liebian-Timestamp"])
    assert got["headers"]["X-Liebian-Signature"] == notify.webhook_signature(
        "s3cret-signing", ts, got["body"]
    )
    assert json.loads(got["body"])["event"] == "test"
    with session_scope() as s:
        logged = [d for d in monitor_notifications.list_deliveries(s) if d["channel_id"] == channel["id"]]
    assert [(d["event"], d["status"]) for d in logged] == [("test", "delivered")]

    page.locator(f"#settings-channels tr[data-channel={name}]").get_by_role("button", name="移除").click()
    _flash(page, "channels", "已移除渠道")
    assert "已移除" in page.locator(f"#settings-channels tr[data-channel={name}]").inner_text()
    with session_scope() as s:
        assert not next(c for c in monitor_notifications.list_channels(s) if c["name"] == name)["enabled"]
    assert _audited("monitor.channel.remove", f"channel:{channel['id']}")


@pytest.mark.browser
def test_settings_are_for_admins_only(browser, console_url):
    context, tab = role_page(browser, console_url, "operator1")
    assert tab.locator("nav.side a[href='/settings']").count() == 0
    assert tab.request.get("/settings").status == 403
    csrf = tab.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    made = tab.request.post(
        "/settings/users", form={"username": "sneaky", "role": "admin"}, headers={"X-CSRF-Token": csrf}
    )
    assert made.status == 403
    context.close()
    assert not tab.console_errors


def test_settings_errors_are_named(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as client:
        short = client.post(
            "/settings/users", data={"username": "ann", "role": "viewer", "password": "short"}
        )
        assert "flash error" in short.text and "password: at least 10 characters" in short.text
        bad_role = client.post("/settings/users", data={"username": "ann", "role": "boss"})
        assert "flash error" in bad_role.text and "boss" in bad_role.text
        ok = client.post(
            "/settings/users", data={"username": "ann", "role": "viewer", "password": "long enough 1"}
        )
        assert "flash ok" in ok.text and 'id="new-secret"' not in ok.text  # a chosen password is not echoed
        again = client.post("/settings/users", data={"username": "ann", "role": "viewer"})
        assert "already exists" in again.text
        assert "does not exist" in client.post("/settings/users/nobody/role", data={"role": "viewer"}).text
        no_role = client.post("/settings/keys", data={"name": "k", "kind": "service"})
        assert "flash error" in no_role.text and "role" in no_role.text
        days = client.post("/settings/keys", data={"name": "k", "kind": "public", "expires_days": "soon"})
        assert "expires_days" in days.text
        url = client.post("/settings/channels", data={"name": "c", "kind": "webhook", "target": "ftp://x"})
        assert "target: webhook channels need an http(s) URL" in url.text
        assert "not found" in client.post("/settings/channels/999/test").text
    with session_scope() as s:
        assert [u.username for u in auth.list_users(s)] == ["ann"]
        assert monitor_notifications.list_channels(s) == []
        # of the four posts to /settings/users one changed something: one http.post audit entry
        posts = [
            e
            for e in auth.audit_entries(s, action="http.post", limit=None)
            if e["target"] == "/settings/users"
        ]
    assert len(posts) == 1 and posts[0]["detail"]["status"] == 200
