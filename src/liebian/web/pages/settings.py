"""Settings (admins only): console users, the roles' permissions, API keys and the monitor's
notification channels. Every write goes through htmx to the auth and monitor services, which audit
it (user.create, user.role, apikey.create, monitor.channel.create …; the gate adds its http.post
entry); each answer re-renders the section it changed with a status line. A new API key and a
generated password are shown once, in that answer only: liebian keeps hashes."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from liebian.web.console import render
from liebian.web.i18n import locale_of, register, translator

router = APIRouter(include_in_schema=False)

SECTIONS = ("users", "roles", "keys", "channels")

register(
    {
        "settings.heading": ("设置", "Settings"),
        "settings.sections": ("设置分区", "Settings sections"),
        "settings.users": ("用户", "Users"),
        "settings.roles": ("角色与权限", "Roles and permissions"),
        "settings.keys": ("API 密钥", "API keys"),
        "settings.channels": ("通知渠道", "Notification channels"),
        "settings.username": ("用户名", "Username"),
        "settings.role": ("角色", "Role"),
        "settings.active": ("状态", "Status"),
        "settings.is_active": ("启用", "active"),
        "settings.is_inactive": ("已停用", "deactivated"),
        "settings.must_change": ("需改密码", "must change password"),
        "settings.last_login": ("最近登录", "Last login"),
        "settings.created": ("创建时间", "Created"),
        "settings.actions": ("操作", "Actions"),
        "settings.password": (
            "密码（留空则生成一次性密码）",
            "Password (empty: a one-time password is generated)",
        ),
        "settings.create_user": ("创建用户", "Create user"),
        "settings.change_role": ("修改角色", "Change role"),
        "settings.new_role_for": ("新角色：", "New role for"),
        "settings.deactivate": ("停用", "Deactivate"),
        "settings.activate": ("启用", "Activate"),
        "settings.reset_password": ("重置密码", "Reset password"),
        "settings.user_created": ("已创建用户", "User created"),
        "settings.role_changed": ("已修改角色", "Role changed"),
        "settings.deactivated": (
            "已停用用户（其会话和密钥立即失效）",
            "User deactivated (sessions and keys stop now)",
        ),
        "settings.activated": ("已启用用户", "User activated"),
        "settings.password_reset": ("已重置密码", "Password reset"),
        "settings.one_time": (
            "一次性密码（只显示这一次，用户首次登录后需修改）：",
            "One-time password (shown this once; the user must change it at first login):",
        ),
        "settings.yourself": ("不能停用或降级自己的账号。", "You cannot deactivate or demote yourself."),
        "settings.permission": ("权限", "Permission"),
        "settings.permission_meaning": ("含义", "Meaning"),
        "settings.roles_note": (
            "权限由 auth/policy.py 定义（只读）；管理员拥有除审计日志外的全部权限。",
            "Permissions are defined in auth/policy.py (read-only); admins hold everything but the audit log.",
        ),
        "settings.key_id": ("密钥 ID", "Key id"),
        "settings.key_name": ("名称", "Name"),
        "settings.key_kind": ("类型", "Kind"),
        "settings.key_kind.user": ("用户密钥", "user key"),
        "settings.key_kind.service": ("服务密钥", "service key"),
        "settings.key_kind.public": ("前端公钥（只写）", "public front-end key (write-only)"),
        "settings.key_owner": ("所属用户（用户密钥）", "Owner (user key)"),
        "settings.key_role": ("角色（服务密钥）", "Role (service key)"),
        "settings.scopes": ("权限范围（空格分隔，可留空）", "Scopes (space-separated, optional)"),
        "settings.expires_days": ("有效天数", "Expires in days"),
        "settings.expires": ("过期时间", "Expires"),
        "settings.last_used": ("最近使用", "Last used"),
        "settings.revoked": ("已吊销", "revoked"),
        "settings.create_key": ("创建密钥", "Create key"),
        "settings.revoke": ("吊销", "Revoke"),
        "settings.key_created": (
            "新密钥（只显示这一次，请立即复制保存）：",
            "The new key (shown this once: copy it now):",
        ),
        "settings.key_revoked": ("已吊销密钥", "Key revoked"),
        "settings.channel_name": ("名称", "Name"),
        "settings.channel_kind": ("类型", "Kind"),
        "settings.channel_kind.wecom": ("企业微信群机器人", "WeCom group robot"),
        "settings.channel_kind.dingtalk": ("钉钉机器人", "DingTalk robot"),
        "settings.channel_kind.webhook": ("Webhook", "Webhook"),
        "settings.channel_kind.email": ("邮件", "E-mail"),
        "settings.channel_target": ("地址（URL 或邮箱，逗号分隔）", "Target (URL, or e-mail addresses)"),
        "settings.channel_secret": ("签名密钥（可选）", "Signing secret (optional)"),
        "settings.min_level": ("最低级别", "Lowest level"),
        "settings.signed": ("签名", "Signed"),
        "settings.add_channel": ("添加渠道", "Add channel"),
        "settings.test": ("发送测试", "Send a test"),
        "settings.remove": ("移除", "Remove"),
        "settings.removed": ("已移除", "removed"),
        "settings.channel_added": ("已添加渠道", "Channel added"),
        "settings.channel_removed": ("已移除渠道", "Channel removed"),
        "settings.test_delivered": ("测试消息已送达", "Test message delivered"),
        "settings.test_failed": ("测试消息发送失败", "Test message failed"),
        "settings.none": ("暂无。", "None yet."),
        "settings.yes": ("是", "yes"),
        "settings.no": ("否", "no"),
    }
)


def _actor(request: Request) -> tuple[str, str]:
    from liebian.auth.deps import client_ip, principal_of

    return principal_of(request).name, client_ip(request)


def _section_context(section: str) -> dict:
    """What one section lists, read from the services."""
    from liebian.auth import policy
    from liebian.auth import service as auth
    from liebian.db.session import session_scope
    from liebian.monitor import notifications as monitor_notifications
    from liebian.monitor import service as monitor

    with session_scope() as s:
        if section == "users":
            return {"users": auth.list_users(s), "roles": policy.ROLES}
        if section == "keys":
            return {"keys": auth.list_api_keys(s), "users": auth.list_users(s), "roles": policy.ROLES}
        if section == "channels":
            return {"channels": monitor_notifications.list_channels(s), "kinds": monitor.CHANNEL_KINDS,
                    "levels": monitor.LEVELS}  # fmt: skip
    permissions = list(policy.PERMISSIONS.items())
    return {
        "permissions": permissions,
        "roles": policy.ROLES,
        "matrix": {r: policy.permissions_of(r) for r in policy.ROLES},
    }


@router.get("/settings")
def settings_page(request: Request) -> Response:
    context: dict = {"sections": SECTIONS}
    for section in SECTIONS:
        context[section] = _section_context(section)
    return render(request, "settings/page.html", context)


def _section(
    request: Request, section: str, message: str = "", ok: bool = True, secret: str = ""
) -> Response:
    """The re-rendered section after a write, with its status line (and a secret shown once)."""
    context = {"sec": _section_context(section), "message": message, "ok": ok, "secret": secret}
    return render(request, f"settings/_{section}.html", context)


def _me(request: Request) -> str:
    from liebian.auth.deps import principal_of

    return principal_of(request).name.removeprefix("user:")


def _write(request: Request, section: str, change, done) -> Response:
    """Run `change(session, actor, ip)` through the auth or monitor service; answer the section
    with `done(result, t)` → (message, secret, ok), or with the service's error."""
    from liebian.auth.service import AuthError
    from liebian.db.session import session_scope
    from liebian.monitor.service import MonitorError

    t = translator(locale_of(request))
    actor, ip = _actor(request)
    try:
        with session_scope() as s:
            result = change(s, actor, ip)
    except (AuthError, MonitorError) as exc:
        return _refused(request, section, exc.message)
    message, secret, ok = done(result, t)
    return _section(request, section, message, ok=ok, secret=secret)


