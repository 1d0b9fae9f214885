"""Helpers shared by the benchmarks: timing, peak memory, a report table."""

from __future__ import annotations

import json
import os
import resource
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Target:
    """One target line of an issue, as measured by a run: `met` None when the run could not judge it
    (a scale below the target's, a part that did not run here)."""

    issue: str  # "#23"
    what: str  # "funnel at 10M events"
    goal: str  # "≤ 1.5× a full scan"
    measured: str  # "1.42× (CPU 1.38×)"
    met: bool | None

    @property
    def verdict(self) -> str:
        return "met" if self.met else "not judged" if self.met is None else "**not met**"


@dataclass
class Report:
    """A benchmark's figures. `targets` is the targets convention of the suite: a module's `run()`
    adds one `Target` per issue target it measures (`report.target(...)`); `python -m benchmarks`
    prints them under the table and keeps the summary at the top of docs/benchmarks.md."""

    title: str
    scale: str = ""
    columns: list[str] = field(default_factory=list)
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)

    def add(self, *values: Any) -> None:
        self.rows.append(list(values))

    def target(self, what: str, goal: str, measured: str, met: bool | None, issue: str = "#23") -> None:
        self.targets.append(Target(issue, what, goal, measured, met))

    def markdown(self) -> str:
        lines = ["| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        for row in self.rows:
            lines.append("| " + " | ".join(_fmt(v) for v in row) + " |")
        lines.extend(f"\n{note}" for note in self.notes)
        if self.targets:
            lines.append("\n**Targets:**\n")
            lines.extend(
                f"- {t.issue} {t.what}: {t.goal}; measured {t.measured} — {t.verdict}" for t in self.targets
            )
        return "\n".join(lines)


def postgres_url() -> str:
    """The PostgreSQL server the store benchmarks also run against ("" = SQLite only):
    LIEBIAN_BENCH_POSTGRES_URL, else the tests' LIEBIAN_TEST_POSTGRES_URL (set by .ci/run)."""
    return os.environ.get("LIEBIAN_BENCH_POSTGRES_URL") or os.environ.get("LIEBIAN_TEST_POSTGRES_URL") or ""


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.3f}" if value < 100 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of `repeat` runs (the machines are shared: the minimum is the least noisy)."""
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def peak_rss_mib() -> float:
    """Peak resident memory of this process (and finished children) in MiB.

    Our own peak is VmHWM, which belongs to this program's memory map: ru_maxrss would also carry
    the peak of the process this one was forked from, across exec (Linux), so a benchmark started
    by a suite that had grown to 3 GiB would report 3 GiB."""
    own = peak_rss_of_mib(os.getpid())
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    return max(own, children)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_of_mib(pid: int) -> float:
    """Peak resident memory (VmHWM) of a running process in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve(app: str, env: dict, timeout: float = 90) -> tuple[subprocess.Popen, str]:
    """`uvicorn APP` (one worker) in a child process on a free port; returns it and its base URL."""
    import httpx

    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "uvicorn", app, "--host", "127.0.0.1", "--port", str(port),
         "--log-level", "warning", "--no-access-log"],
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/docs", timeout=1)
            return proc, url
        except httpx.HTTPError:
            if proc.poll() is not None:
                break
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{app} did not start")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def measure_in_child(module: str, scale: str) -> dict:
    """Run `python -m module measure SCALE` in a fresh interpreter and return the JSON it prints last:
    peak memory per scale, no caches warmed by an earlier scale."""
    root = Path(__file__).resolve().parent.parent
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(root), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(
        [sys.executable, "-m", module, "measure", scale], capture_output=True, text=True, env=env, cwd=root
    )
    if done.returncode:
        raise RuntimeError(f"{module} measure {scale} failed:\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ratio_table(rows: list[tuple[str, list[float]]], scales: list[str], sizes: dict[str, int]) -> str:
    """Markdown: a time per scale and the ratio between consecutive scales (beside the ratio of sizes)."""
    head = ["measure", *[f"{s}" for s in scales]]
    head += [f"{b} / {a} (size ×{sizes[b] / sizes[a]:.3g})" for a, b in zip(scales, scales[1:], strict=False)]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for name, values in rows:
        cells = [name, *[_fmt(float(v)) for v in values]]
        cells += [f"{b / a:.2f}" for a, b in zip(values, values[1:], strict=False)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def faster_than_data(
    rows: list[tuple[str, list[float]]], scales: list[str], sizes: dict[str, int], slack: float = 1.15
) -> list[str]:
    """The steps where a measure grew more than `slack` × the data: "name (3M→10M: ×4.41 for ×3.33)"."""
    found = []
    for name, values in rows:
        for k in range(1, len(values)):
            (a, va), (b, vb) = (scales[k - 1], values[k - 1]), (scales[k], values[k])
            size = sizes[b] / sizes[a]
            if va > 0 and vb / va > slack * size:
                found.append(f"{name} ({a}→{b}: ×{vb / va:.2f} for ×{size:.3g} the data)")
    return found
