"""OneID backfill on Spark: resolve a large history of identity evidence into persons, with the
same person ids as the embedded path (`service.link`, which `liebian import identities` runs).

The history is a file (CSV or Parquet, a directory or a glob) of
- pairs, the identities import's columns: id_type_a, id_a, id_type_b, id_b [, ts] [, source]; or
- observations: one column per identifier type (unionid, openid, phone, …) [, ts] [, source];
  each row links its first present identifier (in `keys.ID_TYPES` order) to every other one.

On Spark (`spark_session()`, local or a cluster):
1. Raw values become stored keys with the embedded `keys.stored_value` (phones: HMAC), and new
   identifiers their founding id with `keys.person_id_for` — the same functions, in pandas UDFs.
   Rows with an unusable identifier are rejected as the importer rejects them; a pair given twice
   counts once (the first row), as in `ingest.load.load_identities`.
2. Each identifier starts at its person: the one the registry holds it under, or the founding id
   of a new one (salted on a collision exactly as `service._found_persons` salts: the smaller key
   keeps an id two new keys share; an id already taken in `persons` is salted).
3. Connected components over the person graph by min-label propagation (iterative DataFrame joins,
   with pointer jumping; `localCheckpoint` cuts the lineage every round). The survivor of a merge
   is the smaller person id, so a component that merges entirely ends as its smallest person id.
4. A component whose identifiers hold two different values of a singular type (two unionids, …)
   is one where `link()`'s outcome depends on the evidence order (conflicts merge nothing): its
   evidence goes through `service.link` itself, in the store transaction (rare by nature).

The store is written as `link()` writes it: new persons and identifiers through `staging`, every
piece of evidence in identity_links with its outcome (merged / already_same, decided in the
evidence order link() uses), the merge log, tombstones and re-pointed identifiers (`_apply_merges`,
with its merge followers); then the warehouse sync and the Parquet event store commit, as after
an identities import — so every later analysis sees the new identity map.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from liebian.config import reset_settings_cache
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import eventstore, warehouse
from liebian.engine.spark import spark_session
from liebian.errors import Invalid
from liebian.identity import service, staging
from liebian.identity.keys import (
    DIRECT_TYPES,
    ID_TYPES,
    SINGULAR_TYPES,
    IdentifierError,
    assign_person_ids,
    check_id_type,
    display_value,
    person_id_for,
    stored_value,
)
from liebian.lazy import lazy_import
from liebian.privacy.crypto import encrypt, keys

if TYPE_CHECKING:
    import pandas as pd
    from pyspark.sql import DataFrame, SparkSession
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    pd = lazy_import("pandas")

log = logging.getLogger(__name__)

PAIR_COLUMNS = ("id_type_a", "id_a", "id_type_b", "id_b")
MAX_ROUNDS = 64  # label propagation with pointer jumping needs about log2(longest chain) rounds
PROBE = ("phone", "13800138000")  # checks that the executors hash as the driver does


class BackfillError(Invalid):
    """The history cannot be backfilled as given (the message says why)."""

    def __init__(self, message: str, field: str = "history"):
        super().__init__("invalid", message, field=field)


@dataclass
class BackfillReport:
    rows: int = 0  # rows read
    rejected: int = 0  # rows with an unusable identifier
    evidence: int = 0  # distinct pairs linked
    new_identifiers: int = 0
    merged: int = 0
    already_same: int = 0
    conflicts: int = 0
    conflict_components: int = 0  # components resolved by link() itself (order-dependent)
    rounds: int = 0  # label-propagation rounds


# ---------------------------------------------------------------- the embedded functions, as UDFs


def _use_hmac_key(hmac_hex: str) -> None:
    """In an executor's Python worker: hash with the driver's HMAC key, whatever its settings say.
    Only the HMAC key travels; a throwaway encryption key keeps `crypto` from reading or creating a
    key file there (nothing is encrypted on the executors)."""
    if os.environ.get("LIEBIAN_HMAC_KEY") != hmac_hex:
        os.environ["LIEBIAN_HMAC_KEY"] = hmac_hex
        os.environ["LIEBIAN_ENCRYPTION_KEY"] = os.urandom(32).hex()
        reset_settings_cache()


def _stored_key(id_type: Any, raw: Any) -> tuple[str | None, str | None]:
    """(id_type, stored value) as `service.key_of` gives it, or (None, None) when unusable."""
    try:
        kind = check_id_type(str(id_type or ""))
        return kind, stored_value(kind, raw)
    except IdentifierError:
        return None, None


def _udfs(hmac_hex: str) -> tuple[Any, Any]:
    # deferred: PySpark is optional (the spark extra)
    from pyspark.sql.functions import pandas_udf

    @pandas_udf("id_type string, id_value string")  # type: ignore[call-overload]
    def stored_udf(types: pd.Series, raws: pd.Series) -> pd.DataFrame:
        _use_hmac_key(hmac_hex)
        pairs = [_stored_key(t, r) for t, r in zip(types, raws, strict=True)]
        return pd.DataFrame(pairs, columns=["id_type", "id_value"], dtype=object)

    @pandas_udf("long")  # type: ignore[call-overload]
    def person_id_udf(types: pd.Series, values: pd.Series) -> pd.Series:
        return pd.Series([person_id_for(t, v) for t, v in zip(types, values, strict=True)], dtype="int64")

    return stored_udf, person_id_udf


def _check_executors(spark: SparkSession, stored_udf: Any, person_id_udf: Any) -> None:
    """The executors must derive the very keys and ids the driver does (same code, same key)."""
    probe = spark.createDataFrame([PROBE], "t string, r string").select(stored_udf("t", "r").alias("k"))
    row = probe.select("k.id_type", "k.id_value", person_id_udf("k.id_type", "k.id_value").alias("p"))
    got = tuple(row.first() or ())
    key = (PROBE[0], stored_value(*PROBE))
    if got != (*key, person_id_for(*key)):  # pragma: no cover - a misconfigured cluster
        raise BackfillError("the Spark executors hash identifiers differently from this process")


# ---------------------------------------------------------------- reading the history


def _reader(spark: SparkSession, path: str) -> DataFrame:
    if path.rstrip("/").endswith(".parquet") or (Path(path).is_dir() and any(Path(path).glob("*.parquet"))):
        return spark.read.parquet(path)
    return spark.read.option("header", True).option("inferSchema", False).csv(path)


def read_history(spark: SparkSession, path: str) -> DataFrame:
    """(line, type_a, raw_a, type_b, raw_b, ts, source) from a pairs or an observations file."""
    from pyspark.sql import functions as F  # deferred: optional dependency

    frame = _reader(spark, path)
    cols = {c.lower(): c for c in frame.columns}
    frame = frame.withColumn("line", F.monotonically_increasing_id())
    ts = F.to_timestamp_ntz(F.col(cols["ts"]).cast("string")) if "ts" in cols else F.lit(None)
    source = F.col(cols["source"]).cast("string") if "source" in cols else F.lit(None).cast("string")
    if all(c in cols for c in PAIR_COLUMNS):
        return frame.select(
            "line",
            F.col(cols["id_type_a"]).cast("string").alias("type_a"),
            F.col(cols["id_a"]).cast("string").alias("raw_a"),
            F.col(cols["id_type_b"]).cast("string").alias("type_b"),
            F.col(cols["id_b"]).cast("string").alias("raw_b"),
            ts.cast("timestamp_ntz").alias("ts"),
            source.alias("source"),
        )
    present = [t for t in ID_TYPES if t in cols]
    if len(present) < 2:
        raise BackfillError(
            f"expected the columns {', '.join(PAIR_COLUMNS)}, or two or more of {', '.join(ID_TYPES)}"
        )
    # Observations: the present identifiers of a row in ID_TYPES order; the first links to each other.
    ids = F.filter(
        F.array(*[F.struct(F.lit(t).alias("t"), F.col(cols[t]).cast("string").alias("r")) for t in present]),
        lambda s: s["r"].isNotNull() & (F.trim(s["r"]) != ""),
    )
    pairs = frame.select(
        "line", ts.cast("timestamp_ntz").alias("ts"), source.alias("source"), ids.alias("ids")
    )
    pairs = pairs.select(
        "line", "ts", "source", F.col("ids")[0].alias("a"), F.posexplode(F.slice("ids", 2, len(present)))
    )
    return pairs.select(
        (F.col("line") * len(present) + F.col("pos")).alias("line"),
        F.col("a.t").alias("type_a"),
        F.col("a.r").alias("raw_a"),
        F.col("col.t").alias("type_b"),
        F.col("col.r").alias("raw_b"),
        "ts",
        "source",
    )


# ---------------------------------------------------------------- the registry, on Spark


def _registry(spark: SparkSession, session) -> tuple[DataFrame, DataFrame]:
    """(identifiers: id_type, id_value, person_id) and (persons: id) of the store, as DataFrames."""
    conn = session.connection()
    idents = pd.DataFrame(
        conn.exec_driver_sql("SELECT id_type, id_value, person_id FROM identifiers").fetchall(),
        columns=["id_type", "id_value", "person_id"],
    )
    persons = pd.DataFrame(conn.exec_driver_sql("SELECT id FROM persons").fetchall(), columns=["id"])
    return (
        spark.createDataFrame(
            idents.astype({"person_id": "int64"}), "id_type string, id_value string, person_id long"
        ),
        spark.createDataFrame(persons.astype({"id": "int64"}), "id long"),
    )


def _founding_ids(new: DataFrame, persons: DataFrame, person_id_udf: Any) -> DataFrame:
    """new keys (id_type, id_value, raw) + person_id: their founding ids, salted as
    `service._found_persons` salts (sorted keys; an id shared or already taken moves)."""
    from pyspark.sql import functions as F  # deferred: optional dependency

    wanted = new.withColumn("person_id", person_id_udf("id_type", "id_value")).localCheckpoint()
    shared = wanted.groupBy("person_id").count().where("count > 1").select("person_id")
    taken = wanted.join(persons, wanted.person_id == persons.id, "left_semi").select("person_id")
    clashing = wanted.join(shared.union(taken).distinct(), "person_id", "left_semi")
    rows = sorted(clashing.select("id_type", "id_value", "person_id").collect())
    if not rows:
        return wanted
    store_taken = {r.person_id for r in taken.collect()}
    moved = assign_person_ids({(r.id_type, r.id_value): r.person_id for r in rows}, set(store_taken))
    fixes = wanted.sparkSession.createDataFrame(
        [(t, v, p) for (t, v), p in moved.items()], "id_type string, id_value string, fixed long"
    )
    out = wanted.join(fixes, ["id_type", "id_value"], "left").select(
        "id_type", "id_value", "raw", F.coalesce("fixed", "person_id").alias("person_id")
    )
    salted = {p for (k, p) in moved.items() if p != person_id_for(*k)}
    if salted and wanted.where(F.col("person_id").isin(list(salted))).count():  # pragma: no cover
        raise BackfillError("a salted person id equals another new identifier's: backfill again")
    return out.localCheckpoint()


def components(edges: DataFrame, max_rounds: int = MAX_ROUNDS) -> tuple[DataFrame, int]:
    """(vertex, label): each vertex of `edges` (src, dst: longs) labelled with the smallest vertex
    of its connected component; and the number of rounds it took.

    Each round: a vertex takes the smallest label among itself and its neighbours, then the label
    of its label (pointer jumping, which halves the distance to the minimum). Labels are always
    vertices of the same component and never grow, so the fixpoint is the component's minimum."""
    from pyspark.sql import functions as F  # deferred: optional dependency

    both = edges.select("src", "dst").union(
        edges.select(F.col("dst").alias("src"), F.col("src").alias("dst"))
    )
    both = both.distinct().localCheckpoint()
    labels = both.select(F.col("src").alias("vertex")).distinct().withColumn("label", F.col("vertex"))
    labels = labels.localCheckpoint()
    for rounds in range(1, max_rounds + 1):
        nbr = (
            both.join(labels.withColumnRenamed("vertex", "src"), "src")
            .groupBy("dst")
            .agg(F.min("label").alias("m"))
        )
        step = labels.join(nbr.withColumnRenamed("dst", "vertex"), "vertex", "left").select(
            "vertex", F.least("label", F.coalesce("m", "label")).alias("label")
        )
        hop = step.select(F.col("vertex").alias("label"), F.col("label").alias("hop"))
        step = step.join(hop, "label", "left").select(
            "vertex", F.least("label", F.coalesce("hop", "label")).alias("label")
        )
        step = step.localCheckpoint()
        changed = step.join(labels.withColumnRenamed("label", "old"), "vertex").where("label <> old").count()
        labels = step
        log.info("backfill: round %d, %d labels changed", rounds, changed)
        if not changed:
            return labels, rounds
    raise BackfillError(f"the identity graph did not converge in {max_rounds} rounds")  # pragma: no cover