def _refused(request: Request, section: str, message: str) -> Response:
    """The section with the reason a write was refused (nothing changed: no http.* audit entry)."""
    from liebian.auth.deps import write_refused

    write_refused(request)
    return _section(request, section, message, ok=False)


# --- users ------------------------------------------------------------------------------------


@router.post("/settings/users")
def create_user(
    request: Request, username: str = Form(""), role: str = Form(""), password: str = Form("")
) -> Response:
    from liebian.auth import service as auth

    one_time = "" if password else auth.generate_password()

    def change(s, actor: str, ip: str):
        return auth.create_user(s, username, password or one_time, role, actor=actor, ip=ip,
                                must_change_password=not password)  # fmt: skip

    def done(_user, t) -> tuple[str, str, bool]:
        note = f"{t('settings.user_created')} {username.strip()}"
        return (note + " · " + t("settings.one_time"), one_time, True) if one_time else (note, "", True)

    return _write(request, "users", change, done)


@router.post("/settings/users/{username}/role")
def change_role(request: Request, username: str, role: str = Form("")) -> Response:
    from liebian.auth import service as auth

    if username == _me(request) and role != "admin":
        return _refused(request, "users", translator(locale_of(request))("settings.yourself"))
    return _write(
        request, "users", lambda s, actor, ip: auth.set_role(s, username, role, actor=actor, ip=ip),
        lambda _u, t: (f"{t('settings.role_changed')}: {username} → {t('role.' + role)}", "", True),
    )  # fmt: skip


