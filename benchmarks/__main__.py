"""Run benchmarks and record their figures in docs/benchmarks.md.

Each module `benchmarks/bench_<name>.py` defines `run(scale: str) -> Report`; its section of
docs/benchmarks.md (between `<!-- bench:<name> -->` markers) is replaced by the new figures, so
one benchmark can be re-run without losing the others.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import platform
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import benchmarks
from benchmarks.common import Report

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine_facts() -> str:
    import os

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
    section = (
        f"<!-- bench:{name} -->\n## {report.title}\n\n"
        f"Measured {stamp} on {machine_facts()}. Command: `python -m benchmarks {name}"
        f"{' --scale ' + report.scale if report.scale else ''}`.\n\n{report.markdown()}\n<!-- /bench:{name} -->"
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
    for name in args.names or available:
        if name not in available:
            sys.exit(f"unknown benchmark {name!r}; available: {', '.join(available)}")
        module = importlib.import_module(f"benchmarks.bench_{name}")
        report = module.run(args.scale)
        print(report.markdown())
        if not args.no_record:
            record(name, report)


if __name__ == "__main__":
    main()
