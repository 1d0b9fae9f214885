"""The console's login form and logout button (the JSON login is auth.api's `/api/v1/auth/login`)."""

from __future__ import annotations

import orjson
from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from liebian.auth import service
from liebian.auth.deps import SESSION_COOKIE, client_ip, principal_of, set_session_cookie
from liebian.db.session import session_scope
from liebian.web.console import TEMPLATES, flash_fragment, htmx_redirect
from liebian.web.i18n import DEFAULT_LOCALE, locale_of, translator

router = APIRouter(include_in_schema=False)


def _login_page(request: Request, message: str = "", status_code: int = 200) -> Response:
    locale = locale_of(request)
    context = {
        "t": translator(locale),
        "locale": locale,
        "other_locale": "en" if locale == DEFAULT_LOCALE else DEFAULT_LOCALE,
        "message": message,
    }
    response = TEMPLATES.TemplateResponse(request, "login.html", context, status_code=status_code)
    if "lang" in request.query_params:
        response.set_cookie("lang", locale, samesite="lax", max_age=365 * 86400)
    return response


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request) -> Response:
    return _login_page(request)


@router.post("/login")
def login_form(request: Request, username: str = Form(""), password: str = Form("")) -> Response:
    error = None
    with session_scope() as s:
        try:
            user = service.authenticate(s, username, password, client_ip(request))
            token, _csrf = service.create_session(s, user, client_ip(request))
        except service.AuthError as exc:
            error = exc
    if error is not None:  # the same page for every refusal; a throttled address is told when to retry
        page = _login_page(request, error.message, error.status)
        if error.retry_after is not None:
            page.headers["Retry-After"] = str(error.retry_after)
        return page
    response = RedirectResponse("/", status_code=303)
    set_session_cookie(response, token)
    return response


@router.post("/logout")
def logout_form(request: Request, csrf_token: str = Form("")) -> Response:
    token = request.cookies.get(SESSION_COOKIE)
    principal = principal_of(request)
    if token and principal.kind == "session" and csrf_token == principal.csrf_token:
        with session_scope() as s:
            service.revoke_session(s, token, client_ip(request))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


# The first login with a one-time password (the bootstrap admin's, or one an admin set) lands here:
# auth.deps sends every other console page to /password until the user has chosen their own.
PASSWORD_ERRORS = {"unauthorized": "password.err.current", "throttled": "password.err.throttled"}


@router.get("/password", response_class=HTMLResponse)
def password_page(request: Request) -> Response:
    principal = principal_of(request)
    locale = locale_of(request)
    context = {
        "t": translator(locale),
        "locale": locale,
        "other_locale": "en" if locale == DEFAULT_LOCALE else DEFAULT_LOCALE,
        "csrf_header": orjson.dumps({"X-CSRF-Token": principal.csrf_token or ""}).decode(),
        "user": principal.name.removeprefix("user:"),
    }
    response = TEMPLATES.TemplateResponse(request, "password.html", context)
    if "lang" in request.query_params:
        response.set_cookie("lang", locale, samesite="lax", max_age=365 * 86400)
    return response


@router.post("/password")
def change_password(
    request: Request,
    current_password: str = Form("", max_length=1024),
    new_password: str = Form("", max_length=1024),
    confirm_password: str = Form("", max_length=1024),
) -> Response:
    principal = principal_of(request)
    if principal.kind != "session":
        raise HTTPException(403, "only a console session changes its own password here")
    t = translator(locale_of(request))
    if len(new_password) < service.MIN_PASSWORD:
        return flash_fragment(t("password.err.short"), ok=False)
    if new_password != confirm_password:
        return flash_fragment(t("password.err.mismatch"), ok=False)
    if new_password == current_password:
        return flash_fragment(t("password.err.same"), ok=False)
    username = principal.name.removeprefix("user:")
    error = None
    with session_scope() as s:
        try:
            service.change_own_password(s, username, current_password, new_password, client_ip(request))
        except service.AuthError as exc:
            error = exc
    if error is not None:
        return flash_fragment(t(PASSWORD_ERRORS.get(error.code, "password.err.current")), ok=False)
    return htmx_redirect("/")
