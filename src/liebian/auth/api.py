"""HTTP API of auth: login/logout (JSON and the console's form), users, API keys, the audit log.

Authorisation is not decided here: auth.deps.authorize (installed for the whole app) checks every
route against auth.policy before these handlers run.
"""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response

from liebian.auth import policy, service
from liebian.auth.deps import CSRF_HEADER, SESSION_COOKIE, client_ip, principal_of, set_session_cookie
from liebian.auth.schemas import (
    AuditOut,
    AuditVerify,
    KeyCreate,
    KeyCreated,
    KeyOut,
    LoginRequest,
    LoginResponse,
    Me,
    PolicyTable,
    UserCreate,
    UserCreated,
    UserOut,
    UserUpdate,
    encode,
)
from liebian.cells import safe_record
from liebian.db.session import session_scope
from liebian.schemas import EdgeDateTime

router = APIRouter(tags=["auth"])

ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"description": "not authenticated"},
    403: {"description": "forbidden"},
}


@router.post(
    "/api/v1/auth/login", response_model=LoginResponse, responses={401: {"description": "wrong credentials"}}
)
def login(body: LoginRequest, request: Request):
    """Log in to the console: sets the session cookie; send the returned csrf_token as X-CSRF-Token."""
    error = None
    with session_scope() as s:  # caught inside: the failure counter and audit entry are committed
        try:
            user = service.authenticate(s, body.username, body.password, client_ip(request))
            token, csrf = service.create_session(s, user, client_ip(request))
            out = {
                "username": user.username,
                "role": user.role,
                "csrf_token": csrf,
                "must_change_password": user.must_change_password,
            }
        except service.AuthError as exc:
            error = exc
    if error is not None:
        raise error
    response = JSONResponse(out)
    set_session_cookie(response, token)
    return response


@router.post("/api/v1/auth/logout", status_code=204, response_class=Response)
def logout(request: Request) -> Response:
    """End the console session (idempotent)."""
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        principal = principal_of(request)
        sent = request.headers.get(CSRF_HEADER, "")
        if principal.kind == "session" and sent == principal.csrf_token:
            with session_scope() as s:
                service.revoke_session(s, token, client_ip(request))
    response = Response(status_code=204)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


@router.get("/api/v1/auth/me", response_model=Me, responses=ERRORS)
def me(request: Request) -> Me:
    p = principal_of(request)
    return Me(name=p.name, kind=p.kind, role=p.role, permissions=sorted(p.permissions))


@router.get("/api/v1/auth/users", response_model=list[UserOut], responses=ERRORS)
def users() -> list[UserOut]:
    with session_scope() as s:
        return service.list_users(s)


@router.post(
    "/api/v1/auth/users",
    response_model=UserCreated,
    status_code=201,
    responses={**ERRORS, 409: {"description": "exists"}},
)
def create_user(body: UserCreate, request: Request):
    """Create a console user; without a password a one-time password is returned (change on first login)."""
    password = body.password or service.generate_password()
    with session_scope() as s:
        user = service.create_user(
            s,
            body.username,
            password,
            body.role,
            actor=principal_of(request).name,
            ip=client_ip(request),
            must_change_password=body.password is None,
        )
        view = service.user_view(user)
    out = UserCreated(**dict(view), one_time_password=None if body.password else password)
    return JSONResponse(status_code=201, content=encode(out))


@router.patch(
    "/api/v1/auth/users/{username}",
    response_model=UserOut,
    responses={**ERRORS, 404: {"description": "no such user"}},
)
def update_user(username: str, body: UserUpdate, request: Request):
    actor, ip = principal_of(request).name, client_ip(request)
    with session_scope() as s:
        if body.role is not None:
            service.set_role(s, username, body.role, actor=actor, ip=ip)
        if body.active is not None:
            service.set_active(s, username, body.active, actor=actor, ip=ip)
        user = service.get_user(s, username)
        if user is None:
            raise service.AuthError("not_found", f"user {username!r} does not exist", 404)
        return service.user_view(user)


@router.get("/api/v1/auth/keys", response_model=list[KeyOut], responses=ERRORS)
def keys() -> list[KeyOut]:
    with session_scope() as s:
        return service.list_api_keys(s)


@router.post(
    "/api/v1/auth/keys",
    response_model=KeyCreated,
    status_code=201,
    responses={**ERRORS, 404: {"description": "no such user"}},
)
def create_key(body: KeyCreate, request: Request):
    """Create an API key. The key is in this response only; liebian keeps a hash."""
    with session_scope() as s:
        plaintext, record = service.create_api_key(
            s,
            name=body.name,
            actor=principal_of(request).name,
            kind=body.kind,
            username=body.username,
            role=body.role,
            scopes=body.scopes,
            expires_days=body.expires_days,
            ip=client_ip(request),
        )
        view = service.key_view(record, body.username if body.kind == "user" else None)
    out = KeyCreated(**dict(view), key=plaintext)
    return JSONResponse(status_code=201, content=encode(out))


@router.delete(
    "/api/v1/auth/keys/{key_id}",
    response_model=KeyOut,
    responses={**ERRORS, 404: {"description": "no such key"}},
)
def revoke_key(key_id: str, request: Request):
    with session_scope() as s:
        record = service.revoke_api_key(s, key_id, actor=principal_of(request).name, ip=client_ip(request))
        return service.key_view(record)


@router.get("/api/v1/auth/policy", response_model=PolicyTable, responses=ERRORS)
def policy_table() -> dict:
    """The permission matrix and the route table (what each role may do)."""
    return {
        "roles": {r: sorted(policy.permissions_of(r)) for r in policy.ROLES},
        "public_key_scopes": sorted(policy.PUBLIC_SCOPES),
        "routes": [
            {"method": m, "path": p, "permission": perm} for (m, p), perm in sorted(policy.ROUTES.items())
        ],
    }


@router.get("/api/v1/auth/audit", response_model=list[AuditOut], responses=ERRORS)
def audit_log(
    actor: str | None = Query(None, max_length=128),
    action: str | None = Query(None, max_length=128, description="prefix, e.g. login or http.post"),
    since: EdgeDateTime | None = None,
    until: EdgeDateTime | None = None,
    limit: int = Query(1000, ge=1, le=100_000),
) -> list[dict]:
    """The audit log (auditors only)."""
    with session_scope() as s:
        return service.audit_entries(s, actor=actor, action=action, since=since, until=until, limit=limit)


@router.get("/api/v1/auth/audit/verify", response_model=AuditVerify, responses=ERRORS)
def audit_verify() -> dict:
    with session_scope() as s:
        return service.verify_audit(s)


@router.get(
    "/api/v1/auth/audit/export",
    response_class=Response,
    responses={**ERRORS, 200: {"content": {"text/csv": {}, "application/x-ndjson": {}}}},
)
def audit_export(fmt: str = Query("csv", pattern="^(csv|jsonl)$")) -> Response:
    """The whole audit log as CSV or JSON lines, with the hashes (verifiable offline with the key)."""
    with session_scope() as s:
        rows = service.audit_entries(s, limit=None)
    if fmt == "jsonl":
        body = "".join(json.dumps(r, ensure_ascii=False, default=str) + "\n" for r in rows)
        return Response(body, media_type="application/x-ndjson")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(AuditOut.model_fields))
    writer.writeheader()
    for r in rows:
        writer.writerow(
            safe_record({**r, "detail": json.dumps(r["detail"], ensure_ascii=False, sort_keys=True)})
        )
    return Response(buffer.getvalue(), media_type="text/csv; charset=utf-8")
