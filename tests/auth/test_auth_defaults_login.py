"""Login failures are uniform (unknown user, wrong password, locked and deactivated accounts answer
alike), one client address is throttled on its own, and one address cannot lock an account out.
Over HTTP (JSON login and the console's form), on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import timedelta

from auth_helpers import make_user
from fastapi.testclient import TestClient
from sqlalchemy import update

from liebian.auth import service, throttle
from liebian.auth.models import LoginFailures, User
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.web.app import create_app

ADMIN_PASSWORD = "the admin's long password"


def _client(ip: str) -> TestClient:
    return TestClient(create_app(run_migrations=False), client=(ip, 50000))


def _login(client: TestClient, username: str, password: str):
    return client.post("/api/v1/auth/login", json={"username": username, "password": password})


def _comparable(r) -> tuple:
    return r.status_code, r.json()


def test_unknown_user_wrong_password_locked_and_inactive_answer_the_same(store) -> None:
    make_user("admin", "admin", ADMIN_PASSWORD)
    make_user("gone", "analyst", "a deactivated user's password")
    make_user("held", "analyst", "a locked user's password")
    with session_scope() as s:
        s.execute(update(User).where(User.username == "gone").values(active=False))
        s.execute(
            update(User).where(User.username == "held").values(locked_until=utcnow() + timedelta(minutes=10))
        )
    answers = {
        "unknown": _comparable(_login(_client("192.0.2.1"), "nobody", "whatever it is")),
        "wrong password": _comparable(_login(_client("192.0.2.2"), "admin", "not the password")),
        "deactivated": _comparable(_login(_client("192.0.2.3"), "gone", "a deactivated user's password")),
        "locked, right password": _comparable(
            _login(_client("192.0.2.4"), "held", "a locked user's password")
        ),
    }
    assert len(set(map(repr, answers.values()))) == 1, answers
    assert answers["unknown"][0] == 401 and answers["unknown"][1]["detail"] == "wrong username or password"
    # the console's form answers alike too
    pages = [
        _client("192.0.2.5").post("/login", data={"username": u, "password": p})
        for u, p in (("nobody", "x"), ("admin", "x"), ("held", "a locked user's password"))
    ]
    assert {p.status_code for p in pages} == {401}
    assert len({p.text.replace(u, "") for p, u in zip(pages, ("nobody", "admin", "held"), strict=True)}) == 1


def test_one_address_is_throttled_without_locking_the_admin_out(store) -> None:
    make_user("admin", "admin", ADMIN_PASSWORD)
    attacker = _client("198.51.100.7")
    limit = throttle.ip_limit()
    for _ in range(limit):
        assert _login(attacker, "admin", "guess").status_code == 401
    # the attacker's address is slowed, whatever name it tries next, and is told when to retry
    for name in ("admin", "nobody"):
        r = _login(attacker, name, "guess")
        assert r.status_code == 429 and r.json()["code"] == "throttled"
        assert 0 < int(r.headers["Retry-After"]) <= 15 * 60
    assert _login(attacker, "admin", ADMIN_PASSWORD).status_code == 429  # even the right one, from there
    # the real admin, from elsewhere, still logs in
    r = _login(_client("203.0.113.9"), "admin", ADMIN_PASSWORD)
    assert r.status_code == 200 and r.json()["username"] == "admin"
    with session_scope() as s:
        assert service.get_user(s, "admin").locked_until is None


def test_the_throttle_ends_with_its_window(store) -> None:
    make_user("admin", "admin", ADMIN_PASSWORD)
    attacker = _client("198.51.100.8")
    for _ in range(throttle.ip_limit()):
        _login(attacker, "admin", "guess")
    assert _login(attacker, "admin", ADMIN_PASSWORD).status_code == 429
    with session_scope() as s:  # the window is over (as if 15 minutes had passed)
        s.execute(update(LoginFailures).values(window_start=utcnow() - throttle.window()))
    assert _login(attacker, "admin", ADMIN_PASSWORD).status_code == 200


def test_the_account_locks_only_after_failures_from_several_addresses(store) -> None:
    make_user("admin", "admin", ADMIN_PASSWORD)
    limit = throttle.ip_limit()
    addresses = [f"198.51.100.{i}" for i in range(1, throttle.account_limit() // limit + 1)]
    for ip in addresses:
        client = _client(ip)
        for _ in range(limit):
            assert _login(client, "admin", "guess").status_code == 401
    with session_scope() as s:
        user = service.get_user(s, "admin")
        assert user.locked_until is not None and user.locked_until > utcnow()
    # locked: the right password from a fresh address gets the uniform answer, not a "locked" one
    r = _login(_client("203.0.113.10"), "admin", ADMIN_PASSWORD)
    assert r.status_code == 401 and r.json()["detail"] == "wrong username or password"