# ---------------------------------------------------------------- the whole backfill


def _conflicting(identifiers: DataFrame, start: DataFrame, labels: DataFrame) -> DataFrame:
    """(label, conflict): the components holding two values of a singular type, counting the
    identifiers of the history and those the registry already holds for the persons involved."""
    from pyspark.sql import functions as F  # deferred: optional dependency

    touched = start.select("person_id").distinct()
    held = identifiers.join(touched, "person_id", "left_semi").select("id_type", "id_value", "person_id")
    held = held.unionByName(start)
    singular = held.where(F.col("id_type").isin(*sorted(SINGULAR_TYPES))).distinct()
    singular = singular.join(labels, singular.person_id == labels.vertex)
    return (
        singular.groupBy("label", "id_type").agg(F.countDistinct("id_value").alias("n")).where("n > 1")
        .select("label").distinct().withColumn("conflict", F.lit(True))
    )  # fmt: skip


@dataclass
class _Plan:
    new: DataFrame  # id_type, id_value, raw, person_id (founding)
    evidence: DataFrame  # line, ka/kb keys, raws, ts, source, pa, pb, label, conflict
    merges: DataFrame  # vertex, label: persons merged away in components without a conflict
    report: BackfillReport


def plan(spark: SparkSession, session, path: str) -> _Plan:
    """Everything but the writes: keys, founding ids, components, conflicting components."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F  # deferred: optional dependency

    spark.conf.set("spark.sql.execution.arrow.pyspark.enabled", "true")
    stored_udf, person_id_udf = _udfs(keys().hmac_key.hex())
    _check_executors(spark, stored_udf, person_id_udf)
    report = BackfillReport()
    raw = read_history(spark, path).localCheckpoint()
    report.rows = raw.count()
    log.info("backfill: %d rows read", report.rows)

    sides = raw.select(F.col("type_a").alias("t"), F.col("raw_a").alias("r"))
    sides = sides.union(raw.select("type_b", "raw_b")).where("t IS NOT NULL AND r IS NOT NULL").distinct()
    keyed = sides.select("t", "r", stored_udf("t", "r").alias("k")).select(
        "t", "r", "k.id_type", "k.id_value"
    )
    keyed = keyed.where("id_value IS NOT NULL").localCheckpoint()

    def side(s: str) -> DataFrame:
        return keyed.select(
            F.col("t").alias(f"type_{s}"),
            F.col("r").alias(f"raw_{s}"),
            F.col("id_type").alias(f"t{s}"),
            F.col("id_value").alias(f"v{s}"),
        )

    ev = raw.join(side("a"), ["type_a", "raw_a"]).join(side("b"), ["type_b", "raw_b"]).localCheckpoint()
    report.rejected = report.rows - ev.count()  # a side missing, of an unknown type or unusable
    ka = F.struct(F.col("ta").alias("t"), F.col("va").alias("v"))
    kb = F.struct(F.col("tb").alias("t"), F.col("vb").alias("v"))
    ev = ev.withColumn("lo", F.least(ka, kb)).withColumn("hi", F.greatest(ka, kb))
    first = Window.partitionBy("lo", "hi").orderBy("line")
    ev = ev.withColumn("n", F.row_number().over(first)).where("n = 1").drop("n").localCheckpoint()
    report.evidence = ev.count()
    log.info("backfill: %d pieces of evidence, %d rows rejected", report.evidence, report.rejected)

    keys_all = ev.select(
        F.col("ta").alias("id_type"), F.col("va").alias("id_value"), F.col("raw_a").alias("raw")
    )
    keys_all = keys_all.union(ev.select("tb", "vb", "raw_b"))
    keys_all = keys_all.groupBy("id_type", "id_value").agg(
        F.when(F.col("id_type").isin(*sorted(DIRECT_TYPES)), F.min("raw")).alias("raw")
    )
    identifiers, persons = _registry(spark, session)
    new = keys_all.join(identifiers, ["id_type", "id_value"], "left_anti")
    new = _founding_ids(new, persons, person_id_udf)
    report.new_identifiers = new.count()
    log.info("backfill: %d new identifiers", report.new_identifiers)
    start = (
        new.select("id_type", "id_value", "person_id")
        .union(identifiers.join(keys_all, ["id_type", "id_value"], "left_semi"))
        .localCheckpoint()
    )

    def person_of(s: str) -> DataFrame:
        t, v = ("ta", "va") if s == "a" else ("tb", "vb")
        return start.select(
            F.col("id_type").alias(t), F.col("id_value").alias(v), F.col("person_id").alias(f"p{s}")
        )

    ev = ev.join(person_of("a"), ["ta", "va"]).join(person_of("b"), ["tb", "vb"])
    edges = ev.where("pa <> pb").select(F.col("pa").alias("src"), F.col("pb").alias("dst"))
    labels, report.rounds = components(edges)
    log.info("backfill: components in %d rounds", report.rounds)

    conflict = _conflicting(identifiers, start, labels)
    report.conflict_components = conflict.count()
    ev = (
        ev.join(labels, ev.pa == labels.vertex, "left")
        .withColumn("label", F.coalesce("label", "pa"))
        .drop("vertex")
    )
    ev = ev.join(conflict, "label", "left").withColumn("conflict", F.coalesce("conflict", F.lit(False)))
    plain = labels.join(conflict, "label", "left_anti").where("vertex <> label")
    return _Plan(new, ev.localCheckpoint(), plain.select("vertex", "label"), report)


def _local(frame: DataFrame) -> Iterator:
    return frame.toLocalIterator(prefetchPartitions=True)


def _found(conn, new: DataFrame, seen: Any) -> int:
    """New persons and identifiers through `staging` (ciphertext and display made here)."""

    def rows() -> Iterator[tuple]:
        for t, v, r, pid in _local(new.select("id_type", "id_value", "raw", "person_id")):
            direct = r is not None and t in DIRECT_TYPES
            disp = display_value(t, r) if direct else service._display_of_key((t, v))
            yield (t, v, pid, encrypt(r) if direct else None, disp)

    staging.tune_sqlite(conn)
    staging.stage_rows(conn, rows())
    n = conn.exec_driver_sql("SELECT count(*) FROM bulk_new").scalar_one()
    if staging.insert_persons(conn, seen) != n or staging.insert_identifiers(conn, "backfill", seen) != n:
        raise BackfillError("another writer registered some of these identifiers meanwhile: backfill again")
    conn.exec_driver_sql("DELETE FROM bulk_new")
    staging.analyze_after_bulk(conn)
    return n


def _link_plain(session, p: _Plan) -> None:
    """Evidence of components without a singular conflict: link()'s loop without conflicts (in its
    evidence order, so outcomes and the merge log are link()'s), the final persons from Spark."""
    from pyspark.sql import functions as F  # deferred: optional dependency

    # link()'s order: observed time (none first), the sorted pair, the source
    ordered = p.evidence.where("NOT conflict").orderBy(
        F.col("ts").asc_nulls_first(), "lo", "hi", F.coalesce("source", F.lit("backfill"))
    )
    parent: dict[int, int] = {}

    def find(x: int) -> int:
        root = x
        while parent.get(root, root) != root:
            root = parent[root]
        while x != root:  # path compression
            parent[x], x = root, parent[x]
        return root

    link_rows, merge_rows, now = [], [], utcnow()
    cols = ("ta", "va", "tb", "vb", "pa", "pb", "ts", "source")
    for ta, va, tb, vb, pa, pb, ts, source in _local(ordered.select(*cols)):
        ra, rb = find(pa), find(pb)
        outcome = "already_same" if ra == rb else "merged"
        if outcome == "merged":
            survivor, merged = min(ra, rb), max(ra, rb)
            parent[merged] = survivor
            merge_rows.append(((ta, va, tb, vb), survivor, merged))
            p.report.merged += 1
        else:
            p.report.already_same += 1
        link_rows.append({"id_type_a": ta, "id_value_a": va, "id_type_b": tb, "id_value_b": vb,
                          "source": (source or "backfill")[:64], "observed_at": ts or now,
                          "outcome": outcome, "detail": ""})  # fmt: skip
    merge_link = service._insert_links(session, link_rows)
    final = {int(v): int(lab) for v, lab in _local(p.merges)}
    if any(find(v) != lab for v, lab in final.items()) or len(final) != p.report.merged:  # pragma: no cover
        raise BackfillError("the components found on Spark and the evidence order disagree")
    service._apply_merges(session, [(s, m, merge_link[pair]) for pair, s, m in merge_rows], final)


