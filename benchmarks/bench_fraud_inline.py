"""The inline rules' facts from imported data: learning them on import, and reading them per accept.

- sync: N imported events (device and address on each; 1 device per 4 events, 1 address per 20)
  in the warehouse, read into `fraud_known_uses` by `fraud.known.sync` (what an import's follower
  does after the batch commits).
- check: `fraud.inline.inline_check` for an accept (every rule, one statement of counts, the
  sighting recorded), on the store with an empty known-uses table and then with it filled,
  half the calls on a device and an address it holds. The lookups are index reads
  (`ix_fraud_known_uses_value`): the per-accept time must not grow with the table.

`python -m benchmarks fraud_inline [--scale small|1M]` (default 1M imported events).
"""

from __future__ import annotations

import os
import random
import statistics
import sys
import tempfile
import time
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from benchmarks.common import Report, postgres_url, timed

SCALES = {"small": 100_000, "1M": 1_000_000}
CHECKS = 500


def _fill_warehouse(n: int) -> None:
    from liebian.engine import warehouse

    with warehouse.connect() as con:
        con.execute(
            f"""
            INSERT INTO events
            SELECT 'e' || i, TIMESTAMP '2026-11-01' + to_seconds(i % 2592000), 1000 + i % ({n} // 2),
                   'openid', 'o' || (i % ({n} // 2)), 'view', 'app', NULL, NULL, NULL,
                   'DEV-' || (i // 4), '10.' || (i // 20 % 250) || '.' || (i // 5000 % 250) || '.' || (i % 250),
                   NULL, NULL, 'bench', now()::TIMESTAMP
            FROM range({n}) t(i)
            """
        )


def _checks(known_hits: bool) -> list[float]:
    from liebian.campaigns.schemas import CampaignRules
    from liebian.db.session import session_scope
    from liebian.fraud import inline
    from liebian.risk import RiskContext

    rules = CampaignRules.model_validate(
        {"type": "double_sided", "title": "t", "inviter_reward": {"code": "I", "value_fen": 1}}
    )
    rng = random.Random(7)
    times = []
    for k in range(CHECKS):
        hit = known_hits and k % 2 == 0
        device = f"DEV-{rng.randrange(1000)}" if hit else f"NEW-{uuid.uuid4().hex[:12]}"
        ip = f"10.{rng.randrange(250)}.0.{rng.randrange(250)}" if hit else f"172.16.{k % 250}.{k // 250}"
        ctx = RiskContext(stage="accept", campaign_id="bench", version=1, rules=rules, inviter=10**9 + k % 50,
                          friend=2 * 10**9 + k, device_id=device, ip=ip, user_agent=f"UA {k % 7}",
                          ts=datetime(2026, 12, 1) + timedelta(seconds=k))  # fmt: skip
        with session_scope() as s:
            start = time.perf_counter()
            inline.inline_check(s, ctx)
            times.append((time.perf_counter() - start) * 1000)
    return times


def _measure(report: Report, store: str, n: int) -> None:
    from sqlalchemy import func, select

    from liebian.db.session import session_scope
    from liebian.engine import warehouse
    from liebian.fraud import known
    from liebian.fraud.models import FraudKnownUse

    def row(what: str, times: list[float]) -> None:
        times = sorted(times)
        report.add(store, what, len(times), statistics.median(times), times[int(len(times) * 0.99) - 1])

    row("inline_check, known uses empty", _checks(False))
    seconds, _ = timed(lambda: _sync(known, warehouse, session_scope))
    with session_scope() as s:
        rows = s.scalar(select(func.count()).select_from(FraudKnownUse)) or 0
    report.add(store, f"sync {n:,} imported events → {rows:,} known uses", 1, seconds * 1000, "")
    row(f"inline_check, {rows:,} known uses (half the calls hit)", _checks(True))


def _sync(known: Any, warehouse: Any, session_scope: Any) -> int:
    with warehouse.connect() as con, session_scope() as session:
        return int(known.sync(session, con))


def run(scale: str = "") -> Report:
    scale = scale or "1M"
    if scale not in SCALES:
        sys.exit(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    n = SCALES[scale]
    report = Report(
        title="Anti-fraud inline facts: known devices and addresses from imports",
        scale=scale,
        columns=["store", "operation", "count", "p50 ms", "p99 ms"],
    )
    from liebian.config import reset_settings_cache
    from liebian.db import migrate
    from liebian.db.session import dispose_engines

    stores = [("sqlite", "")] + ([("postgresql", postgres_url())] if postgres_url() else [])
    for store, pg in stores:
        with tempfile.TemporaryDirectory(prefix="bench-fraud-inline-") as tmp:
            os.environ["LIEBIAN_DATA_DIR"] = str(Path(tmp) / "data")
            os.environ.pop("LIEBIAN_DATABASE_URL", None)
            schema = f"bench_{uuid.uuid4().hex[:10]}"
            admin = None
            if pg:
                from sqlalchemy import create_engine, text

                admin = create_engine(pg, isolation_level="AUTOCOMMIT")
                with admin.connect() as c:
                    c.execute(text(f'CREATE SCHEMA "{schema}"'))
                os.environ["LIEBIAN_DATABASE_URL"] = (
                    f"{pg}{'&' if '?' in pg else '?'}options=-csearch_path%3D{schema}"
                )
            reset_settings_cache()
            dispose_engines()
            try:
                migrate.upgrade()
                _fill_warehouse(n)
                _measure(report, store, n)
            finally:
                dispose_engines()
                os.environ.pop("LIEBIAN_DATABASE_URL", None)
                if admin is not None:
                    with admin.connect() as c:
                        c.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                    admin.dispose()
    report.notes.append(
        "Per accept, the known uses add three index reads (device and address by `kind, value_hash, "
        "last_seen`) to the one statement of counts; the sync is one DuckDB aggregation over the new "
        "events (keyed HMAC and time formatting vectorised there) plus upserts in key order through the "
        "driver (50,000 rows a statement). The synthetic events are a worst case for the sync: nearly every "
        "event is a new (device, person) and (address, person) pair."
    )
    return report
