"""Principals for the security tests, made through the real service (same as conftest's fixtures)."""

from __future__ import annotations

from liebian.auth.service import create_api_key, create_user
from liebian.db.session import session_scope


def make_api_key(
    kind: str = "service", role: str | None = "admin", scopes: list[str] | None = None, **kw
) -> str:
    with session_scope() as s:
        key, _ = create_api_key(
            s, name=f"test {kind} {role or ''}", actor="test", kind=kind, role=role, scopes=scopes, **kw
        )
    return key


def make_user(username: str, role: str, password: str = "correct horse battery") -> str:
    with session_scope() as s:
        create_user(s, username, password, role, actor="test")
    return password


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}
