"""The scale benchmark (benchmarks/bench_scale.py) runs at its smallest preset: it generates the
data straight into the event store, measures every analysis at each scale and judges issue #24's
cost-per-event target only when 10M and 100M both ran. Spark is left out here (the standalone
cluster's own tests are tests/engine/test_engine_spark_cluster.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MEASURES = [
    "scan: count(*), count(distinct person)",
    "funnel, 4 steps, 14-day window",
    "retention matrix, weekly, 12 × 12",
    "referral tree (edges query + walk)",
    "KPI sheet (one query)",
]


def test_scale_benchmark_measures_every_analysis_at_each_scale(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIEBIAN_")}
    env.update(
        LIEBIAN_BENCH_SCALE_SPARK="0", LIEBIAN_BENCH_SCALE_DIR=str(tmp_path), LIEBIAN_BENCH_SCALE_MEMORY="2GB"
    )
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks", "scale", "--scale", "quick", "--no-record"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    out = done.stdout
    rows = [
        [c.strip() for c in line.strip("|").split("|")] for line in out.splitlines() if line.startswith("| 1")
    ]
    for events in ("100,000", "1,000,000"):
        mine = [r for r in rows if r[0] == events]
        assert [r[2] for r in mine] == MEASURES and all(r[1] == "duckdb" for r in mine)
        scan = mine[0]
        # the scan counts every generated event and one person per 10 (53-bit ids: no collision)
        n = int(events.replace(",", ""))
        assert scan[8] == f"{n:,} / {n // 10:,}" or scan[8].startswith(f"{n:,} / ")
        persons = int(scan[8].split(" / ")[1].replace(",", ""))
        assert 0.99 * n // 10 <= persons <= n // 10
        # CPU µs per event is the CPU seconds over the events
        for r in mine:
            assert (
                abs(float(r[5].replace(",", "")) - float(r[4].replace(",", "")) / n * 1e6)
                < 0.01 * float(r[5].replace(",", "")) + 0.002
            )
    assert "| measure (CPU µs per event) | 100k | 1M | 1M / 100k |" in out
    # issue #24's targets are at 100M: a quick run reports them, not judged
    targets = [line for line in out.splitlines() if line.startswith("- #24 ")]
    assert len(targets) == 5 and all(line.endswith("— not judged") for line in targets), targets
    # the data went straight into the store and was deleted after each scale
    assert "events 100,000, orders 5,000" in out and "events 1,000,000, orders 50,000" in out
    assert not list(tmp_path.iterdir())
