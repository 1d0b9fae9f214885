"""Start-up: `liebian --help`, one domain's `--help`, the ASGI app's import (issue #17: < 1 s), a CLI
analysis on a 1M-event warehouse and the server's time to ready (issue #23).

Each command runs in a fresh interpreter, side by side with its floors — `python -c pass` and
`python -c "import fastapi"` (no FastAPI app starts faster than its framework imports) — in rounds
(A B C … A B C …), so that a machine whose speed drifts during the run moves every row alike. The
table gives the median wall time and the median CPU time (user + system of the child, from the
operating system: less sensitive to what else a shared machine runs) and both as a multiple of the
FastAPI floor. Byte-code is cached as an installed package has it (a warm-up round writes it into a
temporary PYTHONPYCACHEPREFIX, leaving the source tree alone). `--scale quick` runs 2 rounds instead
of 7. With `BENCH_STARTUP_BASELINE=<another tree's src directory>` (e.g. `git archive` of the commit
before a change) the app's import from that tree is measured in the same rounds, for a before/after.

The CLI analysis (`liebian analyze funnel`) runs end to end on a warehouse of 1M events (the analytics
benchmark's synthetic data, 100k with `--scale quick`) made before the rounds: as a repeated command
runs it, its SQL kept on disk by an earlier call (analytics/compiled.py), and as the first call of
its shape, the kept SQL removed before each run (built and compiled with Ibis, then kept). The server's time to
ready is from starting `liebian serve` to the first answer of /api/v1/health, on the same data
directory (its first start, which creates the store, and then restarts, median), after a warm-up
start on another data directory (byte-code, as an installed package has it).
"""

from __future__ import annotations

import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from benchmarks.common import Report, cpu_seconds, free_port, stop
from liebian.analytics.compiled import CACHE_DIR

ROUNDS = {"": 7, "quick": 2}
LIMIT_S = 1.0
WAREHOUSE_EVENTS = {"": 1_000_000, "quick": 100_000}
ANALYSIS = "liebian analyze funnel"
ANALYSIS_FIRST = "liebian analyze funnel, first call of its shape (no kept SQL)"
# issue #23's limits, seconds of wall time
HELP_LIMIT_S, ANALYSIS_LIMIT_S, READY_LIMIT_S = 0.5, 1.5, 3.0
READY_WAIT_S = 300  # a shared machine under heavy load has taken 90 s for a first start
BASELINE_ENV = "BENCH_STARTUP_BASELINE"


def _liebian() -> list[str]:
    """The `liebian` script beside this Python, as users start it; else `python -m liebian.cli`."""
    script = Path(sys.executable).with_name("liebian")
    return [str(script)] if script.exists() else [sys.executable, "-m", "liebian.cli"]


def commands() -> list[tuple[str, list[str]]]:
    python = sys.executable
    return [
        ("floor: python -c pass", [python, "-c", "pass"]),
        ("floor: python -c 'import fastapi'", [python, "-c", "import fastapi"]),
        ("liebian --help", [*_liebian(), "--help"]),
        ("liebian campaign --help", [*_liebian(), "campaign", "--help"]),
        ("python -c 'import liebian.web.asgi'", [python, "-c", "import liebian.web.asgi"]),
        (ANALYSIS_FIRST, [*_liebian(), "analyze", "funnel", "--format", "json"]),
        (ANALYSIS, [*_liebian(), "analyze", "funnel", "--format", "json"]),
        *_baseline(python),
    ]


def _baseline(python: str) -> list[tuple[str, list[str]]]:
    """The app's import from the tree named by BENCH_STARTUP_BASELINE (`env` sets its PYTHONPATH and
    replaces itself with Python, so the figures are Python's own)."""
    src = os.environ.get(BASELINE_ENV)
    if not src:
        return []
    return [
        (
            "before: python -c 'import liebian.web.asgi'",
            ["env", f"PYTHONPATH={src}", python, "-c", "import liebian.web.asgi"],
        )
    ]


def _run(command: list[str], env: dict[str, str], label: str = "") -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of `command` to its exit."""
    if label == ANALYSIS_FIRST:  # the SQL the previous run kept, removed (not timed)
        shutil.rmtree(Path(env["LIEBIAN_DATA_DIR"]) / CACHE_DIR, ignore_errors=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def _warehouse(data: Path, events: int) -> None:
    """The analytics benchmark's synthetic warehouse of `events` events, where the CLI looks for it."""
    import duckdb

    from benchmarks.bench_analytics import generate

    data.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(data / "warehouse.duckdb"))
    try:
        generate(con, events)
    finally:
        con.close()