def _link_conflicting(session, p: _Plan) -> None:
    rows = p.evidence.where("conflict").select("ta", "va", "raw_a", "tb", "vb", "raw_b", "ts", "source")
    evidence = [
        service.LinkEvidence(
            service.RawIdentifier(ta, ra) if ta in DIRECT_TYPES else (ta, va),
            service.RawIdentifier(tb, rb) if tb in DIRECT_TYPES else (tb, vb),
            source=(source or "backfill")[:64],
            observed_at=ts,
        )
        for ta, va, ra, tb, vb, rb, ts, source in rows.collect()
    ]
    if evidence:
        report = service.link(session, evidence)
        p.report.merged += report.merged
        p.report.already_same += report.already_same
        p.report.conflicts += len(report.conflicts)


def backfill(path: str, spark: SparkSession | None = None) -> BackfillReport:
    """Resolve the history at `path` into persons on Spark and write them to the store, the
    warehouse's identity map and the event store (see the module docstring)."""
    spark = spark or spark_session()
    with session_scope() as session:
        p = plan(spark, session, path)
        conn = session.connection()
        if p.report.new_identifiers:
            _found(conn, p.new, staging.stamp(conn, utcnow()))
        _link_plain(session, p)
        _link_conflicting(session, p)
    with session_scope() as session, warehouse.connect() as con:
        service.sync_warehouse(session, con)
        eventstore.commit(con)  # merges replayed: the Parquet store rewrites the affected days
    return p.report


def report_dict(report: BackfillReport) -> dict[str, int]:
    return asdict(report)
