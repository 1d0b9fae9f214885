"""Login sessions with CSRF, API keys (scoped, revocable, expiring, stored hashed), lockout, bootstrap."""

from __future__ import annotations

import hashlib
from datetime import timedelta

from auth_helpers import bearer, make_api_key, make_user
from fastapi.testclient import TestClient
from sqlalchemy import select, update

from liebian.auth import service
from liebian.auth.models import ApiKey, User
from liebian.db.session import session_scope
from liebian.web.app import create_app


def _client() -> TestClient:
    return TestClient(create_app(run_migrations=False))


def test_console_session_cookie_and_csrf(store):
    make_user("olga", "operator", "olga's long password")
    client = _client()
    assert client.get("/api/v1/auth/me").status_code == 401
    # the console page sends an anonymous browser to the login form
    r = client.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"

    r = client.post("/api/v1/auth/login", json={"username": "olga", "password": "olga's long password"})
    assert r.status_code == 200, r.text
    csrf = r.json()["csrf_token"]
    cookie = r.headers["set-cookie"].lower()
    assert "httponly" in cookie and "samesite=strict" in cookie
    assert client.get("/api/v1/auth/me").json()["role"] == "operator"

    body = {"title": "t", "type": "invite", "rules": {}}
    # an unsafe request on the session without the CSRF token is refused before the handler runs
    r = client.post("/api/v1/campaigns", json=body)
    assert r.status_code == 403 and "CSRF" in r.json()["detail"]
    r = client.post("/api/v1/campaigns", json=body, headers={"X-CSRF-Token": "wrong"})
    assert r.status_code == 403
    r = client.post("/api/v1/campaigns", json=body, headers={"X-CSRF-Token": csrf})
    assert r.status_code not in (401, 403)
    # operator may not manage users
    assert client.get("/api/v1/auth/users").status_code == 403

    # logout ends the session server-side: the old cookie no longer works
    token = client.cookies.get("liebian_session")
    assert client.post("/api/v1/auth/logout", headers={"X-CSRF-Token": csrf}).status_code == 204
    client.cookies.set("liebian_session", token)
    assert client.get("/api/v1/auth/me").status_code == 401


def test_wrong_passwords_are_audited_and_answer_like_an_unknown_user(store):
    make_user("ann", "analyst", "the right password")
    client = _client()
    for _ in range(3):
        r = client.post("/api/v1/auth/login", json={"username": "ann", "password": "nope"})
        assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
    # an unknown user gets the same answer as a wrong password
    r = client.post("/api/v1/auth/login", json={"username": "ghost", "password": "whatever"})
    assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
    r = client.post("/api/v1/auth/login", json={"username": "ann", "password": "the right password"})
    assert r.status_code == 200
    with session_scope() as s:
        failed = service.audit_entries(s, action="login.failed")
        user = service.get_user(s, "ann")
        assert user.password_hash.startswith("$argon2id$") and user.failed_logins == 0
    assert len(failed) == 4


def test_api_keys_are_hashed_scoped_revocable_and_expiring(store):
    make_user("op", "operator")
    admin = bearer(make_api_key("service", "admin"))
    client = _client()
    r = client.post(
        "/api/v1/auth/keys",
        json={"name": "bi", "kind": "user", "username": "op", "scopes": ["campaign:read"]},
        headers=admin,
    )
    assert r.status_code == 201, r.text
    key, key_id = r.json()["key"], r.json()["key_id"]
    with session_scope() as s:
        rec = s.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
        # only the hash is stored, never the key
        assert rec.key_hash == hashlib.sha256(key.encode()).hexdigest()
        assert key not in str([getattr(rec, c.name) for c in ApiKey.__table__.columns])
    # the listing never shows keys
    assert key not in client.get("/api/v1/auth/keys", headers=admin).text

    assert client.get("/api/v1/campaigns", headers=bearer(key)).status_code == 200
    # scoped to campaign:read although the owner (operator) could write
    assert client.post("/api/v1/campaigns", json={}, headers=bearer(key)).status_code == 403
    # a scope the owner does not hold cannot be granted
    r = client.post(
        "/api/v1/auth/keys", json={"kind": "user", "username": "op", "scopes": ["auth:admin"]}, headers=admin
    )
    assert r.status_code == 422 and "does not hold" in r.json()["detail"]

    # revocation is immediate
    assert client.delete(f"/api/v1/auth/keys/{key_id}", headers=admin).status_code == 200
    r = client.get("/api/v1/campaigns", headers=bearer(key))
    assert r.status_code == 401 and "revoked" in r.json()["detail"]

    # expiry
    key2 = make_api_key("service", "viewer", expires_days=1)
    assert client.get("/api/v1/analytics/kpis", headers={"X-API-Key": key2}).status_code != 401
    with session_scope() as s:
        s.execute(
            update(ApiKey)
            .where(ApiKey.key_hash == hashlib.sha256(key2.encode()).hexdigest())
            .values(expires_at=service.utcnow() - timedelta(seconds=1))
        )
    # an edit behind the server's back (not a revocation through it) is seen once the process's
    # cache of verified keys forgets the key (LIEBIAN_AUTH_CACHE_SECONDS); the clock's own expiry
    # needs no such step
    service.forget_verified_keys()
    assert client.get("/api/v1/analytics/kpis", headers={"X-API-Key": key2}).status_code == 401

    # a deactivated owner's keys stop at once
    key3 = make_api_key("user", None, username="op")
    assert client.get("/api/v1/campaigns", headers=bearer(key3)).status_code == 200
    assert client.patch("/api/v1/auth/users/op", json={"active": False}, headers=admin).status_code == 200
    assert client.get("/api/v1/campaigns", headers=bearer(key3)).status_code == 401


