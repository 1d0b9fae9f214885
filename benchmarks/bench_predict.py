"""Predictive models benchmark: every fit on a demo brand, plus the LTV fit on 100k customers.

A demo brand (5k / 20k / 50k persons, fixed seed, 120 days) is generated and loaded into a temporary
data directory; then each model is fitted once, the way `liebian predict …` runs it (warehouse
queries + fit + store), and its headline figure is shown beside the time. The whole LTV fit
(`predict.service.fit_ltv`: RFM summary from the warehouse, BG/NBD, Gamma-Gamma, CLV per person,
the referral multiplier with its bootstrap interval, stored) also runs on a warehouse of 100k
customers whose orders are drawn from BG/NBD with the CDNOW parameters, in a process of its own
(`python -m benchmarks.bench_predict measure ltv100k`), so that its peak memory is its own.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.common import Report, measure_in_child, peak_rss_mib, timed

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
        peak_demo = peak_rss_mib()
    big = measure_in_child("benchmarks.bench_predict", "ltv100k")
    report.add(
        f"LTV fit on {big['customers']:,} customers ({big['orders']:,} paid orders; setup "
        f"{big['setup_s']:.1f} s)",
        big["seconds"],
        f"{big['repeat_customers']:,} repeat buyers; r={big['r']:.3f}, alpha={big['alpha']:.2f}, "
        f"a={big['a']:.3f}, b={big['b']:.3f} (drawn with {PAPER}); multiplier {big['multiplier']:.2f}; "
        f"peak {big['peak_mib']:,.0f} MiB",
    )
    report.notes.append(
        f"Peak memory: {peak_demo:,.0f} MiB for the demo-brand fits, {big['peak_mib']:,.0f} MiB for the "
        f"100k-customer LTV fit (its own process; CPU {big['cpu']:.1f} s)."
    )
    return report


PAPER = "r=0.243, alpha=4.41, a=0.793, b=2.43"


def ltv_warehouse(con, customers: int = 100_000, seed: int = 11) -> dict:
    """Paid orders of `customers` buyers drawn from BG/NBD (weekly CDNOW parameters) over a year,
    acquired during its first half; sign-up events, some browsing, and referral edges for 30 %."""
    from liebian.predict import ltv

    rng = np.random.default_rng(seed)
    start = np.datetime64("2026-01-01T00:00:00", "us")
    week_us = 7 * 86400 * 10**6
    birth = rng.uniform(0, 26, customers)  # weeks after the start
    span = 52.0 - birth  # each customer's observation window T
    # BG/NBD as in ltv.simulate_bgnbd, with each customer's own T, keeping every purchase time
    p = ltv.PAPER_BGNBD
    lam = rng.gamma(p["r"], 1 / p["alpha"], customers)
    drop = rng.beta(p["a"], p["b"], customers)
    t = np.zeros(customers)
    alive = np.ones(customers, dtype=bool)
    who, when = [np.arange(customers)], [birth.copy()]  # the first purchase at acquisition
    while alive.any():
        idx = np.flatnonzero(alive)
        t[idx] += rng.exponential(1 / lam[idx])
        within = t[idx] <= span[idx]
        bought = idx[within]
        who.append(bought)
        when.append(birth[bought] + t[bought])
        alive[idx[~within]] = False
        alive[bought[rng.random(bought.size) < drop[bought]]] = False
    who, when = np.concatenate(who), np.concatenate(when)
    person = np.arange(1, customers + 1, dtype=np.int64) * 7919  # distinct ids, not 1..n
    spend = rng.gamma(6.25, 1 / rng.gamma(3.74, 1 / 15.44, customers))  # Gamma-Gamma, in yuan
    orders = pd.DataFrame(
        {
            "order_id": np.char.add("o", np.arange(who.size).astype(str)),
            "ts": start + (when * week_us).astype("timedelta64[us]"),
            "person_id": person[who],
            "id_type": "openid",
            "user_id": np.char.add("u", person[who].astype(str)),
            "amount_fen": np.maximum(
                100, (spend[who] * 100 * rng.uniform(0.8, 1.2, who.size)).astype(np.int64)
            ),
            "currency": "CNY",
            "status": "paid",
            "channel": np.array(["wecom", "miniprogram", "douyin", "app"])[who % 4],
            "campaign_id": None,
            "props": None,
            "received_at": None,
            "batch_id": "bench",
        }
    )
    orders["status_ts"] = orders["ts"]
    orders["ingested_at"] = orders["ts"]
    browse = rng.integers(0, customers, customers * 3)
    events = pd.DataFrame(
        {
            "event_id": np.char.add("e", np.arange(customers + browse.size).astype(str)),
            "ts": start
            + (np.concatenate([birth, rng.uniform(0, 52, browse.size)]) * week_us).astype("timedelta64[us]"),
            "person_id": person[np.concatenate([np.arange(customers), browse])],
            "event": np.concatenate([np.full(customers, "signup"), np.full(browse.size, "page_view")]),
        }
    )
    events["channel"] = np.array(["wecom", "miniprogram", "douyin", "app"])[events.person_id.to_numpy() % 4]
    invitees = rng.choice(customers, customers * 3 // 10, replace=False)
    edges = pd.DataFrame(
        {
            "inviter_person_id": person[rng.integers(0, customers, invitees.size)],
            "invitee_person_id": person[invitees],
            "campaign_id": "c1",
            "channel": "wecom",
            "ts": start + (birth[invitees] * week_us).astype("timedelta64[us]"),
            "event_id": np.char.add("edge", invitees.astype(str)),
        }
    )
    for name, frame in (("o", orders), ("e", events), ("g", edges)):
        con.register(name, frame)
    con.execute(
        "INSERT INTO orders BY NAME SELECT order_id, ts, person_id, id_type, user_id, amount_fen, currency, "
        "status, channel, campaign_id, status_ts, props, received_at, batch_id, ingested_at FROM o"
    )
    con.execute(
        "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id, ingested_at) "
        "SELECT event_id, ts, person_id, 'openid', 'u' || person_id, event, channel, 'bench', ts FROM e"
    )
    con.execute("INSERT INTO referral_edges SELECT * FROM g")
    for name in ("o", "e", "g"):
        con.unregister(name)
    return {"customers": customers, "orders": len(orders), "events": len(events), "edges": len(edges)}


def measure(what: str) -> dict:
    """The 100k-customer LTV fit in this process (a temporary data directory)."""
    if what != "ltv100k":
        raise SystemExit(f"unknown measure {what!r}")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["LIEBIAN_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["LIEBIAN_SCHEDULER_ENABLED"] = "0"
        os.environ.pop("LIEBIAN_DATABASE_URL", None)
        from liebian.config import reset_settings_cache

        reset_settings_cache()
        from liebian.db import migrate
        from liebian.engine import warehouse
        from liebian.predict import service

        migrate.upgrade()
        began = time.perf_counter()
        with warehouse.connect() as con:
            sizes = ltv_warehouse(con)
        setup = time.perf_counter() - began
        cpu = time.process_time()
        seconds, fit = timed(lambda: service.fit_ltv())
        cpu = time.process_time() - cpu
        bg = fit["params"]["bgnbd"]
        m = fit["metrics"]
        return {
            **sizes,
            "setup_s": setup,
            "seconds": seconds,
            "cpu": cpu,
            "repeat_customers": m["repeat_customers"],
            "multiplier": m["ltv_multiplier"]["multiplier"],
            **{k: bg[k] for k in ("r", "alpha", "a", "b")},
            "peak_mib": peak_rss_mib(),
        }


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "measure":
    print(json.dumps(measure(sys.argv[2]), default=float))
