"""The Parquet event store (engine/eventstore.py): what a commit costs over a warehouse of N events.

Scales: "100k" (smoke), "1M" (default), "10M" events (orders 1/20 of them, over 120 days; the
warehouse is filled as the data-quality benchmark fills it).
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from benchmarks.bench_quality import fill
from benchmarks.common import Report, peak_rss_mib, timed

SCALES = {"100k": 100_000, "1M": 1_000_000, "10M": 10_000_000}
BATCH = 10_000

NEW_BATCH = f"""
INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id, ingested_at)
SELECT 'new' || i, TIMESTAMP '2026-10-28' + to_seconds(i), i % 1000, 'openid', 'o' || (i % 1000), 'view',
       'wecom', 'bench-new', now()::TIMESTAMP
FROM range({BATCH}) t(i)
"""


def run(scale: str = "") -> Report:
    scale = scale or "1M"
    if scale not in SCALES:
        sys.exit(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    with tempfile.TemporaryDirectory(prefix="bench-eventstore-") as tmp:
        os.environ["LIEBIAN_DATA_DIR"] = str(Path(tmp) / "data")
        os.environ["LIEBIAN_EVENT_STORE"] = f"file://{tmp}/store"
        os.environ.pop("LIEBIAN_WAREHOUSE_PATH", None)
        from liebian.config import reset_settings_cache
        from liebian.engine import eventstore, warehouse

        reset_settings_cache()
        report = Report(
            title="Parquet event store: commits and reads",
            scale=scale,
            columns=["operation", "events in warehouse", "seconds", "events/s", "files live"],
        )

        def files() -> int:
            manifest = eventstore.read_manifest(eventstore.location())
            return sum(len(eventstore.table_files(manifest, t)) for t in warehouse.TABLES)

        with warehouse.connect() as con:
            fill(con, SCALES[scale])
            n = warehouse.table_counts(con)["events"]
            seconds, _ = timed(lambda: eventstore.publish(con))
            report.add("first publish (every table written)", n, seconds, round(n / seconds), files())
            seconds, _ = timed(lambda: eventstore.publish(con), repeat=2)
            report.add("commit, nothing changed (fingerprints only)", n, seconds, round(n / seconds), files())
            seconds, _ = timed(lambda: eventstore.publish(con, "bench-empty"), repeat=2)
            report.add("commit of a batch that added nothing", n, seconds, "", files())
            con.execute(NEW_BATCH)
            seconds, _ = timed(lambda: eventstore.publish(con, "bench-new"))
            report.add(f"commit of a {BATCH:,}-event batch (appended)", n + BATCH, seconds, "", files())
            con.execute(
                "UPDATE events SET person_id = person_id + 1 WHERE CAST(ts AS DATE) = DATE '2026-08-01'"
            )
            seconds, _ = timed(lambda: eventstore.publish(con))
            report.add("commit after a merge touching one day (rewritten)", n + BATCH, seconds, "", files())
            query = "SELECT channel, count(*), count(DISTINCT person_id) FROM events GROUP BY channel"
            seconds, expected = timed(lambda: con.execute(query).fetchall(), repeat=2)
            report.add("scan by channel: warehouse", n + BATCH, seconds, round((n + BATCH) / seconds), "")
        with eventstore.duckdb_reader() as store:
            seconds, got = timed(lambda: store.execute(query).fetchall(), repeat=2)
            assert sorted(got) == sorted(expected)
            report.add(
                "scan by channel: event store (DuckDB)", n + BATCH, seconds, round((n + BATCH) / seconds), ""
            )
        os.environ.pop("LIEBIAN_EVENT_STORE")
        reset_settings_cache()
    report.notes.append(
        f"Best of 2 where repeated; peak RSS {peak_rss_mib():.0f} MiB. A full commit (no batch id: `sync-store`, merges, erasure, "
        "retention) reads a fingerprint (count and sum of row hashes per day) of every warehouse table; a batch's "
        "commit fingerprints events and messages only on the days its rows went to (and the smaller tables in "
        "full), then writes only the new rows and the changed days. The first line is the one-off "
        "`liebian analyze sync-store` of an existing warehouse. Wall-clock times on a machine shared with other "
        "jobs."
    )
    return report
