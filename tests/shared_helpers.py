"""Helpers shared by every test directory, under a name no other module has (several test
directories have a conftest.py, so `from conftest import …` is ambiguous)."""

from __future__ import annotations

import socket

from liebian.db.session import session_scope


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_api_key(kind: str = "service", role: str | None = "admin", scopes: list[str] | None = None) -> str:
    """An API key in the current store (see auth.service.create_api_key); returns the key."""
    from liebian.auth.service import create_api_key

    with session_scope() as s:
        key, _ = create_api_key(
            s, name=f"test {kind} {role or ''}", actor="test", kind=kind, role=role, scopes=scopes
        )
    return key