@router.post("/settings/users/{username}/active")
def set_active(request: Request, username: str, active: str = Form("")) -> Response:
    from liebian.auth import service as auth

    on = active == "1"
    if username == _me(request) and not on:
        return _refused(request, "users", translator(locale_of(request))("settings.yourself"))
    return _write(
        request, "users", lambda s, actor, ip: auth.set_active(s, username, on, actor=actor, ip=ip),
        lambda _u, t: (f"{t('settings.activated' if on else 'settings.deactivated')}: {username}", "", True),
    )  # fmt: skip


@router.post("/settings/users/{username}/password")
def reset_password(request: Request, username: str) -> Response:
    from liebian.auth import service as auth

    one_time = auth.generate_password()
    return _write(
        request, "users", lambda s, actor, ip: auth.reset_password(s, username, one_time, actor=actor, ip=ip),
        lambda _u, t: (f"{t('settings.password_reset')}: {username} · {t('settings.one_time')}", one_time, True),
    )  # fmt: skip


# --- API keys ---------------------------------------------------------------------------------


@router.post("/settings/keys")
def create_key(
    request: Request,
    name: str = Form(""),
    kind: str = Form("user"),
    username: str = Form(""),
    role: str = Form(""),
    scopes: str = Form(""),
    expires_days: str = Form("90"),
) -> Response:
    from liebian.auth import service as auth

    days = expires_days.strip()
    if days and not days.isdigit():
        return _refused(request, "keys", f"expires_days: {days!r} is not a whole number of days")

    def change(s, actor: str, ip: str) -> str:
        plaintext, _record = auth.create_api_key(
            s, name=name.strip(), actor=actor, kind=kind, username=username or None, role=role or None,
            scopes=scopes.split(), expires_days=int(days) if days else None, ip=ip,
        )  # fmt: skip
        return plaintext

    return _write(request, "keys", change, lambda plaintext, t: (t("settings.key_created"), plaintext, True))


@router.post("/settings/keys/{key_id}/revoke")
def revoke_key(request: Request, key_id: str) -> Response:
    from liebian.auth import service as auth

    return _write(
        request, "keys", lambda s, actor, ip: auth.revoke_api_key(s, key_id, actor=actor, ip=ip),
        lambda _k, t: (f"{t('settings.key_revoked')}: {key_id}", "", True),
    )  # fmt: skip


# --- notification channels ------------------------------------------------------------------


@router.post("/settings/channels")
def add_channel(
    request: Request,
    name: str = Form(""),
    kind: str = Form(""),
    target: str = Form(""),
    secret: str = Form(""),
    min_level: str = Form("一般"),
) -> Response:
    from liebian.monitor import notifications as monitor_notifications

    name = name.strip()
    if not name or len(name) > 100:
        return _refused(request, "channels", "name: 1–100 characters")
    return _write(
        request, "channels",
        lambda s, actor, _ip: monitor_notifications.add_channel(s, name, kind, target, secret.strip(), min_level, actor=actor),
        lambda _c, t: (f"{t('settings.channel_added')}: {name}", "", True),
    )  # fmt: skip


@router.post("/settings/channels/{channel_id}/test")
def test_channel(request: Request, channel_id: int) -> Response:
    from liebian.monitor import notifications as monitor_notifications

    def done(delivery: dict, t) -> tuple[str, str, bool]:
        if delivery["status"] == "delivered":
            return f"{t('settings.test_delivered')}: {delivery['channel']}", "", True
        detail = delivery["error"] or f"HTTP {delivery['http_status']}"
        return f"{t('settings.test_failed')}: {delivery['channel']} — {detail}", "", False

    return _write(
        request,
        "channels",
        lambda s, actor, _ip: monitor_notifications.test_channel(s, channel_id, actor=actor),
        done,
    )


@router.post("/settings/channels/{channel_id}/remove")
def remove_channel(request: Request, channel_id: int) -> Response:
    from liebian.monitor import notifications as monitor_notifications

    return _write(
        request, "channels", lambda s, actor, _ip: monitor_notifications.remove_channel(s, channel_id, actor=actor),
        lambda removed, t: (f"{t('settings.channel_removed')}: {removed['name']}", "", True),
    )  # fmt: skip
