"""Predictive models benchmark: every fit on a demo brand, plus BG/NBD on simulated customers.

A demo brand (5k / 20k / 50k persons, fixed seed, 120 days) is generated and loaded into a temporary
data directory; then each model is fitted once, the way `liebian predict …` runs it (warehouse
queries + fit + store), and its headline figure is shown beside the time. BG/NBD is also fitted on
100k customers simulated from the CDNOW parameters (the fit cost grows with customers, not orders).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from benchmarks.common import Report, peak_rss_mib, timed

SCALES = {"5k": 5_000, "20k": 20_000, "50k": 50_000}


def run(scale: str = "") -> Report:
    scale = scale or "5k"
    if scale not in SCALES:
        raise SystemExit(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    report = Report(
        title="Predictive models: fit times on the demo brand",
        scale=scale,
        columns=["model", "seconds", "result"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LIEBIAN_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["LIEBIAN_SCHEDULER_ENABLED"] = "0"
        from liebian.config import reset_settings_cache

        reset_settings_cache()
        from liebian.db.session import session_scope
        from liebian.demo.generator import DemoSpec
        from liebian.demo.service import build
        from liebian.engine import warehouse
        from liebian.predict import ltv, service
        from liebian.tags import service as tags

        build_s, built = timed(lambda: build(DemoSpec(seed=7, persons=SCALES[scale])))
        with warehouse.connect(read_only=True) as con:
            counts = warehouse.table_counts(con)
        report.add(
            "demo build + import (setup)",
            build_s,
            f"{counts['events']:,} events, {counts['orders']:,} orders",
        )

        s, r = timed(lambda: service.fit_ltv())
        m = r["metrics"]["ltv_multiplier"]
        report.add(
            "LTV BG/NBD + Gamma-Gamma + CLV",
            s,
            f"{r['metrics']['customers']:,} customers; multiplier {m['multiplier']:.2f} "
            f"[{m['ci_low']:.2f}, {m['ci_high']:.2f}] (demo truth {built.ground_truth['kpis']['ltv_multiplier']})",
        )
        s, r = timed(lambda: service.fit_lifecycle())
        report.add("lifecycle Markov chain", s, f"{r['periods_observed']} periods, current {r['current']}")
        s, r = timed(lambda: service.fit_churn())
        report.add(
            "churn (train, time-split validation, permutation importance, refit)",
            s,
            f"AUC {r['metrics']['auc']:.3f}, Brier {r['metrics']['brier']:.3f}, ECE {r['metrics']['ece']:.3f}",
        )
        s, rows = timed(lambda: service.churn_risk())
        report.add("churn risk + reasons for every person", s, f"{len(rows):,} persons")
        s, r = timed(lambda: service.fit_segments())
        report.add(
            "RFM + K-Means k=2..8 by silhouette",
            s,
            f"k={r['k']}, silhouette {r['silhouette'][str(r['k'])]:.3f}",
        )
        s, r = timed(lambda: service.attribution_report())
        report.add(
            "attribution, 6 models by channel", s, f"{r['paths']:,} paths, {r['conversions']:,} conversions"
        )

        def recompute():
            with session_scope() as session:
                tags.install_defaults(session)
                return tags.recompute(session)

        s, r = timed(recompute)
        report.add("tags: features + churn scores + 11 rules + history", s, f"{r['persons']:,} persons")
        s, r = timed(recompute)
        report.add("tags: second run (no changes)", s, f"{sum(t['added'] for t in r['tags'].values())} added")

        sim = ltv.simulate_bgnbd(100_000, 52.0, **ltv.PAPER_BGNBD, seed=1)
        s, (params, _se) = timed(lambda: ltv.fit_bgnbd(sim["frequency"], sim["recency"], sim["T"]))
        report.add(
            "BG/NBD fit, 100k simulated customers", s, ", ".join(f"{k}={v:.3f}" for k, v in params.items())
        )
        report.notes.append(f"Peak memory of the run: {peak_rss_mib():,.0f} MiB.")
    return report
