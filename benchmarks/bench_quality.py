"""The data-quality report over a synthetic warehouse: seconds per report and peak memory.

Scales: "100k" (smoke), "1M" (default), "10M" events (orders are 1/20 of the events).
"""

from __future__ import annotations

import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path

from benchmarks.common import Report, peak_rss_mib, timed

SCALES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}


def fill(con, rows: int) -> None:
    """Events over 120 days and 6 channels with ~0.3 % duplicates, late rows and out-of-range amounts."""
    con.execute("SELECT setseed(0.07)")
    users = max(rows // 20, 1)
    con.execute(
        f"""
        INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, campaign_id, device_id,
                            ip, received_at, batch_id, ingested_at)
        SELECT 'ev' || i, ts, p, 'openid', 'o' || p, ['view', 'click', 'share', 'signup'][1 + i % 4],
               ['wecom', 'miniprogram', 'douyin', 'xiaohongshu', 'app', 'store'][1 + (i // 7) % 6],
               CASE WHEN i % 3 = 0 THEN 'camp1' END, 'dev' || p, '10.0.0.' || (p % 250),
               ts + to_seconds(CASE WHEN i % 300 = 0 THEN 90000 ELSE 30 END), 'b1', ts + INTERVAL 1 HOUR
        FROM (SELECT i, (random() * {users})::BIGINT AS p,
                     TIMESTAMP '2026-07-01' + to_seconds((random() * 120 * 86400)::BIGINT) AS ts
              FROM range({rows}) t(i))
        """
    )
    con.execute(
        """
        INSERT INTO events
        SELECT event_id || '-dup', ts, person_id, id_type, user_id, event, channel, campaign_id, invite_code,
               referrer_person_id, device_id, ip, props, received_at, batch_id, ingested_at
        FROM events WHERE hash(event_id) % 333 = 0
        """
    )
    con.execute(
        f"""
        INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status, channel,
                            status_ts, received_at, batch_id, ingested_at)
        SELECT 'o' || i, ts, p, 'openid', 'o' || p,
               CASE WHEN i % 5000 = 0 THEN 1 ELSE 2000 + (random() * 20000)::BIGINT END, 'CNY',
               CASE WHEN i % 20 = 0 THEN 'refunded' ELSE 'paid' END, 'miniprogram', ts, ts, 'b1', ts
        FROM (SELECT i, (random() * {users})::BIGINT AS p,
                     TIMESTAMP '2026-07-01' + to_seconds((random() * 120 * 86400)::BIGINT) AS ts
              FROM range({rows // 20}) t(i))
        """
    )


def run(scale: str = "") -> Report:
    scale = scale or "1M"
    if scale not in SCALES:
        sys.exit(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    rows = SCALES[scale]
    with tempfile.TemporaryDirectory(prefix="bench-quality-") as tmp:
        os.environ["LIEBIAN_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ.pop("LIEBIAN_WAREHOUSE_PATH", None)
        from liebian.config import reset_settings_cache
        from liebian.engine import warehouse
        from liebian.quality import service

        reset_settings_cache()
        with warehouse.connect() as con:
            fill_seconds, _ = timed(lambda: fill(con, rows))
            counts = warehouse.table_counts(con)
            seconds, report = timed(lambda: service.quality_report(con, now=datetime(2026, 12, 1)), repeat=2)
    report_ = Report(
        title="Data-quality report",
        scale=scale,
        columns=["events", "orders", "report s", "rows/s", "duplicates", "late", "anomalies", "peak MiB"],
    )
    report_.add(
        counts["events"],
        counts["orders"],
        seconds,
        round((counts["events"] + counts["orders"]) / seconds),
        report.consistency.duplicate_content_events,
        report.timeliness.late_rows,
        len(report.volume_anomalies),
        peak_rss_mib(),
    )
    report_.notes.append(
        f"One `quality_report()` over the whole warehouse (best of 2; filling it took {fill_seconds:.1f} s): "
        "completeness, consistency, timeliness, daily volume per channel and quarantine, each one DuckDB query."
    )
    return report_
