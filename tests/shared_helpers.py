"""Helpers shared by every test directory, under a name no other module has (several test
directories have a conftest.py, so `from conftest import …` is ambiguous)."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO

import httpx

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


@contextmanager
def uvicorn_server(
    env: dict[str, str], *extra: str, timeout: float = 90, output: IO | None = None
) -> Iterator[tuple[subprocess.Popen, str]]:
    """`uvicorn liebian.web.asgi:app` in a child process on a free loopback port (with `extra`
    arguments, e.g. --workers 4), once /api/v1/health answers; stopped on exit. Yields (process, URL)."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", "liebian.web.asgi:app", "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", *extra],
        env=env, stdout=output, stderr=subprocess.STDOUT if output else None,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if httpx.get(f"{url}/api/v1/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the server did not start within {timeout:.0f} s (exit code {proc.poll()})"
                )
            time.sleep(0.2)
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
