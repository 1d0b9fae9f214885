"""The benchmark suite runs end to end at its smallest scales and reports what it measured
(`make bench` itself is too long for CI; docs/benchmarks.md holds its figures)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _bench(*args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}  # SQLite, temp dirs
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", *args, "--no-record"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _rows(markdown: str, first_cell: str) -> list[list[str]]:
    return [
        [c.strip() for c in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith(f"| {first_cell} ")
    ]


def test_import_benchmark_loads_then_finds_every_row_a_duplicate() -> None:
    out = _bench("import", "--scale", "100k")
    (first,) = [r for r in _rows(out, "sqlite") if r[1] == "first import"]
    (again,) = [r for r in _rows(out, "sqlite") if r[1].startswith("re-import")]
    assert (first[2], first[7], first[8]) == ("100,000", "100,000", "0")
    assert (again[7], again[8]) == ("0", "100,000")
    assert "Target ≥ 500,000 rows/s at 10M" in out


def test_fraud_benchmark_finds_the_injected_rings() -> None:
    out = _bench("fraud", "--scale", "10k")
    (row,) = [r for r in out.splitlines() if r.startswith("| 1") and r.count("|") == 12]
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert (cells[8], cells[9]) == ("1.000", "1.000")  # precision, recall on the synthetic truth
    assert 0 < float(cells[10].replace(",", "")) < 2048  # the scan process's own peak, MiB


def test_peak_memory_of_a_child_is_its_own() -> None:
    """ru_maxrss carries the parent's peak into a child across exec; the suite reads VmHWM."""
    ballast = bytearray(400 * 1024 * 1024)  # this process now holds 400 MiB
    ballast[::4096] = b"x" * len(ballast[::4096])  # touch every page
    code = "from benchmarks.common import peak_rss_mib; print(peak_rss_mib())"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert float(done.stdout) < 200
    del ballast


def test_startup_benchmark_measures_every_command_beside_its_floor() -> None:
    out = _bench("startup", "--scale", "quick")
    labels = [r[0] for r in _rows(out, "floor:")] + [r[0] for r in _rows(out, "liebian")]
    labels += [r[0] for r in _rows(out, "python")]
    assert "floor: python -c 'import fastapi'" in labels and "liebian --help" in labels
    assert "python -c 'import liebian.web.asgi'" in labels
    (fastapi_floor,) = _rows(out, "floor: python -c 'import fastapi'")
    assert fastapi_floor[3:] == ["1.00", "1.00"]  # the yardstick of the ratios