def test_public_key_only_reaches_front_end_endpoints(store):
    client = _client()
    public = {"X-API-Key": make_api_key("public", None)}
    assert client.get("/api/v1/campaigns", headers=public).status_code == 403
    assert (
        client.get("/api/v1/persons/lookup?id_type=phone&value=13800000000", headers=public).status_code
        == 403
    )
    # ingestion and invite acceptance are reachable (they then validate the body)
    assert client.post("/api/v1/events/batch", json={}, headers=public).status_code == 422
    assert client.post("/api/v1/invites/accept", json={}, headers=public).status_code == 422
    # a public key cannot be given operator scopes
    with session_scope() as s:
        try:
            service.create_api_key(s, name="x", actor="t", kind="public", scopes=["campaign:write"])
        except service.AuthError as exc:
            assert "public key" in exc.message
        else:
            raise AssertionError("a public key accepted an operator scope")


def test_first_admin_bootstrap_one_time_password(data_dir, monkeypatch):
    monkeypatch.setenv("LIEBIAN_BOOTSTRAP_ADMIN", "1")
    from liebian.config import reset_settings_cache

    reset_settings_cache()
    with TestClient(create_app()) as client:
        password = (data_dir / "initial-admin-password").read_text().strip()
        assert oct((data_dir / "initial-admin-password").stat().st_mode)[-3:] == "600"
        r = client.post("/api/v1/auth/login", json={"username": "admin", "password": password})
        assert r.status_code == 200 and r.json()["must_change_password"] is True
    # a second start creates nothing
    with TestClient(create_app()):
        pass
    with session_scope() as s:
        assert [u.username for u in s.scalars(select(User))] == ["admin"]
        service.reset_password(s, "admin", "a brand new password", actor="user:admin")
    assert not (data_dir / "initial-admin-password").exists()


def test_security_headers_body_limit_and_rate_limit(sqlite_store, monkeypatch):
    monkeypatch.setenv("LIEBIAN_MAX_REQUEST_BYTES", "2048")
    monkeypatch.setenv("LIEBIAN_RATE_LIMIT_PER_MINUTE", "5")
    from liebian.auth import deps
    from liebian.config import reset_settings_cache

    reset_settings_cache()
    deps.limiter = deps.RateLimiter()
    client = _client()
    r = client.get("/api/v1/health")
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    assert r.headers["cache-control"] == "no-store"
    admin = bearer(make_api_key("service", "admin"))
    r = client.post(
        "/api/v1/events/batch",
        content=b'{"events": [' + b" " * 4096 + b"]}",
        headers={**admin, "content-type": "application/json"},
    )
    assert r.status_code == 413
    # anonymous clients of the short link are rate-limited per client and route
    codes = [client.get("/i/nosuchcode", follow_redirects=False).status_code for _ in range(7)]
    assert 429 in codes and codes.index(429) == 5
    # keys of operators are not
    assert all(client.get("/api/v1/campaigns", headers=admin).status_code == 200 for _ in range(8))
