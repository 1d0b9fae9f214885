"""The gate caches keys it verified (auth.service.verified_key_principal): revocations must still
take effect — at once in the process that revokes, within LIEBIAN_AUTH_CACHE_SECONDS elsewhere."""

from __future__ import annotations

import time

import httpx
import pytest
from auth_helpers import bearer, make_api_key, make_user

from liebian.auth import service
from liebian.db.session import session_scope


@pytest.fixture
def short_cache_server(store, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> str:
    monkeypatch.setenv("LIEBIAN_AUTH_CACHE_SECONDS", "1")
    return request.getfixturevalue("live_server")


def test_revoking_through_the_server_stops_the_cached_key_at_once(live_server: str) -> None:
    admin = make_api_key("service", "admin")
    key = make_api_key("service", "operator")
    key_id = "_".join(key.split("_")[:2])
    with httpx.Client(base_url=live_server, timeout=30) as c:
        for _ in range(3):  # verified once, then served from the cache
            assert c.get("/api/v1/campaigns", headers=bearer(key)).status_code == 200
        assert c.delete(f"/api/v1/auth/keys/{key_id}", headers=bearer(admin)).status_code == 200
        r = c.get("/api/v1/campaigns", headers=bearer(key))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]
        # deactivating a user stops the keys it owns at once as well
        make_user("dora", "operator", "dora's long password")
        own = make_api_key("user", None, username="dora")
        assert c.get("/api/v1/campaigns", headers=bearer(own)).status_code == 200
        assert (
            c.patch("/api/v1/auth/users/dora", json={"active": False}, headers=bearer(admin)).status_code
            == 200
        )
        assert c.get("/api/v1/campaigns", headers=bearer(own)).status_code == 401


def test_a_key_revoked_by_another_process_stops_within_the_cache_time(short_cache_server: str) -> None:
    key = make_api_key("service", "operator")
    key_id = "_".join(key.split("_")[:2])
    with httpx.Client(base_url=short_cache_server, timeout=30) as c:
        assert c.get("/api/v1/campaigns", headers=bearer(key)).status_code == 200
        # the CLI (`liebian auth revoke-key`) revokes in its own process, as here
        with session_scope() as s:
            service.revoke_api_key(s, key_id, actor="test")
        deadline = time.monotonic() + 30  # a generous bound; the setting says 1 s
        while c.get("/api/v1/campaigns", headers=bearer(key)).status_code == 200:
            assert time.monotonic() < deadline, "the revoked key was still accepted after 30 s"
            time.sleep(0.2)
        r = c.get("/api/v1/campaigns", headers=bearer(key))
        assert r.status_code == 401 and "revoked" in r.json()["detail"]


def test_cache_off_checks_the_store_every_time(sqlite_store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIEBIAN_AUTH_CACHE_SECONDS", "0")
    from liebian.config import reset_settings_cache

    reset_settings_cache()
    key = make_api_key("service", "operator")
    assert service.verified_key_principal(key) is not None
    with session_scope() as s:
        service.revoke_api_key(s, "_".join(key.split("_")[:2]), actor="test")
    # nothing was kept, and the revoking process forgot anyway: refused
    assert service.verified_key_principal(key) is None
