"""Analytics engine benchmark: funnel, retention, KPI sheet and referral tree, each beside a full scan.

Synthetic warehouse with a fixed seed (1M / 3M / 10M events, one person per 10 events, 90 days,
5 channels; paid/refunded orders at 1/20 of the events; referral edges forming random recursive
trees, one per 5 persons). At each scale, in a fresh process (so that peak memory is per scale):

- scan: `count(*)` and `count(distinct person_id)` over events (the yardstick),
- funnel: liebian's default 4-step funnel (exposure → page_view → join_campaign → paid order,
  14-day window) through the same Ibis code the product runs,
- retention: the weekly retention matrix, 12 cohorts × 12 periods,
- KPIs: the whole KPI sheet (one query: participation, invites, K-factor, conversion, money,
  D1/D7/D30 retention, DAU/MAU, …),
- referral tree: generations, depth/breadth, top spreaders and the graph view,
- pandas: the funnel written with pandas merges and group-bys (vectorised, the events already in
  memory), and the same including reading the events out of the warehouse.

Targets (issue #5/#10): funnel ≤ 2× scan, retention ≤ 2× scan, funnel ≥ 20× faster than "a
straightforward pandas implementation", peak memory ≤ 2 GiB at 10M.

`python -m benchmarks analytics [--scale 1M|3M|10M]` (default: all three, the scaling curve);
one scale alone in this process: `python -m benchmarks.bench_analytics measure 3M`.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd

from benchmarks.common import Report, faster_than_data, measure_in_child, peak_rss_mib, ratio_table

SCALES = {"1M": 1_000_000, "3M": 3_000_000, "10M": 10_000_000}
EVENTS = np.array(["exposure", "page_view", "join_campaign", "invite_share", "app_open", "login"])
EVENT_P = [0.35, 0.25, 0.10, 0.05, 0.15, 0.10]
CHANNELS = np.array(["wecom", "miniprogram", "douyin", "xiaohongshu", "app"])
START = np.datetime64("2026-01-01T00:00:00", "us")
SPAN_US = 90 * 86400 * 10**6
MEASURES = ("scan", "funnel", "retention", "kpis", "tree")
LABELS = {
    "scan": "scan: count(*), count(distinct person)",
    "funnel": "funnel, 4 steps, 14-day window",
    "retention": "retention matrix, weekly, 12 × 12",
    "kpis": "KPI sheet (one query)",
    "tree": "referral tree (edges query + walk)",
}


def generate(con: duckdb.DuckDBPyConnection, n: int, seed: int = 20261122) -> dict[str, int]:
    """Events, orders and referral edges (fixed seed); returns the row counts."""
    rng = np.random.default_rng(seed)
    persons = max(1, n // 10)
    # Person ids as OneID makes them (53-bit hashes, keys.person_id_for), not small dense integers
    # that would let the engine use tiny or perfect hash tables.
    pid = np.unique(rng.integers(1, 2**53, int(persons * 1.01)))[:persons]
    rng.shuffle(pid)
    if pid.size < persons:
        raise RuntimeError("53-bit id draw collided too often")
    con.execute(
        "CREATE TABLE events (event_id VARCHAR, ts TIMESTAMP, person_id BIGINT, event VARCHAR, channel VARCHAR, "
        "campaign_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE orders (order_id VARCHAR, ts TIMESTAMP, person_id BIGINT, amount_fen BIGINT, status VARCHAR, "
        "channel VARCHAR, campaign_id VARCHAR, currency VARCHAR DEFAULT 'CNY')"  # analytics sum CNY only
    )
    con.execute(
        "CREATE TABLE referral_edges (inviter_person_id BIGINT, invitee_person_id BIGINT, campaign_id VARCHAR, "
        "channel VARCHAR, ts TIMESTAMP, event_id VARCHAR)"
    )
    chunk = 1_000_000
    for offset in range(0, n, chunk):
        m = min(chunk, n - offset)
        df = pd.DataFrame(
            {
                "event_id": np.arange(offset, offset + m).astype(str),
                "ts": START + rng.integers(0, SPAN_US, m).astype("timedelta64[us]"),
                "person_id": pid[rng.integers(0, persons, m)],
                "event": EVENTS[rng.choice(len(EVENTS), m, p=EVENT_P)],
                "channel": CHANNELS[rng.integers(0, len(CHANNELS), m)],
                "campaign_id": np.where(rng.random(m) < 0.5, "c1", "c2"),
            }
        )
        con.register("chunk", df)
        con.execute("INSERT INTO events SELECT * FROM chunk")
        con.unregister("chunk")
    k = n // 20
    orders = pd.DataFrame(
        {
            "order_id": np.arange(k).astype(str),
            "ts": START + rng.integers(0, SPAN_US, k).astype("timedelta64[us]"),
            "person_id": pid[rng.integers(0, persons, k)],
            "amount_fen": rng.integers(1000, 50000, k),
            "status": np.where(rng.random(k) < 0.9, "paid", "refunded"),
            "channel": CHANNELS[rng.integers(0, len(CHANNELS), k)],
            "campaign_id": "c1",
        }
    )
    con.register("o", orders)
    con.execute("INSERT INTO orders BY NAME SELECT * FROM o")
    con.unregister("o")
    # Random recursive trees: invitee i was invited by someone who joined before (a smaller id),
    # drawn towards recent joiners so that chains grow several generations deep.
    invitees = np.sort(rng.choice(np.arange(2, persons + 1), size=max(1, persons // 5), replace=False))
    back = np.minimum(invitees - 1, np.ceil(rng.pareto(1.2, invitees.size) * 50).astype(np.int64) + 1)
    edges = pd.DataFrame(
        {
            "inviter_person_id": pid[invitees - back - 1],
            "invitee_person_id": pid[invitees - 1],
            "campaign_id": np.where(rng.random(invitees.size) < 0.5, "c1", "c2"),
            "channel": CHANNELS[rng.integers(0, len(CHANNELS), invitees.size)],
            "ts": START + rng.integers(0, SPAN_US, invitees.size).astype("timedelta64[us]"),
            "event_id": np.char.add("edge", invitees.astype(str)),
        }
    )
    con.register("e", edges)
    con.execute("INSERT INTO referral_edges SELECT * FROM e")
    con.unregister("e")
    con.execute("CHECKPOINT")
    return {"events": n, "orders": k, "edges": len(edges), "persons": persons}


def pandas_funnel(events: pd.DataFrame, orders: pd.DataFrame, window: pd.Timedelta) -> list[int]:
    """The funnel in pandas, vectorised: first entry, then the earliest next step within the window."""
    steps = [
        events.loc[events.event == "exposure", ["person_id", "ts"]],
        events.loc[events.event == "page_view", ["person_id", "ts"]],
        events.loc[events.event == "join_campaign", ["person_id", "ts"]],
        orders.loc[orders.status == "paid", ["person_id", "ts"]],
    ]
    cur = steps[0].groupby("person_id", as_index=False).ts.min().rename(columns={"ts": "t0"})
    cur["prev"] = cur.t0
    counts = [len(cur)]
    for step in steps[1:]:
        m = cur.merge(step, on="person_id")
        m = m[(m.ts >= m.prev) & (m.ts <= m.t0 + window)]
        cur = m.groupby("person_id", as_index=False).agg(t0=("t0", "first"), prev=("ts", "min"))
        counts.append(len(cur))
    return counts


def _timed(fn, repeat: int) -> tuple[float, float, object]:
    """Best wall time and best process CPU time (all DuckDB threads) of `repeat` runs."""
    wall = cpu = float("inf")
    result = None
    for _ in range(repeat):
        w, c = time.perf_counter(), time.process_time()
        result = fn()
        wall, cpu = min(wall, time.perf_counter() - w), min(cpu, time.process_time() - c)
    return wall, cpu, result


def measure(scale: str) -> dict:
    """Every measure at one scale, in this process."""
    import ibis

    from liebian.analytics.cohorts import retention
    from liebian.analytics.common import Frame, MetricConfig
    from liebian.analytics.funnel import DEFAULT_STEPS, funnel
    from liebian.analytics.kpis import kpis
    from liebian.analytics.referral_tree import referral_tree

    n = SCALES[scale]
    repeat = 5 if n <= 3_000_000 else 3
    out: dict = {"scale": scale, "repeat": repeat, "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        con.execute("SET enable_progress_bar = false")
        start = time.perf_counter()
        out["sizes"] = generate(con, n)
        out["generate_s"] = time.perf_counter() - start
        backend = ibis.duckdb.from_connection(con)
        fr = Frame(backend, config=MetricConfig(timezone="Asia/Shanghai"))
        events = backend.table("events")
        scan_expr = events.aggregate(n=events.count(), persons=events.person_id.nunique())
        window = timedelta(days=14)
        backend.execute(scan_expr)  # warm the file cache once for all
        runs = {
            "scan": lambda: backend.execute(scan_expr),
            "funnel": lambda: funnel(fr, DEFAULT_STEPS, window),
            "retention": lambda: retention(fr, unit="week", periods=12, cohorts=12),
            "kpis": lambda: kpis(fr),
            "tree": lambda: referral_tree(fr),
        }
        results = {}
        for name in MEASURES:
            wall, cpu, results[name] = _timed(runs[name], repeat)
            out[name] = {"wall": wall, "cpu": cpu}
        out["peak_engine_mib"] = peak_rss_mib()
        scan, fun, ret, kpi, tree = (results[m] for m in MEASURES)
        out["scan"]["result"] = f"{int(scan.n.iloc[0]):,} / {int(scan.persons.iloc[0]):,}"
        counts = [int(c) for c in fun.steps.persons]
        out["funnel"]["result"] = " → ".join(f"{c:,}" for c in counts)
        out["retention"]["result"] = f"{ret.table.cohort.nunique()} cohorts"
        out["kpis"]["result"] = (
            f"K {kpi['k_factor']:.3f}, D7 {kpi['retention_d7']:.1%}, DAU/MAU {kpi['dau_mau']:.1%}"
        )
        out["tree"]["result"] = (
            f"{tree.summary['edges']:,} edges, {tree.summary['roots']:,} roots, depth {tree.summary['max_depth']}"
        )

        read_w = time.perf_counter()
        ev_pd = con.execute("SELECT person_id, ts, event FROM events").df()
        or_pd = con.execute("SELECT person_id, ts, status FROM orders").df()
        read_s = time.perf_counter() - read_w
        wall, cpu, pandas_counts = _timed(lambda: pandas_funnel(ev_pd, or_pd, pd.Timedelta(window)), 1)
        out["pandas"] = {"wall": wall, "cpu": cpu, "read": read_s}
        if pandas_counts != counts:  # the same answer, or the race is void
            raise RuntimeError(f"pandas funnel {pandas_counts} differs from the engine's {counts}")
        out["peak_all_mib"] = peak_rss_mib()
        con.close()
    out["load_after"] = os.getloadavg()[0]
    return out


def run(scale: str = "") -> Report:
    scales = [scale] if scale else list(SCALES)
    for s in scales:
        if s not in SCALES:
            raise SystemExit(f"unknown scale {s!r}; use one of {', '.join(SCALES)}")
    results = [measure_in_child("benchmarks.bench_analytics", s) for s in scales]
    report = Report(
        title="Analytics engine: funnel, retention, KPIs and referral tree beside a full scan (DuckDB)",
        scale=scale,
        columns=["events", "measure", "seconds", "× scan", "CPU s", "× scan (CPU)", "result"],
    )
    for r in results:
        events = f"{SCALES[r['scale']]:,}"
        scan = r["scan"]
        for name in MEASURES:
            m = r[name]
            report.add(
                events, LABELS[name], m["wall"], m["wall"] / scan["wall"], m["cpu"], m["cpu"] / scan["cpu"],
                m["result"],
            )  # fmt: skip
        p = r["pandas"]
        fun = r["funnel"]
        report.add(
            events, "pandas funnel, events in memory", p["wall"], p["wall"] / scan["wall"], p["cpu"],
            p["cpu"] / scan["cpu"], f"same counts; {p['wall'] / fun['wall']:.1f}× the engine's funnel time",
        )  # fmt: skip
        report.add(
            events, "pandas funnel incl. reading the events", p["wall"] + p["read"],
            (p["wall"] + p["read"]) / scan["wall"], "", "",
            f"{(p['wall'] + p['read']) / fun['wall']:.1f}× the engine's funnel time",
        )  # fmt: skip
    by_scale = {r["scale"]: r for r in results}
    last = results[-1]
    target = [
        f"funnel {last['funnel']['wall'] / last['scan']['wall']:.2f}× scan "
        f"({last['funnel']['cpu'] / last['scan']['cpu']:.2f}× in CPU time)",
        f"retention {last['retention']['wall'] / last['scan']['wall']:.2f}× "
        f"({last['retention']['cpu'] / last['scan']['cpu']:.2f}×)",
    ]
    report.notes.append(
        f"At {last['scale']}: {', '.join(target)} (target ≤ 2×); the pandas funnel takes "
        f"{last['pandas']['wall'] / last['funnel']['wall']:.1f}× the engine's time with the events already in "
        f"memory, {(last['pandas']['wall'] + last['pandas']['read']) / last['funnel']['wall']:.1f}× counting "
        "the read out of the warehouse (target ≥ 20×: see below)."
    )
    if len(results) > 1:
        rows = [(LABELS[m], [by_scale[s][m]["wall"] for s in scales]) for m in MEASURES]
        rows.append(("pandas funnel, events in memory", [by_scale[s]["pandas"]["wall"] for s in scales]))
        report.notes.append(
            "**Scaling (wall seconds, ratio between scales):**\n\n" + ratio_table(rows, scales, SCALES)
        )
        cpu_rows = [(LABELS[m], [by_scale[s][m]["cpu"] for s in scales]) for m in MEASURES]
        report.notes.append("**Scaling (CPU seconds):**\n\n" + ratio_table(cpu_rows, scales, SCALES))
        steep = faster_than_data(cpu_rows, scales, SCALES)
        report.notes.append(
            "Growing faster than the data (CPU): "
            + ("; ".join(steep) if steep else "none")
            + ". Why: `count(DISTINCT person_id)` builds a hash table of all persons (N/10), which outgrows "
            "the CPU caches between 1M and 10M events, so each row costs more; the analyses group by person "
            "too, but at 1M their fixed costs (planning, several pipelines, fetching the result) dominate, "
            "which keeps their ratios at or below the data's."
        )
    report.notes.append(
        "Peak RSS per scale (fresh process each): "
        + ", ".join(
            f"{r['scale']} {r['peak_engine_mib']:,.0f} MiB (engine), {r['peak_all_mib']:,.0f} MiB with pandas"
            for r in results
        )
        + ". Generating the data: "
        + ", ".join(f"{r['scale']} {r['generate_s']:.1f} s" for r in results)
        + f". Best of {results[-1]['repeat']} runs (5 below 10M); DuckDB file-backed, default threads; CPU s "
        "is the process CPU time of all threads (the machine is shared: 1-minute load average "
        + ", ".join(f"{r['load_before']:.1f}–{r['load_after']:.1f}" for r in results)
        + " during the scales)."
    )
    return report


if __name__ == "__main__" and len(sys.argv) == 3 and sys.argv[1] == "measure":
    print(json.dumps(measure(sys.argv[2])))
