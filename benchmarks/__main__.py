"""Run benchmarks and record their figures in docs/benchmarks.md.

Each module `benchmarks/bench_<name>.py` defines `run(scale: str) -> Report`; its section of
docs/benchmarks.md (between `<!-- bench:<name> -->` markers) is replaced by the new figures, so
one benchmark can be re-run without losing the others.
"""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import platform
import re
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import benchmarks
from benchmarks.common import Report
from liebian.bootstrap import bootstrap

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine_facts() -> str:
    mem = ""
    try:
        with open("/proc/meminfo") as fh:
            mem = f"{int(fh.readline().split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {mem}, Python {platform.python_version()}"


def record(name: str, report: Report) -> None:
    DOC.parent.mkdir(parents=True, exist_ok=True)
    text = DOC.read_text(encoding="utf-8") if DOC.exists() else "# Benchmarks\n\nFigures from `make bench`.\n"
    stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    command = (
        "make bench"
        if name == "suite"
        else f"python -m benchmarks {name}{' --scale ' + report.scale if report.scale else ''}"
    )
    section = (
        f"<!-- bench:{name} -->\n## {report.title}\n\n"
        f"Measured {stamp} on {machine_facts()}. Command: `{command}`.\n\n{report.markdown()}\n"
        f"<!-- /bench:{name} -->"
    )
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = (
        pattern.sub(lambda _m: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    DOC.write_text(text, encoding="utf-8")


def main() -> None:
    available = sorted(
        m.name.removeprefix("bench_")
        for m in pkgutil.iter_modules(benchmarks.__path__)
        if m.name.startswith("bench_")
    )
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all): {', '.join(available)}")
    parser.add_argument("--scale", default="", help="size preset understood by the benchmark (e.g. 1M, 10M)")
    parser.add_argument("--no-record", action="store_true", help="print only; leave docs/benchmarks.md alone")
    args = parser.parse_args()
    names = args.names or available
    for name in names:
        if name not in available:
            sys.exit(f"unknown benchmark {name!r}; available: {', '.join(available)}")
    durations: list[tuple[str, float]] = []
    for name in names:
        started = time.perf_counter()
        if len(names) == 1:
            bootstrap()  # a program of its own, like the CLI: the domains' links, wired
            report = importlib.import_module(f"benchmarks.bench_{name}").run(args.scale)
            print(report.markdown())
            if not args.no_record:
                record(name, report)
        else:
            # Each benchmark in a fresh process: its peak memory is its own, and it starts from a
            # clean interpreter (no engines, caches or settings left by the one before).
            command = [sys.executable, "-m", "benchmarks", name]
            command += ["--scale", args.scale] if args.scale else []
            command += ["--no-record"] if args.no_record else []
            if subprocess.run(command).returncode:
                sys.exit(f"benchmark {name} failed")
        durations.append((name, time.perf_counter() - started))
    if not args.names and not args.scale and not args.no_record:
        record("suite", suite_report(durations))


def suite_report(durations: list[tuple[str, float]]) -> Report:
    """How long the whole suite took, per benchmark (the 20-minute budget of issue #10)."""
    report = Report(title="The whole suite (`make bench`)", columns=["benchmark", "minutes", "share"])
    total = sum(s for _, s in durations)
    for name, seconds in durations:
        report.add(name, seconds / 60, f"{seconds / total:.0%}")
    report.add("total", total / 60, "100%")
    report.notes.append(
        f"`make bench` (every benchmarks/bench_*.py at its default scale, each section above rewritten) took "
        f"{total / 60:.1f} minutes; budget 20 minutes. 1-minute load average at the end: {os.getloadavg()[0]:.1f}."
    )
    return report


if __name__ == "__main__":
    main()
