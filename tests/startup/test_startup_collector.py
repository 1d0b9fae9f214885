"""Start-up work left out: the cyclic collector paused while modules are imported (liebian/lazy.py
collector_paused) and running again afterwards; PostgreSQL's dialect not imported on SQLite."""

from __future__ import annotations

import gc
import json
import sys
import threading
from pathlib import Path

from liebian.lazy import collector_paused, lazy_import
from shared_helpers import fresh_python


def test_a_deferred_import_runs_with_the_collector_paused_and_resumes_it(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "startup_probe.py").write_text("import gc\nCOLLECTING = gc.isenabled()\n", encoding="utf-8")
    monkeypatch.syspath_prepend(str(tmp_path))
    probe = lazy_import("startup_probe")
    assert gc.isenabled()
    assert probe.COLLECTING is False  # the module's import ran with the collector paused
    assert gc.isenabled()
    sys.modules.pop("startup_probe", None)


def test_nested_and_concurrent_pauses_resume_once_the_last_ends() -> None:
    inner_started, outer_done = threading.Event(), threading.Event()
    seen: list[bool] = []

    def other_thread() -> None:
        with collector_paused():
            inner_started.set()
            outer_done.wait(10)
            seen.append(gc.isenabled())  # the first thread's pause ended, this one's has not
        seen.append(gc.isenabled())

    with collector_paused():
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()  # the inner block does not resume it early
        thread = threading.Thread(target=other_thread)
        thread.start()
        inner_started.wait(10)
    assert not gc.isenabled()  # the other thread still imports
    outer_done.set()
    thread.join(10)
    assert seen == [False, True] and gc.isenabled()


def test_a_collector_the_caller_paused_stays_paused() -> None:
    """web/asgi.py pauses it for the app's import itself: a deferred import inside does not resume it."""
    gc.disable()
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()


def test_a_cli_command_runs_with_the_collector_running(data_dir: Path) -> None:
    """The pauses cover the command's start-up (its module, settings, the store, the guard), not the
    command's own work: a long import or `serve` collects as usual."""
    script = (
        "import gc, json, sys\nfrom liebian.analytics import cli as acli\n"
        "def probe():\n    print(json.dumps({'collecting': gc.isenabled()}))\n"
        "acli.app.command('gc-probe')(probe)\n"
        "from liebian.cli import app\nsys.argv = ['liebian', 'analyze', 'gc-probe']\napp()"
    )
    lines = fresh_python(script, data_dir)
    assert json.loads(lines[-1]) == {"collecting": True}


def test_the_app_and_the_cli_guard_do_not_import_postgresqls_dialect_on_sqlite(tmp_path: Path) -> None:
    script = (
        "import sys, json\nimport liebian.web.asgi\nfrom liebian.auth import service, throttle\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('sqlalchemy.dialects.'))))"
    )
    lines = fresh_python(script, tmp_path / "data")
    dialects = json.loads(lines[-1])
    assert not [d for d in dialects if d.startswith("sqlalchemy.dialects.postgresql")], dialects
