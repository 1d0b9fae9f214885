"""Run benchmarks and record their figures in docs/benchmarks.md.

Each module `benchmarks/bench_<name>.py` defines `run(scale: str) -> Report`; its section of
docs/benchmarks.md (between `<!-- bench:<name> -->` markers) is replaced by the new figures, so
one benchmark can be re-run without losing the others. The targets a run judged (`Report.targets`,
see benchmarks/common.py) replace that benchmark's rows of the summary table at the top of the page
(between `<!-- bench:targets -->` markers), so the summary always shows each benchmark's last run.
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
from benchmarks.common import Report, Target
from liebian.bootstrap import bootstrap

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"
# Benchmarks `make bench` leaves out: each runs on its own command, its rows keep their own last run.
OWN_RUN = {
    "scale": "issue #24's 1M / 10M / 100M curve (generating and reading 100M events takes about an hour "
    "on 2 cores): `python -m benchmarks scale`",
}
SUMMARY_HEAD = ["target", "goal", "measured", "verdict", "benchmark", "run (UTC, 1-min load)"]


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
    load = os.getloadavg()[0]
    command = (
        "make bench"
        if name == "suite"
        else f"python -m benchmarks {name}{' --scale ' + report.scale if report.scale else ''}"
    )
    section = (
        f"<!-- bench:{name} -->\n## {report.title}\n\n"
        f"Measured {stamp} on {machine_facts()}, 1-minute load average {load:.1f}. Command: `{command}`.\n\n"
        f"{report.markdown()}\n"
        f"<!-- /bench:{name} -->"
    )
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = (
        pattern.sub(lambda _m: section, text)
        if pattern.search(text)
        else text.rstrip() + "\n\n" + section + "\n"
    )
    text = record_targets(text, name, report.targets, f"{stamp[:-4]}, {load:.1f}")
    DOC.write_text(text, encoding="utf-8")


def _cell(value: str) -> str:
    return value.replace("|", "/").replace("\n", " ")


def record_targets(text: str, name: str, targets: list[Target], run: str) -> str:
    """`text` with benchmark `name`'s rows of the targets summary replaced by `targets` (rows of the
    other benchmarks kept: each shows its last run). The summary sits above every benchmark's section."""
    pattern = re.compile(r"<!-- bench:targets -->.*?<!-- /bench:targets -->", re.S)
    found = pattern.search(text)
    kept = []
    if found:
        for line in found.group(0).splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            row = line.startswith("| ") and len(cells) == len(SUMMARY_HEAD) and cells[0] != SUMMARY_HEAD[0]
            if row and cells[4] != name:
                kept.append(cells)
    new = [
        [_cell(f"{t.issue} {t.what}"), _cell(t.goal), _cell(t.measured), t.verdict, name, run]
        for t in targets
    ]
    rows = sorted(kept + new, key=lambda r: (r[0].split(" ", 1)[0], r[4]))  # by issue, then benchmark
    table = ["| " + " | ".join(SUMMARY_HEAD) + " |", "|" + "---|" * len(SUMMARY_HEAD)]
    table += ["| " + " | ".join(r) + " |" for r in rows]
    section = (
        "<!-- bench:targets -->\n## Targets: met or not, from the last run of each benchmark\n\n"
        f"Machine: {machine_facts()}. Each row names the benchmark that measured it and when, with the "
        "1-minute load average then (the machine is shared: a high load stretches wall times). "
        "`make bench` rewrites every row; `python -m benchmarks NAME` rewrites NAME's rows.\n\n"
        + "\n".join(table)
        + "\n<!-- /bench:targets -->"
    )
    if found:
        return pattern.sub(lambda _m: section, text)
    first = text.find("<!-- bench:")
    if first < 0:
        return text.rstrip() + "\n\n" + section + "\n"
    return text[:first] + section + "\n\n" + text[first:]


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
    names = args.names or [n for n in available if n not in OWN_RUN]
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
    report.target(
        "`make bench` reproduces every figure", "< 20 minutes", f"{total / 60:.1f} minutes", total < 20 * 60
    )
    report.notes.append(
        f"`make bench` (every benchmarks/bench_*.py at its default scale, each section above rewritten) took "
        f"{total / 60:.1f} minutes; budget 20 minutes. 1-minute load average at the end: {os.getloadavg()[0]:.1f}. "
        "Left out, each on its own command: " + "; ".join(f"`{n}`, {why}" for n, why in OWN_RUN.items()) + "."
    )
    return report


if __name__ == "__main__":
    main()
