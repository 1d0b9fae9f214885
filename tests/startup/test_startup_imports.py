"""The app's import leaves the heavy libraries for first use, and liebian/lazy.py's stand-ins behave
like the modules they stand for."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

from test_startup_cli import HEAVY

from liebian.lazy import lazy_import
from shared_helpers import fresh_python


def test_the_app_imports_no_heavy_library(tmp_path: Path) -> None:
    """What uvicorn's workers import before they answer: the app without its routers' domains (they
    load on the route table's first read, web/lazy_routers.py); once loaded, still no heavy library."""
    script = (
        "import sys, json\nimport liebian.web.asgi as asgi\nprint(json.dumps(sorted(sys.modules)))\n"
        "from fastapi.routing import iter_route_contexts\n"
        "print(len(list(iter_route_contexts(asgi.app.routes))))\nprint(json.dumps(sorted(sys.modules)))"
    )
    lines = fresh_python(script, tmp_path / "data")
    at_import, routes, after = lines[-3:]
    imported = set(json.loads(at_import))
    domains = sorted(
        m
        for m in imported
        if m.startswith("liebian.") and m.count(".") == 2 and m.endswith((".api", ".service", ".jobs"))
    )
    assert domains == ["liebian.auth.service"], domains  # the gate's; the routers' and jobs' wait
    assert "liebian.bootstrap" not in imported and "liebian.web.console" not in imported
    loaded = set(json.loads(after))
    assert int(routes) > 300
    assert "liebian.campaigns.api" in loaded and "liebian.fraud.graph" in loaded  # the routers' domains
    for modules in (imported, loaded):
        heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
        assert not heavy, f"importing the app imported {heavy}"


def test_the_app_is_built_with_the_collector_paused_then_resumed(tmp_path: Path) -> None:
    """web/asgi.py pauses the cyclic collector while the app is built (start-up time): afterwards it
    runs again, the app's objects sit in the permanent generation, and the CLI-only libraries (Typer,
    Rich's tables and progress bars) were not imported."""
    script = (
        "import gc, sys, json\nimport liebian.web.asgi as asgi\n"
        "print(json.dumps([gc.isenabled(), gc.get_freeze_count(), type(asgi.app).__name__,"
        " sorted(m for m in sys.modules if m in ('typer', 'rich.table', 'rich.progress')),"
        " gc.get_threshold()[0], asgi.app.state.freeze_after_start]))"
    )
    lines = fresh_python(script, tmp_path / "data")
    enabled, frozen, app_type, cli_only, young, freezes_routers = json.loads(lines[-1])
    assert enabled is True and app_type == "FastAPI"
    assert frozen > 10_000  # the schemas, tables and routes built at import
    # a worker collects its young objects less often than CPython's default (700), and freezes the
    # routers it loads after the start (issue #23: the referral loop's pauses)
    assert young >= 5_000 and freezes_routers is True
    assert cli_only == []


def test_first_use_puts_the_module_in_place_of_the_stand_in() -> None:
    namespace: dict = {}
    exec("from liebian.lazy import lazy_import\ncolorsys = lazy_import('colorsys')", namespace)
    stand_in = namespace["colorsys"]
    assert stand_in is not sys.modules.get("colorsys")
    assert repr(stand_in) == "<lazy module 'colorsys'>"
    assert stand_in.rgb_to_hsv(1.0, 0.0, 0.0) == (0.0, 1.0, 1.0)
    import colorsys

    assert namespace["colorsys"] is colorsys  # later uses in that module go straight to it
    assert stand_in.hls_to_rgb is colorsys.hls_to_rgb  # a stray reference still works
    assert "rgb_to_yiq" in dir(stand_in)


def test_a_submodule_and_a_missing_attribute() -> None:
    parsers = lazy_import("email.parser")
    assert parsers.Parser.__module__ == "email.parser"
    try:
        parsers.no_such_thing  # noqa: B018
    except AttributeError:
        pass
    else:
        raise AssertionError("a missing attribute must raise AttributeError")


def test_threads_using_a_stand_in_at_once_all_see_the_whole_module(tmp_path: Path, monkeypatch) -> None:
    """The first use from several threads at once (the scheduler, a flusher, the thread pool): each
    waits for the import to finish instead of seeing a half-executed module."""
    (tmp_path / "slow_to_import.py").write_text("import time\ntime.sleep(0.3)\nVALUE = 42\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delitem(sys.modules, "slow_to_import", raising=False)
    slow = lazy_import("slow_to_import")
    start = threading.Barrier(8)
    results: list[object] = []

    def use() -> None:
        start.wait()
        try:
            results.append(slow.VALUE)
        except AttributeError as exc:
            results.append(exc)

    threads = [threading.Thread(target=use) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [42] * 8
    sys.modules.pop("slow_to_import", None)


def _package(root: Path, name: str, init: str) -> None:
    (root / name).mkdir()
    (root / name / "__init__.py").write_text(init)
    for sub in ("alpha", "beta"):
        (root / name / f"{sub}.py").write_text(f"class {sub.title()}Compiler:\n    pass\n")


def test_a_deferred_package_imports_a_submodule_when_one_of_its_names_is_used(tmp_path: Path) -> None:
    """`defer_package` (Ibis's compilers: an analysis imports its engine's only): the package's
    names and submodules as before, each submodule imported on first use; an __init__ that does
    more than re-export runs as usual."""
    reexports = (
        '"""Doc."""\nfrom __future__ import annotations\n__all__ = ["AlphaCompiler", "BetaCompiler"]\n'
        "from deferpkg.alpha import AlphaCompiler\nfrom deferpkg.beta import BetaCompiler\n"
    )
    _package(tmp_path, "deferpkg", reexports)
    _package(tmp_path, "busypkg", reexports.replace("deferpkg", "busypkg") + "LOADED = True\n")
    script = (
        "import sys\nfrom liebian.lazy import defer_package\n"
        "defer_package('deferpkg'); defer_package('busypkg')\n"
        "import deferpkg, busypkg\n"
        "print(sorted(m for m in sys.modules if m.startswith('deferpkg.')))\n"
        "print(deferpkg.BetaCompiler.__module__, deferpkg.alpha.AlphaCompiler.__name__)\n"
        "from deferpkg.beta import BetaCompiler\nprint(BetaCompiler is deferpkg.BetaCompiler)\n"
        "print(sorted(deferpkg.__all__), hasattr(deferpkg, 'gamma'), busypkg.LOADED)\n"
        "print(sorted(m for m in sys.modules if m.startswith('busypkg.')))\n"
    )
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), *sys.path]))
    lines = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, env=env
    ).stdout.splitlines()
    assert lines == [
        "[]",
        "deferpkg.beta AlphaCompiler",
        "True",
        "['AlphaCompiler', 'BetaCompiler'] False True",
        "['busypkg.alpha', 'busypkg.beta']",
    ]


def test_an_analysis_imports_only_its_engines_sql_compiler(tmp_path: Path) -> None:
    script = (
        "import sys\nfrom liebian.engine.backend import analytics_backend\n"
        "with analytics_backend('duckdb') as backend:\n"
        "    backend.table('events').count().execute()\n"
        "print(sorted(m.rsplit('.', 1)[1] for m in sys.modules\n"
        "             if m.startswith('ibis.backends.sql.compilers.')))"
    )
    lines = fresh_python(script, tmp_path / "data")
    assert lines[-1] == "['_compat', 'base', 'duckdb']"
