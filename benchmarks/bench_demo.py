"""The demo generator: wall time per step and peak memory at a given number of persons.

Generation only (files + ground truth); loading is the importer's benchmark (bench_import).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from benchmarks.common import Report, peak_rss_mib, timed
from liebian.demo.generator import DemoSpec, generate

SCALES = {"": 50_000, "5k": 5_000, "50k": 50_000, "200k": 200_000}


def run(scale: str) -> Report:
    persons = SCALES.get(scale, 50_000)
    report = Report(
        title="Demo brand generator",
        scale=scale,
        columns=[
            "persons",
            "events",
            "orders",
            "messages",
            "identity links",
            "file MB",
            "seconds",
            "step",
            "step s",
        ],
    )
    with tempfile.TemporaryDirectory() as tmp:
        seconds, result = timed(lambda: generate(DemoSpec(persons=persons), Path(tmp) / "demo"))
        sizes = result.ground_truth["sizes"]
        mb = sum(p.stat().st_size for p in (Path(tmp) / "demo" / "files").iterdir()) / 2**20
        for i, (step, s) in enumerate(result.steps.items()):
            head = (
                [persons, sizes["events"], sizes["orders"]["orders"], sizes["messages"], sizes["identity_links"],
                 round(mb, 1), seconds]
                if i == 0
                else [""] * 7
            )  # fmt: skip
            report.add(*head, step, s)
    report.notes.append(f"Peak resident memory {peak_rss_mib():,.0f} MiB. One core used (numpy + pyarrow).")
    return report
