"""Enforcement: one FastAPI dependency, installed for the whole app in web/app.py, that finds who
is calling, looks the route up in auth.policy.ROUTES and allows or refuses the request.

Credentials, in order: `Authorization: Bearer <key>` or `X-API-Key: <key>` (an API key), else the
console's session cookie (then unsafe methods need the session's CSRF token in `X-CSRF-Token`),
else anonymous. A wrong or expired key is refused (401), never downgraded to anonymous.

Operator writes and reads of person-level data are written to the audit log here, centrally;
front-end traffic (ingestion, invites, conversions) is recorded by its own domain tables instead.
"""

from __future__ import annotations

import hmac
import threading
import time

from fastapi import Depends, HTTPException, Request, Response
from fastapi.security import APIKeyCookie, APIKeyHeader, HTTPBearer
from starlette.concurrency import run_in_threadpool

from liebian.auth import policy, service
from liebian.auth.service import ANONYMOUS_PRINCIPAL, Principal
from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.privacy.crypto import mask_identifier

SESSION_COOKIE = "liebian_session"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# reads that show person-level data: who looked at whom is audited
AUDITED_READS = frozenset({"identity:read", "privacy:dsr", "pii:reveal", "audit:read", "privacy:read"})

# Declared so the OpenAPI document lists the schemes (auto_error off: the policy decides).
bearer_scheme = HTTPBearer(auto_error=False, description="API key: `Authorization: Bearer lb_…`")
api_key_scheme = APIKeyHeader(name="X-API-Key", auto_error=False, description="API key")
cookie_scheme = APIKeyCookie(name=SESSION_COOKIE, auto_error=False, description="console session")


def _secure_cookie() -> bool:
    s = get_settings()
    return s.cookie_secure if s.cookie_secure is not None else s.public_url.startswith("https://")


def set_session_cookie(response: Response, token: str) -> None:
    """The console session's cookie (the JSON login and the console's login form set it)."""
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=service.SESSION_HOURS * 3600,
        httponly=True,
        secure=_secure_cookie(),
        samesite="strict",
        path="/",
    )


def client_ip(request: Request) -> str:
    return request.client.host if request.client else ""


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return header[7:].strip()
    return request.headers.get("x-api-key") or None


def principal_of(request: Request) -> Principal:
    """Who is calling (cached on the request)."""
    cached = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    key = _presented_key(request)
    principal = ANONYMOUS_PRINCIPAL
    if key is not None:
        found = service.verified_key_principal(key)  # cached in the process for a few seconds
        if found is None:
            raise HTTPException(
                401, "invalid, revoked or expired API key", headers={"WWW-Authenticate": "Bearer"}
            )
        principal = found
    elif request.cookies.get(SESSION_COOKIE):
        with session_scope() as s:
            principal = service.session_principal(s, request.cookies[SESSION_COOKIE]) or ANONYMOUS_PRINCIPAL
    request.state.principal = principal
    return principal


class RateLimiter:
    """Token buckets per (client, route): `per_minute` requests, refilled continuously.

    In-process: with several workers each holds its own buckets (the limit is per worker); a
    reverse proxy in front of a multi-worker deployment should limit as well.
    """

    def __init__(self) -> None:
        self._buckets: dict[tuple[str, str], tuple[float, float]] = {}
        self._lock = threading.Lock()

    def allow(self, client: str, bucket: str, per_minute: int) -> bool:
        if per_minute <= 0:
            return True
        now = time.monotonic()
        rate = per_minute / 60.0
        with self._lock:
            tokens, last = self._buckets.get((client, bucket), (float(per_minute), now))
            tokens = min(float(per_minute), tokens + (now - last) * rate)
            if tokens < 1.0:
                self._buckets[(client, bucket)] = (tokens, now)
                return False
            self._buckets[(client, bucket)] = (tokens - 1.0, now)
            if len(self._buckets) > 100_000:  # forget idle clients
                self._buckets = {k: v for k, v in self._buckets.items() if now - v[1] < 120}
            return True


limiter = RateLimiter()


def _route_template(request: Request) -> str:
    route = request.scope.get("route")
    return getattr(route, "path", None) or request.url.path


def _principal_at_hand(request: Request) -> bool:
    """Whether the caller is known without the store (no credential, or a key the process verified
    a moment ago); if so, `principal_of` answers from the request from now on."""
    if getattr(request.state, "principal", None) is not None:
        return True
    key = _presented_key(request)
    if key is None:
        if request.cookies.get(SESSION_COOKIE):
            return False
        principal: Principal | None = ANONYMOUS_PRINCIPAL
    else:
        principal = service.cached_key_principal(key)
    if principal is None:
        return False
    request.state.principal = principal
    return True


async def authorize(
    request: Request,
    _bearer=Depends(bearer_scheme),
    _key=Depends(api_key_scheme),
    _cookie=Depends(cookie_scheme),
) -> None:
    """The one gate every API and console route passes (see auth.policy). The three schemes are
    declared so that the OpenAPI document says how to authenticate; the checks are in `_authorize`.
    On the event loop when the caller is known without the store (a cached key, no credential):
    a worker thread per request costs more than the check (issue #23); otherwise in one."""
    if _principal_at_hand(request):
        denied = _authorize(request)
    else:
        denied = await run_in_threadpool(_authorize_in_thread, request)
    if denied is not None:
        await run_in_threadpool(_audit_denied, request, denied)


