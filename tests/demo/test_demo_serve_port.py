"""`liebian demo --serve --port N` serves the console on N (else on LIEBIAN_PORT, else 8000)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from liebian.config import Settings
from shared_helpers import free_port

CLI = "from liebian.cli import app; app()"


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
    return env | {"LIEBIAN_DATA_DIR": str(data_dir), "LIEBIAN_SCHEDULER_ENABLED": "0"} | extra


def _wait_for_health(port: int, proc: subprocess.Popen, timeout: float = 240) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"liebian demo exited with {proc.returncode}: {proc.stderr.read()[-2000:]!r}"
            )
        try:
            r = httpx.get(f"http://127.0.0.1:{port}/api/v1/health", timeout=1)
            if r.status_code == 200:
                return r.json()
        except httpx.HTTPError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"nothing answered on port {port} within {timeout:.0f} s")


def test_demo_serves_on_the_port_it_is_given_over_liebian_port(tmp_path: Path) -> None:
    chosen, from_env = free_port(), free_port()
    command = [
        sys.executable,
        "-c",
        CLI,
        "demo",
        "--seed",
        "11",  # the brand of the suite's demo fixture
        "--persons",
        "5000",
        "--serve",
        "--port",
        str(chosen),
    ]
    proc = subprocess.Popen(
        command,
        env=_env(tmp_path / "data", LIEBIAN_PORT=str(from_env)),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        assert _wait_for_health(chosen, proc)["status"] == "ok"
        # the flag wins over LIEBIAN_PORT: nothing listens there
        try:
            httpx.get(f"http://127.0.0.1:{from_env}/api/v1/health", timeout=1)
            raise AssertionError("the server also answered on LIEBIAN_PORT")
        except httpx.ConnectError:
            pass
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_liebian_port_is_the_default_port(monkeypatch) -> None:
    monkeypatch.setenv("LIEBIAN_PORT", "8123")
    assert Settings().port == 8123
    monkeypatch.delenv("LIEBIAN_PORT")
    assert Settings().port == 8000
