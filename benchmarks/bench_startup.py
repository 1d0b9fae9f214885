"""Start-up: `liebian --help`, one domain's `--help` and the ASGI app's import (issue #17: < 1 s).

Each command runs in a fresh interpreter, side by side with its floors — `python -c pass` and
`python -c "import fastapi"` (no FastAPI app starts faster than its framework imports) — in rounds
(A B C … A B C …), so that a machine whose speed drifts during the run moves every row alike. The
table gives the median wall time and the median CPU time (user + system of the child, from the
operating system: less sensitive to what else a shared machine runs) and both as a multiple of the
FastAPI floor. Byte-code is cached as an installed package has it (a warm-up round writes it into a
temporary PYTHONPYCACHEPREFIX, leaving the source tree alone). `--scale quick` runs 2 rounds instead
of 7.
"""

from __future__ import annotations

import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report

ROUNDS = {"": 7, "quick": 2}
LIMIT_S = 1.0


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
    ]


def _run(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one run of `command` to its exit."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    subprocess.run(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run(scale: str) -> Report:
    rounds = ROUNDS.get(scale, ROUNDS[""])
    todo = commands()
    with tempfile.TemporaryDirectory(prefix="liebian-bench-startup-") as tmp:
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env |= {
            "PYTHONPYCACHEPREFIX": str(Path(tmp) / "pycache"),
            "LIEBIAN_DATA_DIR": str(Path(tmp) / "data"),
        }
        env |= {"COLUMNS": "100"}  # the help's width: the same page whatever the terminal
        for _label, command in todo:  # warm-up: byte-code written, files in the page cache
            _run(command, env)
        times: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in todo}
        for _ in range(rounds):
            for label, command in todo:
                times[label].append(_run(command, env))
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
    report.notes.append(
        f"{rounds} rounds after a warm-up; 1-minute load average at the end {os.getloadavg()[0]:.1f} "
        f"({os.cpu_count()} cores): on a busy machine the wall times stretch, the CPU times and the "
        f"ratios to the floor much less. Target: `liebian --help` and the app's import under "
        f"{LIMIT_S:.0f} s wall on an idle machine."
    )
    return report