def _ready_s(env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds from starting `liebian serve` to the first answer of /api/v1/health, and the CPU
    seconds the server had used by then (less sensitive to a busy machine)."""
    port = free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [*_liebian(), "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with httpx.Client(timeout=2) as client:  # one client: making one per poll costs the server CPU
            while time.perf_counter() - started < READY_WAIT_S:
                try:
                    if client.get(f"http://127.0.0.1:{port}/api/v1/health").status_code == 200:
                        return time.perf_counter() - started, cpu_seconds(proc.pid)
                except httpx.HTTPError:
                    if proc.poll() is not None:
                        break
                time.sleep(0.05)
        code = proc.poll()
        why = f"exited with status {code}" if code is not None else f"did not answer within {READY_WAIT_S} s"
        raise RuntimeError(f"liebian serve {why} (/api/v1/health)")
    finally:
        stop(proc)


def run(scale: str) -> Report:
    rounds = ROUNDS.get(scale, ROUNDS[""])
    todo = commands()
    events = WAREHOUSE_EVENTS.get(scale, WAREHOUSE_EVENTS[""])
    with tempfile.TemporaryDirectory(prefix="liebian-bench-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env |= {
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
            "LIEBIAN_DATA_DIR": str(Path(tmp) / "data"),
        }
        env |= {"COLUMNS": "100"}  # the help's width: the same page whatever the terminal
        _warehouse(Path(tmp) / "data", events)
        # the server on a data directory of its own: its first start makes an administrator, and the
        # CLI then asks who runs it
        serve_env = env | {"LIEBIAN_DATA_DIR": str(Path(tmp) / "serve")}
        for label, command in todo:  # warm-up: byte-code written, files in the page cache
            _run(command, env, label)
        # and the server's own modules (uvicorn, the routers, Alembic's migration scripts), on a data
        # directory of its own: the first start below is a first start, not a first compile
        _ready_s(env | {"LIEBIAN_DATA_DIR": str(Path(tmp) / "warm-up")})
        ready = [_ready_s(serve_env)]  # the first start creates the store
        times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in todo}
        for _ in range(rounds):
            for label, command in todo:
                times[label].append(_run(command, env, label))
        ready += [_ready_s(serve_env) for _ in range(rounds)]
    wall = {label: statistics.median(w for w, _ in runs) for label, runs in times.items()}
    cpu = {label: statistics.median(c for _, c in runs) for label, runs in times.items()}
    floor = todo[1][0]
    report = Report(
        title="Start-up: the CLI and the ASGI app",
        scale=scale,
        columns=[
            "command",
            "wall s (median)",
            "cpu s (median)",
            "wall × fastapi floor",
            "cpu × fastapi floor",
        ],
    )
    for label, _command in todo:
        report.add(
            label,
            wall[label],
            cpu[label],
            f"{wall[label] / wall[floor]:.2f}",
            f"{cpu[label] / cpu[floor]:.2f}",
        )
    restart = statistics.median(w for w, _ in ready[1:])
    restart_cpu = statistics.median(c for _, c in ready[1:])
    report.add(
        "liebian serve: start to /api/v1/health answered (first start)", ready[0][0], ready[0][1], "", ""
    )
    report.add("liebian serve: start to /api/v1/health answered (restarts)", restart, restart_cpu, "", "")
    size = f"{events / 1e6:g}M" if events >= 1_000_000 else f"{events // 1000}k"
    analysis = f"{ANALYSIS} on a {size}-event warehouse, end to end"
    judged = events == WAREHOUSE_EVENTS[""]
    app_import = "python -c 'import liebian.web.asgi'"
    report.target(
        "importing the ASGI app (`liebian.web.asgi:app`)",
        f"< {LIMIT_S:.0f} s",
        f"{wall[app_import]:.2f} s wall, {cpu[app_import]:.2f} s CPU "
        f"({cpu[app_import] / cpu[floor]:.2f} × `import fastapi`, {wall[floor]:.2f} s wall)",
        wall[app_import] < LIMIT_S,
        issue="#17",
    )
    report.target(
        "`liebian --help`",
        f"≤ {HELP_LIMIT_S} s",
        f"{wall['liebian --help']:.2f} s",
        wall["liebian --help"] <= HELP_LIMIT_S,
    )
    report.target(
        "a CLI analysis on a 1M-event warehouse", f"≤ {ANALYSIS_LIMIT_S} s end to end",
        f"{wall[ANALYSIS]:.2f} s, CPU {cpu[ANALYSIS]:.2f} s ({analysis}, its SQL kept by an earlier call); "
        f"the first call of its shape {wall[ANALYSIS_FIRST]:.2f} s, CPU {cpu[ANALYSIS_FIRST]:.2f} s",
        wall[ANALYSIS] <= ANALYSIS_LIMIT_S if judged else None,
    )  # fmt: skip
    report.target(
        "the server ready after start", f"≤ {READY_LIMIT_S} s",
        f"{ready[0][0]:.2f} s first start, {restart:.2f} s restarts (CPU {ready[0][1]:.2f} s, {restart_cpu:.2f} s)",
        max(ready[0][0], restart) <= READY_LIMIT_S,
    )  # fmt: skip
    report.notes.append(
        f"{ANALYSIS}: {analysis}, as a repeated command runs it: the funnel's compiled SQL kept on disk "
        "by an earlier call (under the data directory, keyed by the analysis's shape, the warehouse's "
        "schema and the code that writes the SQL; analytics/compiled.py) runs on DuckDB's connection "
        "without Ibis, PyArrow or pandas. The first call of a shape (the kept SQL removed before each "
        "run) builds and compiles it with Ibis, then keeps it. Server: `liebian serve` (one worker, SQLite store) on the same data "
        "directory, timed from the process start to the first 200 of /api/v1/health."
    )
    report.notes.append(
        f"{rounds} rounds after a warm-up; 1-minute load average at the end {os.getloadavg()[0]:.1f} "
        f"({os.cpu_count()} cores): on a busy machine the wall times stretch, the CPU times and the "
        f"ratios to the floor much less. Target: `liebian --help` and the app's import under "
        f"{LIMIT_S:.0f} s wall on an idle machine."
    )
    return report
