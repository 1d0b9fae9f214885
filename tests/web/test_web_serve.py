"""`liebian serve`: a thin command over liebian.serving, which hands uvicorn the app by its import
string (so that neither it nor the demo imports the web layer)."""

from __future__ import annotations

import subprocess
import sys

import uvicorn
from typer.testing import CliRunner

from liebian.cli import app


def test_serve_runs_uvicorn_on_the_web_app_with_the_options(tmp_path, monkeypatch) -> None:
    runs: list[tuple[str, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: runs.append((target, options)))
    command = ["serve", "--port", "8123", "--workers", "2", "--healthcheck-timeout", "45"]
    res = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "d"), *command])
    assert res.exit_code == 0, res.output
    assert "http://127.0.0.1:8123/" in res.output
    assert [
        (target, options["host"], options["port"], options["workers"], options["timeout_worker_healthcheck"])
        for target, options in runs
    ] == [("liebian.web.asgi:app", "127.0.0.1", 8123, 2, 45)]


def test_importing_the_serving_module_does_not_import_the_web_layer() -> None:
    probe = (
        "import sys, liebian.serving; print(sorted(m for m in sys.modules if m.startswith('liebian.web')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
