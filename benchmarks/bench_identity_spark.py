"""OneID backfill on Spark (issue #24) against the embedded path on the same history.

Scales: "2k" (smoke), "5k" (default), "20k" evidence pairs; persons of four identifiers (unionid ~
openid ~ phone ~ device, linked as a chain), so components need several rounds. The embedded path
is what an identities import runs (`service.link` of every pair, then the warehouse sync); the Spark
path is `backfill_spark.backfill` on local[2]. Both on the SQLite store; both must give the same
identifier → person map (checked). CPU: the driver's process time, and the JVM's (its /proc stat).
"""

from __future__ import annotations

import csv
import os
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.common import Report, peak_rss_mib

SCALES = {"2k": 2_000, "5k": 5_000, "20k": 20_000}


def _jvm_cpu_s(spark) -> float:
    pid = spark.sparkContext._jvm.java.lang.ProcessHandle.current().pid()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _store(root: Path) -> None:
    from liebian.config import reset_settings_cache
    from liebian.db import migrate
    from liebian.db.session import dispose_engines

    dispose_engines()
    os.environ["LIEBIAN_DATA_DIR"] = str(root)
    os.environ.pop("LIEBIAN_DATABASE_URL", None)
    reset_settings_cache()
    migrate.upgrade()


def _map() -> dict:
    from sqlalchemy import select

    from liebian.db.session import session_scope
    from liebian.identity.models import Identifier

    with session_scope() as session:
        return dict(
            ((t, v), p)
            for t, v, p in session.execute(
                select(Identifier.id_type, Identifier.id_value, Identifier.person_id)
            )
        )


def run(scale: str = "") -> Report:
    scale = scale or "5k"
    if scale not in SCALES:
        sys.exit(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
    pairs = SCALES[scale]
    from liebian import ports
    from liebian.db.session import session_scope
    from liebian.engine import warehouse
    from liebian.engine.spark import spark_session
    from liebian.identity import backfill_spark, service

    os.environ.setdefault("LIEBIAN_HMAC_KEY", "ab" * 32)
    os.environ.setdefault("LIEBIAN_ENCRYPTION_KEY", "cd" * 32)
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    chain = [("unionid", "u{}"), ("openid", "o{}"), ("phone", "139{:08d}"), ("device_id", "d{}")]
    rows = [
        (a[0], a[1].format(i), b[0], b[1].format(i))
        for i in range(pairs // 3)
        for a, b in zip(chain, chain[1:], strict=False)
    ]
    report = Report(
        title="OneID backfill: Spark against the embedded path",
        scale=scale,
        columns=["path", "pairs", "wall s", "driver CPU s", "JVM CPU s", "identifiers", "persons"],
    )
    with tempfile.TemporaryDirectory(prefix="bench-identity-spark-") as tmp:
        history = Path(tmp) / "identities.csv"
        with history.open("w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow(["id_type_a", "id_a", "id_type_b", "id_b"])
            w.writerows(rows)
        _store(Path(tmp) / "embedded")
        wall, cpu = time.perf_counter(), time.process_time()
        evidence = [
            service.LinkEvidence(service.RawIdentifier(ta, a), service.RawIdentifier(tb, b))
            for ta, a, tb, b in rows
        ]
        with ports.use(ports.Wiring()), session_scope() as session:
            service.link(session, evidence)
        with session_scope() as session, warehouse.connect() as con:
            service.sync_warehouse(session, con)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        embedded = _map()
        report.add(
            "embedded (link + sync)", len(rows), wall, cpu, 0.0, len(embedded), len(set(embedded.values()))
        )

        spark = spark_session()
        spark.range(1).count()  # the JVM started and warm: not the backfill's cost
        _store(Path(tmp) / "spark")
        wall, cpu, jvm = time.perf_counter(), time.process_time(), _jvm_cpu_s(spark)
        with ports.use(ports.Wiring()):
            result = backfill_spark.backfill(str(history), spark)
        wall, cpu, jvm = time.perf_counter() - wall, time.process_time() - cpu, _jvm_cpu_s(spark) - jvm
        got = _map()
        assert got == embedded, "the Spark backfill and the embedded path disagree"
        report.add(
            f"spark local[2] ({result.rounds} rounds)",
            len(rows),
            wall,
            cpu,
            jvm,
            len(got),
            len(set(got.values())),
        )
    report.notes.append(
        f"Same map from both paths (checked). 1-minute load average {os.getloadavg()[0]:.1f} on a shared machine; "
        f"Python workers' CPU is not included in either CPU column. Peak RSS {peak_rss_mib():.0f} MiB."
    )
    return report
