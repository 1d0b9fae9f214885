"""OneID: linking evidence in bulk (one `link()` call, as an identities import does) and the
warehouse sync that follows, on the SQLite store (and PostgreSQL when a PostgreSQL URL is set: common.postgres_url).

Scales: "5k" (smoke), "20k" (default), "100k" evidence pairs; every pair merges two new persons
(unionid ~ phone), the expensive case: hashing, encryption, founding, merging, logging.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from benchmarks.common import Report, peak_rss_mib, postgres_url

SCALES = {"5k": 5_000, "20k": 20_000, "100k": 100_000}


def _one(store: str, url: str | None, pairs: int, tmp: Path) -> list:
    from liebian import ports
    from liebian.config import reset_settings_cache
    from liebian.db import migrate
    from liebian.db.session import dispose_engines, session_scope
    from liebian.engine import warehouse
    from liebian.identity import service

    os.environ["LIEBIAN_DATA_DIR"] = str(tmp / store)
    os.environ.pop("LIEBIAN_DATABASE_URL", None)
    schema = None
    if url:
        from sqlalchemy import create_engine, text

        schema = f"bench_{uuid.uuid4().hex[:8]}"
        engine = create_engine(url, isolation_level="AUTOCOMMIT")
        with engine.connect() as c:
            c.execute(text(f'CREATE SCHEMA "{schema}"'))
        engine.dispose()
        os.environ["LIEBIAN_DATABASE_URL"] = (
            f"{url}{'&' if '?' in url else '?'}options=-csearch_path%3D{schema}"
        )
    reset_settings_cache()
    dispose_engines()
    migrate.upgrade()
    try:
        evidence = [
            service.LinkEvidence(
                service.RawIdentifier("unionid", f"u{i}"), service.RawIdentifier("phone", f"138{i:08d}")
            )
            for i in range(pairs)
        ]
        start = time.perf_counter()
        # the registry alone: a wiring without merge followers (other domains' are theirs to measure)
        with ports.use(ports.Wiring()), session_scope() as session:
            report = service.link(session, evidence)
        link_s = time.perf_counter() - start
        start = time.perf_counter()
        with session_scope() as session, warehouse.connect() as con:
            synced = service.sync_warehouse(session, con)
        sync_s = time.perf_counter() - start
    finally:
        dispose_engines()
        if schema:
            from sqlalchemy import create_engine, text

            engine = create_engine(url, isolation_level="AUTOCOMMIT")
            with engine.connect() as c:
                c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
            engine.dispose()
    assert report.merged == pairs and synced["merges_applied"] == pairs
    return [store, pairs, link_s, round(pairs / link_s), sync_s, synced["identifiers_added"]]


def run(scale: str = "") -> Report:
    scale = scale or "20k"
    if scale not in SCALES:
        sys.exit(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    pairs = SCALES[scale]
    report = Report(
        title="OneID bulk linking",
        scale=scale,
        columns=["store", "pairs", "link s", "pairs/s", "warehouse sync s", "identifiers synced"],
    )
    with tempfile.TemporaryDirectory(prefix="bench-identity-") as tmp:
        report.add(*_one("sqlite", None, pairs, Path(tmp)))
        pg = postgres_url()
        if pg:
            report.add(*_one("postgresql", pg, pairs, Path(tmp)))
    if len(report.rows) == 2:
        (sqlite_rate, pg_rate) = (row[3] for row in report.rows)
        report.notes.append(
            f"PostgreSQL links at {pg_rate / sqlite_rate:.0%} of SQLite's rate (issue #23: 273 against 4,541 pairs/s "
            "before thousands of new identifiers, links and merges went through COPY and a temporary table "
            f"instead of statements of hundreds of parameters). 1-minute load average {os.getloadavg()[0]:.1f}."
        )
    report.notes.append(
        f"Each pair founds two persons and merges them (phone HMAC + AES-GCM, identity_links and the merge "
        f"log written in batches). Other domains' merge followers are not included. PostgreSQL runs on fresh tables "
        f"(statistics only from the ANALYZE after each bulk step). Peak RSS {peak_rss_mib():.0f} MiB."
    )
    return report
