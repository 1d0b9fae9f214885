"""Settings (admins only): console users, the roles' permissions, API keys and the monitor's
notification channels. Every write goes through htmx to the auth and monitor services, which audit
it (user.create, user.role, apikey.create, monitor.channel.create …; the gate adds its http.post
entry); each answer re-renders the section it changed with a status line. A new API key and a
generated password are shown once, in that answer only: liebian keeps hashes."""

from __future__ import annotations

from fastapi import APIRouter, Form, Request
from fastapi.responses import Response

from liebian.auth import policy
from liebian.auth import service as auth
from liebian.auth.deps import client_ip, principal_of, write_refused
from liebian.auth.service import AuthError
from liebian.db.session import session_scope
from liebian.monitor import notifications as monitor_notifications
from liebian.monitor import service as monitor
from liebian.monitor.service import MonitorError
from liebian.schemas import Int64
from liebian.urlguard import UnsafeURL
from liebian.web.console import render
from liebian.web.i18n import locale_of, translator
from liebian.web.pages.alerts import LEVEL_KEYS

router = APIRouter(include_in_schema=False)

SECTIONS = ("users", "roles", "keys", "channels")


def _actor(request: Request) -> tuple[str, str]:

    return principal_of(request).name, client_ip(request)


def _section_context(section: str) -> dict:
    """What one section lists, read from the services."""

    with session_scope() as s:
        if section == "users":
            return {"users": auth.list_users(s), "roles": policy.ROLES}
        if section == "keys":
            return {"keys": auth.list_api_keys(s), "users": auth.list_users(s), "roles": policy.ROLES}
        if section == "channels":
            return {"channels": monitor_notifications.list_channels(s), "kinds": monitor.CHANNEL_KINDS,
                    "levels": monitor.LEVELS, "level_keys": LEVEL_KEYS}  # fmt: skip
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

    return principal_of(request).name.removeprefix("user:")


def _write(request: Request, section: str, change, done) -> Response:
    """Run `change(session, actor, ip)` through the auth or monitor service; answer the section
    with `done(result, t)` → (message, secret, ok), or with the service's error."""

    t = translator(locale_of(request))
    actor, ip = _actor(request)
    try:
        with session_scope() as s:
            result = change(s, actor, ip)
    except (AuthError, MonitorError, UnsafeURL) as exc:
        return _refused(request, section, exc.message)
    message, secret, ok = done(result, t)
    return _section(request, section, message, ok=ok, secret=secret)


def _refused(request: Request, section: str, message: str) -> Response:
    """The section with the reason a write was refused (nothing changed: no http.* audit entry)."""

    write_refused(request)
    return _section(request, section, message, ok=False)


# --- users ------------------------------------------------------------------------------------


@router.post("/settings/users")
def create_user(
    request: Request, username: str = Form(""), role: str = Form(""), password: str = Form("")
) -> Response:

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

    if username == _me(request) and role != "admin":
        return _refused(request, "users", translator(locale_of(request))("settings.yourself"))
    return _write(
        request, "users", lambda s, actor, ip: auth.set_role(s, username, role, actor=actor, ip=ip),
        lambda _u, t: (f"{t('settings.role_changed')}: {username} → {t('role.' + role)}", "", True),
    )  # fmt: skip


@router.post("/settings/users/{username}/active")
def set_active(request: Request, username: str, active: str = Form("")) -> Response:

    on = active == "1"
    if username == _me(request) and not on:
        return _refused(request, "users", translator(locale_of(request))("settings.yourself"))
    return _write(
        request, "users", lambda s, actor, ip: auth.set_active(s, username, on, actor=actor, ip=ip),
        lambda _u, t: (f"{t('settings.activated' if on else 'settings.deactivated')}: {username}", "", True),
    )  # fmt: skip


@router.post("/settings/users/{username}/password")
def reset_password(request: Request, username: str) -> Response:

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

    name = name.strip()
    if not name or len(name) > 100:
        return _refused(request, "channels", "name: 1–100 characters")
    return _write(
        request, "channels",
        lambda s, actor, _ip: monitor_notifications.add_channel(s, name, kind, target, secret.strip(), min_level, actor=actor),
        lambda _c, t: (f"{t('settings.channel_added')}: {name}", "", True),
    )  # fmt: skip


@router.post("/settings/channels/{channel_id}/test")
def test_channel(request: Request, channel_id: Int64) -> Response:

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
def remove_channel(request: Request, channel_id: Int64) -> Response:
    return _write(
        request, "channels", lambda s, actor, _ip: monitor_notifications.remove_channel(s, channel_id, actor=actor),
        lambda removed, t: (f"{t('settings.channel_removed')}: {removed['name']}", "", True),
    )  # fmt: skip
