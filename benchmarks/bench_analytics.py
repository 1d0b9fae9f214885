"""Analytics engine benchmark: the 4-step funnel and a 12-cohort retention matrix beside a full scan.

Synthetic events with a fixed seed (1M / 3M / 10M events, one person per 10 events, 90 days,
5 channels) and paid/refunded orders are written to a DuckDB file; then, in the same run:

- scan: `count(*)` and `count(distinct person_id)` over events (the yardstick),
- funnel: liebian's default 4-step funnel (exposure → page_view → join_campaign → paid order,
  14-day window) through the same Ibis code the product runs,
- retention: the weekly retention matrix, 12 cohorts × 12 periods,
- pandas: a straightforward pandas version of the same funnel (events already in memory).

Targets (docs/metrics.md): funnel ≤ 2× scan, retention ≤ 2× scan, funnel ≥ 20× faster than pandas,
peak memory ≤ 2 GiB at 10M (measured before the pandas comparison loads the events into pandas).
"""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

import duckdb
import ibis
import numpy as np
import pandas as pd

from benchmarks.common import Report, peak_rss_mib, timed

SCALES = {"1M": 1_000_000, "3M": 3_000_000, "10M": 10_000_000}
EVENTS = np.array(["exposure", "page_view", "join_campaign", "invite_share", "app_open", "login"])
EVENT_P = [0.35, 0.25, 0.10, 0.05, 0.15, 0.10]
CHANNELS = np.array(["wecom", "miniprogram", "douyin", "xiaohongshu", "app"])
START = np.datetime64("2026-01-01T00:00:00", "us")
SPAN_US = 90 * 86400 * 10**6


def generate(con: duckdb.DuckDBPyConnection, n: int, seed: int = 20261122) -> None:
    rng = np.random.default_rng(seed)
    persons = max(1, n // 10)
    con.execute(
        "CREATE TABLE events (event_id VARCHAR, ts TIMESTAMP, person_id BIGINT, event VARCHAR, channel VARCHAR, "
        "campaign_id VARCHAR)"
    )
    con.execute(
        "CREATE TABLE orders (order_id VARCHAR, ts TIMESTAMP, person_id BIGINT, amount_fen BIGINT, status VARCHAR, "
        "channel VARCHAR, campaign_id VARCHAR)"
    )
    chunk = 1_000_000
    for offset in range(0, n, chunk):
        m = min(chunk, n - offset)
        df = pd.DataFrame(
            {
                "event_id": np.arange(offset, offset + m).astype(str),
                "ts": START + rng.integers(0, SPAN_US, m).astype("timedelta64[us]"),
                "person_id": rng.integers(1, persons + 1, m),
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
            "person_id": rng.integers(1, persons + 1, k),
            "amount_fen": rng.integers(1000, 50000, k),
            "status": np.where(rng.random(k) < 0.9, "paid", "refunded"),
            "channel": CHANNELS[rng.integers(0, len(CHANNELS), k)],
            "campaign_id": "c1",
        }
    )
    con.register("o", orders)
    con.execute("INSERT INTO orders SELECT * FROM o")
    con.unregister("o")
    con.execute("CHECKPOINT")


def pandas_funnel(events: pd.DataFrame, orders: pd.DataFrame, window: pd.Timedelta) -> list[int]:
    """The straightforward pandas version: first entry, then earliest next step within the window."""
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


def run(scale: str = "") -> Report:
    from liebian.analytics.cohorts import retention
    from liebian.analytics.common import Frame, MetricConfig
    from liebian.analytics.funnel import DEFAULT_STEPS, funnel

    scale = scale or "1M"
    if scale not in SCALES:
        raise SystemExit(f"unknown scale {scale!r}; use one of {', '.join(SCALES)}")
    n = SCALES[scale]
    repeat = 5 if n <= 3_000_000 else 3
    report = Report(
        title="Analytics engine: funnel and retention beside a full scan (DuckDB)",
        scale=scale,
        columns=["measure", "seconds", "× scan", "result"],
    )
    with tempfile.TemporaryDirectory() as tmp:
        con = duckdb.connect(str(Path(tmp) / "bench.duckdb"))
        con.execute("SET TimeZone = 'UTC'")
        gen_s, _ = timed(lambda: generate(con, n))
        backend = ibis.duckdb.from_connection(con)
        fr = Frame(backend, config=MetricConfig(timezone="Asia/Shanghai"))
        events = backend.table("events")
        scan_expr = events.aggregate(n=events.count(), persons=events.person_id.nunique())
        window = timedelta(days=14)

        backend.execute(scan_expr)  # warm the file cache once for all three
        scan_s, scan = timed(lambda: backend.execute(scan_expr), repeat)
        funnel_s, result = timed(lambda: funnel(fr, DEFAULT_STEPS, window), repeat)
        ret_s, ret = timed(lambda: retention(fr, unit="week", periods=12, cohorts=12), repeat)
        peak_engine = peak_rss_mib()

        funnel_counts = [int(n) for n in result.steps.persons]
        ev_pd = con.execute("SELECT person_id, ts, event FROM events").df()
        or_pd = con.execute("SELECT person_id, ts, status FROM orders").df()
        pandas_s, pandas_counts = timed(lambda: pandas_funnel(ev_pd, or_pd, pd.Timedelta(window)), 1)
        peak_all = peak_rss_mib()
        con.close()

    assert pandas_counts == funnel_counts, (pandas_counts, funnel_counts)  # same answer, or the race is void
    rows, persons = int(scan.n.iloc[0]), int(scan.persons.iloc[0])
    cohorts = ret.table.cohort.nunique()
    report.add("generate + load (not timed against)", gen_s, "", f"{rows:,} events, {persons:,} persons")
    report.add("scan: count(*), count(distinct person)", scan_s, 1.0, f"{rows:,} / {persons:,}")
    report.add(
        "funnel, 4 steps, 14-day window (counts, drop-off, medians)",
        funnel_s,
        funnel_s / scan_s,
        " → ".join(f"{c:,}" for c in funnel_counts),
    )
    report.add("retention matrix, weekly, 12 cohorts × 12", ret_s, ret_s / scan_s, f"{cohorts} cohorts")
    report.add(
        "pandas funnel (same answer)",
        pandas_s,
        pandas_s / scan_s,
        f"pandas takes {pandas_s / funnel_s:.1f}× the Ibis/DuckDB funnel time",
    )
    report.notes.append(
        f"Peak RSS: {peak_engine:,.0f} MiB after generating, scanning, funnel and retention; "
        f"{peak_all:,.0f} MiB after the pandas comparison loaded the events into pandas."
    )
    report.notes.append(
        "The pandas baseline is vectorised (merges and group-bys on frames already in memory, loading "
        "not timed), not a per-person loop: against it the 20× target is not met; the engine's gain is "
        "in memory (pandas needs the events in RAM) and in running unchanged on Spark."
    )
    report.notes.append(
        "Targets: funnel ≤ 2× scan, retention ≤ 2× scan, ≥ 20× faster than pandas, peak ≤ 2 GiB at 10M. "
        "Best of "
        f"{repeat} runs; DuckDB file-backed, default threads."
    )
    return report
