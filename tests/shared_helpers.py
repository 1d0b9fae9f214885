"""Helpers shared by every test directory, under a name no other module has (several test
directories have a conftest.py, so `from conftest import …` is ambiguous)."""

from __future__ import annotations

import csv
import io
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

import httpx

from liebian.db.session import session_scope
from liebian.privacy import watermark


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fresh_python(script: str, data_dir: Path) -> list[str]:
    """Run `script` in a new interpreter on its own data directory (SQLite, the default store), as a
    command or a worker starts; its output lines (it must succeed: its stderr is shown if not)."""
    env = dict(os.environ, LIEBIAN_DATA_DIR=str(data_dir))
    env.pop("LIEBIAN_DATABASE_URL", None)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    return out.stdout.splitlines()


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
            time.sleep(0.05)  # a refused connection costs little: poll often
        yield proc, url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()


def export_csv(content: bytes | str) -> list[list[str]]:
    """The header and rows of a watermarked CSV export (privacy/watermark.py) as a reader of the
    data sees them: the footer row and the last column (the invisible mark) left out."""
    text = content.decode("utf-8-sig") if isinstance(content, bytes) else content.lstrip("\ufeff")
    return [row[:-1] for row in csv.reader(io.StringIO(text)) if row and not watermark.is_footer(row)]


def export_records(content: bytes | str) -> list[dict[str, str]]:
    """`export_csv` as one dict per row, keyed by the header."""
    header, *rows = export_csv(content)
    return [dict(zip(header, row, strict=True)) for row in rows]


def export_lines(content: bytes | str) -> list[str]:
    """`export_csv` written back as CSV lines (header first), for checks on the text of a row."""
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows(export_csv(content))
    return out.getvalue().splitlines()


def export_sheet(ws) -> list[list]:
    """The rows of a sheet of a watermarked XLSX export, header first: the footer row and the
    hidden last column (the mark) left out."""
    rows = [list(row) for row in ws.iter_rows(values_only=True)]
    return [row[:-1] for row in rows if any(v is not None for v in row) and not watermark.is_footer(row)]