def _authorize_in_thread(request: Request) -> dict[str, str | None] | None:
    principal_of(request)  # looked up in the store (a session, a key not in the cache)
    return _authorize(request)


def _authorize(request: Request) -> dict[str, str | None] | None:
    """The checks: None when the request may proceed; for a known caller refused, the audit detail
    of the refusal (`_audit_denied` writes it, in a worker thread, and refuses)."""
    template = _route_template(request)
    method = request.method
    permission = policy.route_permission(method, template)
    principal = principal_of(request)
    ip = client_ip(request)
    if principal.kind in ("public", "anonymous") and not limiter.allow(
        ip, f"{method} {template}", get_settings().rate_limit_per_minute
    ):
        raise HTTPException(
            429, "too many requests from this client; slow down", headers={"Retry-After": "10"}
        )
    if not principal.can(permission):
        if principal.kind == "anonymous":
            if method == "GET" and template == "/":
                raise HTTPException(303, "login required", headers={"Location": "/login"})
            raise HTTPException(401, "authentication required", headers={"WWW-Authenticate": "Bearer"})
        return {"needs": permission}
    if principal.kind == "session" and principal.must_change_password and permission != policy.ANONYMOUS:
        _require_password_change(method, template)
    if principal.kind == "session" and method in UNSAFE and permission != policy.ANONYMOUS:
        sent = request.headers.get(CSRF_HEADER, "")
        if not sent or not principal.csrf_token or not _same(sent, principal.csrf_token):
            raise HTTPException(403, f"missing or wrong CSRF token (send it in {CSRF_HEADER})")
    if permission in policy.PUBLIC_SCOPES or permission == policy.ANONYMOUS:
        return None
    if method in UNSAFE or permission in AUDITED_READS:
        # written by AuditMiddleware once the answer is known: a write that failed changed nothing
        # and is not an action (refusals by the gate: `_audit_denied`); reads of person-level
        # data are recorded whatever they found (a miss is a probe too)
        request.state.liebian_audit = {
            "actor": principal.name,
            "action": f"http.{method.lower()}",
            "target": request.url.path,
            # values masked: a query can carry an identifier (a phone to look up)
            "detail": {
                "route": template,
                "query": {k: mask_identifier(v) for k, v in request.query_params.items()},
            },
            "ip": ip,
            "read": method not in UNSAFE,
        }
    return None


def _audit_denied(request: Request, detail: dict[str, str | None]) -> None:
    """Audit a refusal by the gate of a known caller, then refuse (403)."""
    method, template = request.method, _route_template(request)
    with session_scope() as s:
        service.audit(
            s,
            principal_of(request).name,
            "access.denied",
            f"{method} {request.url.path}",
            detail,
            client_ip(request),
        )
    raise HTTPException(
        403, f"forbidden: {method} {template} needs the permission {detail['needs'] or 'admin'}"
    )


def write_refused(request: Request) -> None:
    """For a handler that answers a refused write with a 2xx status (the console's htmx forms show
    the service's message in place, and htmx swaps only 2xx answers): nothing changed, so no
    http.* audit entry is written for the request."""
    request.state.liebian_audit = None


def _write_audit(pending: dict, status: int) -> None:
    with session_scope() as s:
        service.audit(
            s,
            pending["actor"],
            pending["action"],
            pending["target"],
            {**pending["detail"], "status": status},
            pending["ip"],
        )


class AuditMiddleware:
    """Pure ASGI: after the response, writes the audit entry `authorize` prepared, if it succeeded."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        status: dict[str, int] = {}

        async def send_and_note(message) -> None:
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
            await send(message)

        await self.app(scope, receive, send_and_note)
        pending = (scope.get("state") or {}).get("liebian_audit")
        if pending and (pending["read"] or status.get("code", 500) < 400):
            await run_in_threadpool(_write_audit, pending, status.get("code", 500))


# What a console user on a one-time password may still reach (API keys are not affected).
PASSWORD_CHANGE_ROUTES = frozenset({"/password", "/api/v1/auth/me", "/api/v1/auth/logout"})


def _require_password_change(method: str, template: str) -> None:
    """A session whose user must change the one-time password: console pages lead to /password,
    anything else is refused until it is changed."""
    if template in PASSWORD_CHANGE_ROUTES:
        return
    if method == "GET" and not template.startswith("/api/"):
        raise HTTPException(303, "change the one-time password first", headers={"Location": "/password"})
    raise HTTPException(403, "change the one-time password first (console page /password)")


def _same(a: str, b: str) -> bool:

    return hmac.compare_digest(a.encode(), b.encode())


SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
# The console: own scripts only; inline styles are used by the templates. /docs and /redoc (their
# bundles vendored in static/vendor, see web/apidocs.py) start with an inline script: served without it.
CONSOLE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'"
)


class SecurityHeadersMiddleware:
    """Pure ASGI: adds the headers above to every response (no buffering of bodies)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        https = scope.get("scheme") == "https"

        async def send_with_headers(message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                for name, value in SECURITY_HEADERS.items():
                    if name.lower().encode() not in present:
                        headers.append((name.lower().encode(), value.encode()))
                if not path.startswith(("/docs", "/redoc")) and b"content-security-policy" not in present:
                    headers.append((b"content-security-policy", CONSOLE_CSP.encode()))
                if https:
                    headers.append((b"strict-transport-security", b"max-age=31536000; includeSubDomains"))
                if path.startswith("/api/") and b"cache-control" not in present:
                    headers.append((b"cache-control", b"no-store"))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)
