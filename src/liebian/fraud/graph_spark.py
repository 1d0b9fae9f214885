"""The fraud graph scan on Spark, for graphs that outgrow one process.

It reads the event store (`LIEBIAN_EVENT_STORE`, the partitioned Parquet dataset both engines read)
and extracts the same features as the embedded scan (graph.py, graph_patterns.py) with Spark SQL
and DataFrames: identifier links, connected components of the shared-identifier graph, cycles
(strongly connected components of the referral graph), invitee activity, farms, stars, chains and
cross-inviter clusters. The feature tables (graph.FEATURE_TABLES: detected farms, stars, chains,
clusters, cycles, per-inviter anomaly features, the referrals and the identifiers their two ends
share) come back to the driver and go into the warehouse connection, where the ONE scoring
(`graph.score`) turns them into reasons and scores, saved as the embedded scan saves them.

No graph library: GraphFrames' jars cannot be fetched at run time here, so components are computed
by iterative DataFrame joins (min-label propagation with pointer jumping until no label changes,
`localCheckpoint` every few rounds to cut the lineage), and strongly connected components by
trimming (nodes without in- or out-edges cannot be on a cycle) then the forward/backward colouring
algorithm on what is left.
"""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from liebian.engine import eventstore
from liebian.fraud import graph
from liebian.fraud.graph_params import GraphParams
from liebian.fraud.graph_patterns import DIRECT_KINDS, LINK_COLUMNS
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    import pyspark.sql.functions as F
    from pyspark.sql import DataFrame, SparkSession
else:  # deferred: PySpark is optional (the spark extra) and starts a JVM; the rest for start-up time
    F = lazy_import("pyspark.sql.functions")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")

EPOCH = datetime(1970, 1, 1)
CHECKPOINT_EVERY = 3  # label-propagation rounds between two localCheckpoints
MAX_ROUNDS = 10_000  # a guard: propagation ends after at most (diameter) rounds anyway

# The columns the scan reads from the store (an absent table reads as empty with these).
STORE_COLUMNS = {
    "events": "person_id BIGINT, ts TIMESTAMP, id_type STRING, user_id STRING, campaign_id STRING, "
    "channel STRING, device_id STRING, ip STRING, props STRING, referrer_person_id BIGINT",
    "orders": "person_id BIGINT, ts TIMESTAMP, status STRING, props STRING",
    "referral_edges": "inviter_person_id BIGINT, invitee_person_id BIGINT, campaign_id STRING, "
    "channel STRING, ts TIMESTAMP",
    "identity_map": "id_type STRING, id_value STRING, person_id BIGINT",
}
UA = (
    "coalesce(get_json_object(props, '$.user_agent'), get_json_object(props, '$.ua'), "
    "get_json_object(props, '$.userAgent'))"
)


# ------------------------------------------------------------------------------------ graph algorithms


def _sum_labels(labels: DataFrame) -> Any:
    # labels only ever decrease: an unchanged sum means no label changed (decimal: no overflow)
    return labels.agg(F.sum(F.col("comp").cast("decimal(38,0)"))).collect()[0][0]


def connected_components(edges: DataFrame, checkpoint_every: int = CHECKPOINT_EVERY) -> DataFrame:
    """(node, comp) of the undirected graph `edges` (src, dst: bigint); comp is the least node id of
    the node's component. Min-label propagation: each round a node takes the least label among
    itself and its neighbours, then the label of its label (pointer jumping: long paths converge in
    far fewer rounds than their length); it ends when no label changes."""
    pairs = edges.select(F.col("src").cast("bigint").alias("src"), F.col("dst").cast("bigint").alias("dst"))
    links = (
        pairs.union(pairs.select(F.col("dst").alias("src"), F.col("src").alias("dst")))
        .where("src <> dst")
        .distinct()
        .localCheckpoint()
    )
    nodes = (
        pairs.select(F.col("src").alias("node")).union(pairs.select(F.col("dst").alias("node"))).distinct()
    )
    labels = nodes.select("node", F.col("node").alias("comp")).localCheckpoint()
    total = _sum_labels(labels)
    for round_no in range(1, MAX_ROUNDS + 1):
        spread = links.join(labels, links.src == labels.node).select(F.col("dst").alias("node"), "comp")
        step = labels.union(spread).groupBy("node").agg(F.min("comp").alias("comp"))
        a, b = step.alias("a"), step.alias("b")
        jumped = a.join(b, F.col("a.comp") == F.col("b.node"), "left").select(
            F.col("a.node").alias("node"),
            F.least(F.col("a.comp"), F.coalesce(F.col("b.comp"), F.col("a.comp"))).alias("comp"),
        )
        jumped = jumped.localCheckpoint() if round_no % checkpoint_every == 0 else jumped.cache()
        new_total = _sum_labels(jumped)
        labels.unpersist()
        labels = jumped
        if new_total == total:
            break
        total = new_total
    links.unpersist()
    return labels


def _forward_min(edges: DataFrame, checkpoint_every: int) -> DataFrame:
    """(node, color): the least node id among the nodes that reach `node` along directed edges
    (src → dst), itself included."""
    nodes = (
        edges.select(F.col("src").alias("node")).union(edges.select(F.col("dst").alias("node"))).distinct()
    )
    labels = nodes.select("node", F.col("node").alias("comp")).localCheckpoint()
    total = _sum_labels(labels)
    for round_no in range(1, MAX_ROUNDS + 1):
        spread = edges.join(labels, edges.src == labels.node).select(F.col("dst").alias("node"), "comp")
        step = labels.union(spread).groupBy("node").agg(F.min("comp").alias("comp"))
        step = step.localCheckpoint() if round_no % checkpoint_every == 0 else step.cache()
        new_total = _sum_labels(step)
        labels.unpersist()
        labels = step
        if new_total == total:
            break
        total = new_total
    return labels.withColumnRenamed("comp", "color")


def _trim(edges: DataFrame) -> DataFrame:
    """Drop, until none is left, edges from a node nothing points to or to a node that points
    nowhere: such nodes are on no cycle. A referral forest trims away entirely."""
    count = edges.count()
    while count:
        heads = edges.select(F.col("dst").alias("node")).distinct()
        tails = edges.select(F.col("src").alias("node")).distinct()
        kept = (
            edges.join(heads, edges.src == heads.node, "left_semi")
            .join(tails, edges.dst == tails.node, "left_semi")
            .localCheckpoint()
        )
        kept_count = kept.count()
        edges.unpersist()
        edges = kept
        if kept_count == count:
            break
        count = kept_count
    return edges


def strongly_connected(edges: DataFrame, checkpoint_every: int = CHECKPOINT_EVERY) -> DataFrame:
    """(node, scc, size) for the nodes on a cycle of the directed graph `edges` (src → dst): their
    strongly connected component (labelled by its least node id) has two nodes or more.

    Colouring: colour each node with the least node reaching it; a node whose colour is itself is
    a root, and its component is what reaches the root backwards through nodes of its colour.
    Those components leave the graph and the rest is coloured again until no edge is left."""
    work = _trim(
        edges.select(F.col("src").cast("bigint").alias("src"), F.col("dst").cast("bigint").alias("dst"))
        .where("src <> dst")
        .distinct()
        .localCheckpoint()
    )
    found: list[DataFrame] = []
    while work.count():
        colors = _forward_min(work, checkpoint_every)
        cs, cd = colors.alias("cs"), colors.alias("cd")
        inside = (
            work.join(cs, work.src == F.col("cs.node"))
            .join(cd, work.dst == F.col("cd.node"))
            .where(F.col("cs.color") == F.col("cd.color"))
            .select("src", "dst", F.col("cs.color").alias("color"))
            .localCheckpoint()
        )
        reached = colors.where("node = color").localCheckpoint()
        count = reached.count()
        while True:
            back = inside.join(
                reached, (inside.dst == reached.node) & (inside.color == reached.color)
            ).select(F.col("src").alias("node"), inside.color)
            grown = reached.union(back).distinct().localCheckpoint()
            grown_count = grown.count()
            reached.unpersist()
            reached = grown
            if grown_count == count:
                break
            count = grown_count
        sizes = reached.groupBy("color").agg(F.count("*").alias("size")).where("size > 1")
        found.append(
            reached.join(sizes, "color").select("node", F.col("color").alias("scc"), "size").localCheckpoint()
        )
        done_src = reached.select(F.col("node").alias("done_src"))
        done_dst = reached.select(F.col("node").alias("done_dst"))
        work = _trim(
            work.join(done_src, work.src == done_src.done_src, "left_anti")
            .join(done_dst, work.dst == done_dst.done_dst, "left_anti")
            .localCheckpoint()
        )
    out = edges.sparkSession.createDataFrame([], "node BIGINT, scc BIGINT, size BIGINT")
    for more in found:
        out = out.union(more)
    return out


# ------------------------------------------------------------------------------------ the scan


class _Views:
    """The scan's temp views in the Spark session (prefixed, dropped at the end)."""

    def __init__(self, session: SparkSession) -> None:
        self.session = session
        self.names: list[str] = []

    def sql(self, query: str) -> DataFrame:
        return self.session.sql(query)

    def put(self, name: str, frame: DataFrame, materialise: bool = False) -> DataFrame:
        if materialise:  # read more than once: computed once (and the lineage cut)
            frame = frame.localCheckpoint()
        frame.createOrReplaceTempView(name)
        self.names.append(name)
        return frame

    def make(self, name: str, query: str, materialise: bool = False) -> DataFrame:
        return self.put(name, self.sql(query), materialise)

    def drop(self) -> None:
        for name in self.names:
            self.session.catalog.dropTempView(name)


def _read_store(views: _Views, files: dict[str, list[str]]) -> None:
    """fs_<table> views of the store's tables (the columns the scan reads; ts as TIMESTAMP, UTC)."""
    for table, ddl in STORE_COLUMNS.items():
        columns = [c.split()[0] for c in ddl.split(", ")]
        if files.get(table):
            frame = views.session.read.parquet(*files[table])
            have = set(frame.columns)
            frame = frame.select(
                *[
                    (F.col(c).cast("timestamp") if c == "ts" else F.col(c))
                    if c in have
                    else F.lit(None).alias(c)
                    for c in columns
                ]
            )
        else:
            frame = views.session.createDataFrame([], ddl)
        views.put(f"fs_{table}", frame)


def _as_of(views: _Views) -> datetime:
    micros = views.sql(
        "SELECT greatest((SELECT unix_micros(max(ts)) FROM fs_events), (SELECT unix_micros(max(ts)) FROM fs_orders),"
        " (SELECT unix_micros(max(ts)) FROM fs_referral_edges))"
    ).collect()[0][0]
    return EPOCH + timedelta(microseconds=int(micros)) if micros is not None else EPOCH


def _links(views: _Views, p: GraphParams, identity_links: pd.DataFrame | None) -> None:
    """fs_self, fs_idlinks, fs_edges, fs_ipua, fs_links, fs_ipua_crowd, fs_shared (graph._links,
    graph_patterns.self_referrals / identity_links)."""
    views.make(
        "fs_self",
        """SELECT person_id, campaign_id, first(channel) AS channel, min(ts) AS ts,
                  min_by(concat(id_type, ':', user_id), ts) AS account
           FROM fs_events WHERE referrer_person_id = person_id GROUP BY person_id, campaign_id""",
        materialise=True,
    )
    frame = identity_links if identity_links is not None else pd.DataFrame(columns=LINK_COLUMNS)
    rows = [tuple(str(v) for v in r) for r in frame[LINK_COLUMNS].itertuples(index=False)]
    views.put(
        "fs_idlinks_in", views.session.createDataFrame(rows, ", ".join(f"{c} STRING" for c in LINK_COLUMNS))
    )
    kinds = ", ".join(f"('{t}', '{k}')" for t, k in DIRECT_KINDS.items())
    views.make(
        "fs_idlinks",
        f"""WITH k AS (SELECT * FROM VALUES {kinds} AS k(id_type, kind)),
           sides AS (SELECT id_type_a AS own_t, id_value_a AS own_v, id_type_b AS t, id_value_b AS v FROM fs_idlinks_in
                     UNION ALL SELECT id_type_b, id_value_b, id_type_a, id_value_a FROM fs_idlinks_in)
           SELECT DISTINCT m.person_id, k.kind, s.v AS value
           FROM sides s JOIN k ON k.id_type = s.t
           JOIN fs_identity_map m ON m.id_type = s.own_t AND m.id_value = s.own_v""",
    )
    views.make(
        "fs_edges0",
        """SELECT inviter_person_id AS inviter, invitee_person_id AS invitee, campaign_id, channel, min(ts) AS ts
           FROM fs_referral_edges GROUP BY 1, 2, 3, 4""",
    )
    views.make(
        "fs_edges",
        """SELECT * FROM fs_edges0 UNION ALL
           SELECT s.person_id, s.person_id, s.campaign_id, s.channel, s.ts FROM fs_self s
           LEFT ANTI JOIN fs_edges0 e ON e.inviter = s.person_id AND e.invitee = s.person_id
                AND e.campaign_id <=> s.campaign_id""",
        materialise=True,
    )
    views.make(
        "fs_ipua",
        f"""SELECT person_id, ip, ua, concat(ip, '|', ua) AS value, sum(n) AS n FROM (
              SELECT person_id, ip, {UA} AS ua, n FROM (
                SELECT person_id, ip, props, count(*) AS n FROM fs_events
                WHERE ip IS NOT NULL AND ip <> '' AND props IS NOT NULL GROUP BY 1, 2, 3))
            WHERE ua IS NOT NULL AND ua <> '' GROUP BY 1, 2, 3""",
        materialise=True,
    )
    views.make(
        "fs_links",
        f"""SELECT DISTINCT person_id, kind, value FROM (
              SELECT person_id, 'device' AS kind, device_id AS value FROM fs_events
              WHERE device_id IS NOT NULL AND device_id <> ''
              UNION ALL SELECT person_id, 'ipua', value FROM fs_ipua WHERE n >= {int(p.ipua_min_events)}
              UNION ALL
              SELECT person_id, CASE WHEN id_type = 'device_id' THEN 'device' ELSE id_type END, id_value
              FROM fs_identity_map WHERE id_type IN ('device_id', 'payment_account', 'phone')
              UNION ALL SELECT person_id, kind, value FROM fs_idlinks
              UNION ALL
              SELECT person_id, 'payment_account', concat('order:', pay) FROM (
                SELECT DISTINCT person_id, get_json_object(props, '$.payment_account') AS pay
                FROM fs_orders WHERE props IS NOT NULL)
              WHERE pay IS NOT NULL AND pay <> '')""",
        materialise=True,
    )
    views.make(
        "fs_ipua_crowd",
        f"""SELECT person_id, value FROM fs_ipua WHERE value IN (
              SELECT value FROM fs_ipua GROUP BY 1
              HAVING count(*) BETWEEN {int(p.farm_min_invitees)} AND {int(p.max_share)})""",
    )
    views.make(
        "fs_shared",
        f"""SELECT l.person_id, l.kind, l.value, c.n FROM fs_links l
            JOIN (SELECT kind, value, count(*) AS n FROM fs_links GROUP BY 1, 2
                  HAVING count(*) BETWEEN 2 AND {int(p.max_share)}) c
            ON c.kind = l.kind AND c.value = l.value""",
        materialise=True,
    )


def _components(views: _Views) -> tuple[int, int]:
    """fs_comp (person_id, comp): components of the shared-identifier graph. The bipartite
    person–identifier graph becomes a star per identifier (each holder linked to its least holder):
    the same components with edges linear in the links. Returns (shared links, components)."""
    star = views.sql(
        "SELECT person_id AS src, min(person_id) OVER (PARTITION BY kind, value) AS dst FROM fs_shared"
    )
    comp = connected_components(star).select(F.col("node").alias("person_id"), "comp")
    views.put("fs_comp", comp, materialise=True)
    row = views.sql(
        "SELECT (SELECT count(*) FROM fs_shared), (SELECT count(DISTINCT comp) FROM fs_comp)"
    ).collect()
    return int(row[0][0]), int(row[0][1])


def _cycles(views: _Views) -> None:
    edges = views.sql("SELECT inviter AS src, invitee AS dst FROM fs_edges WHERE inviter <> invitee")
    scc = strongly_connected(edges).select(F.col("node").alias("person_id"), "scc", "size")
    views.put("fs_cycle", scc, materialise=True)


def _activity(views: _Views, p: GraphParams, as_of: datetime) -> None:
    """fs_edge_x: each referral with its invitee's component and churn / one-order-then-nothing
    flags (graph._invitee_activity)."""
    as_of_us = int((as_of - EPOCH) / timedelta(microseconds=1))
    age_us = int(round(float(p.churn_min_age_days) * 86400 * 1_000_000))
    views.make(
        "fs_invitee",
        """WITH inv AS (SELECT DISTINCT invitee AS person_id FROM fs_edges),
           ev AS (SELECT person_id, max(ts) AS last_ev FROM fs_events GROUP BY 1),
           od AS (SELECT person_id, max(ts) AS last_od, count(*) AS n_orders FROM fs_orders
                  WHERE status NOT IN ('cancelled', 'refunded') GROUP BY 1)
           SELECT inv.person_id, greatest(ev.last_ev, od.last_od) AS last_active,
                  coalesce(od.n_orders, 0) AS n_orders
           FROM inv LEFT JOIN ev ON ev.person_id = inv.person_id LEFT JOIN od ON od.person_id = inv.person_id""",
    )
    views.make(
        "fs_edge_x",
        f"""SELECT e.*, ci.comp AS comp,
                   coalesce(i.last_active, e.ts) < e.ts + INTERVAL 1 DAY AS churned,
                   coalesce(i.n_orders, 0) <= 1 AND coalesce(i.last_active, e.ts) < e.ts + INTERVAL 2 DAY AS dud,
                   unix_micros(e.ts) <= {as_of_us - age_us} AS judged
            FROM fs_edges e LEFT JOIN fs_comp ci ON ci.person_id = e.invitee
            LEFT JOIN fs_invitee i ON i.person_id = e.invitee
            WHERE e.inviter <> e.invitee""",
        materialise=True,
    )


def _epoch(column: str) -> str:
    return f"(unix_micros({column}) / 1000000.0)"


def _farms_stars(views: _Views, p: GraphParams) -> None:
    """fs_farm, fs_star, fs_star_invitee, fs_anom_feats (graph._farms, _stars, _anomaly_features)."""
    lo = round((1.0 - float(p.burst_share)) / 2, 4)
    views.make(
        "fs_farm_g",
        f"""WITH big AS (
              SELECT x.* FROM fs_edge_x x LEFT SEMI JOIN (
                SELECT inviter FROM fs_edge_x GROUP BY 1 HAVING count(*) >= {int(p.farm_min_invitees)}) b
              ON b.inviter = x.inviter
            ), grouped AS (
              SELECT inviter, invitee, ts, dud, concat('c', comp) AS grp FROM big WHERE comp IS NOT NULL
              UNION ALL
              SELECT x.inviter, x.invitee, x.ts, x.dud, concat('a', c.value) FROM big x
              JOIN fs_ipua_crowd c ON c.person_id = x.invitee
            )
            SELECT inviter, grp, count(DISTINCT invitee) AS n_inv, avg(cast(dud AS INT)) AS dud_share,
                   collect_set(invitee) AS members,
                   percentile({_epoch("ts")}, {lo}) AS t10, percentile({_epoch("ts")}, {1 - lo}) AS t90
            FROM grouped GROUP BY inviter, grp HAVING count(DISTINCT invitee) >= {int(p.farm_min_invitees)}""",
        materialise=True,
    )
    views.make(
        "fs_farm",
        f"""WITH d AS (
              SELECT g.inviter, g.grp, count(DISTINCT l.value) AS n_dev
              FROM (SELECT inviter, grp, explode(members) AS person_id FROM fs_farm_g) g
              JOIN fs_links l ON l.person_id = g.person_id AND l.kind = 'device' GROUP BY 1, 2
            )
            SELECT g.inviter, g.grp, g.n_inv, coalesce(d.n_dev, 0) AS n_dev, g.dud_share, g.members,
                   CASE WHEN g.grp LIKE 'a%' THEN substring_index(substr(g.grp, 2), '|', 1) END AS ip,
                   (g.t90 - g.t10) / 60 AS span80_minutes
            FROM fs_farm_g g LEFT JOIN d ON d.inviter = g.inviter AND d.grp = g.grp
            WHERE (coalesce(d.n_dev, 0) > 0 AND g.n_inv >= {float(p.farm_device_ratio)} * d.n_dev)
               OR ((g.t90 - g.t10) / 60 <= {int(p.burst_minutes)} AND g.dud_share >= {float(p.dud_share)})""",
    )
    views.make(
        "fs_star",
        f"""SELECT inviter, count(*) AS n_inv, avg(cast(churned AS INT)) AS churn_share,
                   avg(cast(dud AS INT)) AS dud_share
            FROM fs_edge_x WHERE judged GROUP BY 1
            HAVING count(*) >= {int(p.star_min_invitees)}
               AND greatest(avg(cast(churned AS INT)), avg(cast(dud AS INT))) >= {float(p.star_churn_share)}""",
        materialise=True,
    )
    views.make(
        "fs_star_invitee",
        """SELECT x.inviter, x.invitee FROM fs_edge_x x LEFT SEMI JOIN fs_star s ON s.inviter = x.inviter
           WHERE x.judged AND (x.churned OR x.dud)""",
    )
    views.make(
        "fs_anom_feats",
        f"""WITH dev AS (
              SELECT e.inviter, count(DISTINCT l.value) AS n_dev
              FROM fs_edges e JOIN fs_links l ON l.person_id = e.invitee AND l.kind = 'device' GROUP BY 1)
            SELECT x.inviter, count(*) AS n_inv, avg(cast(x.churned AS INT)) AS churn_share,
                   avg(cast(x.dud AS INT)) AS dud_share,
                   count(*) / greatest(coalesce(first(dev.n_dev), 0), 1) AS inv_per_device,
                   count(*) / (1 + ({_epoch("max(x.ts)")} - {_epoch("min(x.ts)")}) / 3600) AS per_hour
            FROM fs_edge_x x LEFT JOIN dev ON dev.inviter = x.inviter
            GROUP BY 1 HAVING count(*) >= {int(p.anomaly_min_invitees)}""",
    )


def _chains(views: _Views, p: GraphParams) -> None:
    """fs_chain (graph_patterns.chains / _quiet_nodes): components of fast links between quiet accounts."""
    views.make(
        "fs_fast",
        f"""WITH pairs AS (
              SELECT a.inviter AS a1, a.invitee AS a2, b.invitee AS b2
              FROM fs_edge_x a JOIN fs_edge_x b ON b.inviter = a.invitee
              WHERE b.ts >= a.ts AND b.ts <= a.ts + INTERVAL {int(p.chain_gap_minutes)} MINUTES)
            SELECT a1 AS inviter, a2 AS invitee FROM pairs UNION SELECT a2, b2 FROM pairs""",
        materialise=True,
    )
    views.make(
        "fs_quiet",
        """WITH nodes AS (SELECT inviter AS person_id FROM fs_fast UNION SELECT invitee FROM fs_fast),
           ev AS (SELECT e.person_id, min(e.ts) AS first_ts, max(e.ts) AS last_ts FROM fs_events e
                  LEFT SEMI JOIN nodes n ON n.person_id = e.person_id GROUP BY 1),
           od AS (SELECT o.person_id, count(*) AS n, max(o.ts) AS last_od FROM fs_orders o
                  LEFT SEMI JOIN nodes n ON n.person_id = o.person_id
                  WHERE o.status NOT IN ('cancelled', 'refunded') GROUP BY 1),
           iv AS (SELECT x.inviter AS person_id, max(x.ts) AS last_inv FROM fs_edge_x x
                  LEFT SEMI JOIN nodes n ON n.person_id = x.inviter GROUP BY 1)
           SELECT nodes.person_id FROM nodes LEFT JOIN ev ON ev.person_id = nodes.person_id
           LEFT JOIN od ON od.person_id = nodes.person_id LEFT JOIN iv ON iv.person_id = nodes.person_id
           WHERE coalesce(od.n, 0) <= 1
             AND greatest(ev.last_ts, od.last_od, iv.last_inv) < ev.first_ts + INTERVAL 2 DAY""",
        materialise=True,
    )
    quiet_links = views.sql(
        """SELECT f.inviter AS src, f.invitee AS dst FROM fs_fast f
           LEFT SEMI JOIN fs_quiet q ON q.person_id = f.inviter LEFT SEMI JOIN fs_quiet r ON r.person_id = f.invitee"""
    )
    comp = connected_components(quiet_links).select(
        F.col("node").alias("person_id"), F.col("comp").alias("chain")
    )
    views.put("fs_chain_comp", comp, materialise=True)
    views.make(
        "fs_chain",
        f"""WITH e AS (
              SELECT f.inviter, f.invitee, c.chain FROM fs_fast f JOIN fs_chain_comp c ON c.person_id = f.invitee
              JOIN fs_chain_comp ci ON ci.person_id = f.inviter AND ci.chain = c.chain
            ), out_degree AS (
              SELECT chain, max(d) AS max_out FROM (SELECT chain, inviter, count(*) AS d FROM e GROUP BY 1, 2)
              GROUP BY 1
            ), stats AS (SELECT chain, count(*) AS n_edges FROM e GROUP BY 1
            ), net AS (
              SELECT c.chain, count(DISTINCT i.ip) AS n_ip, count(DISTINCT i.ua) AS n_ua,
                     mode(i.ip) AS top_ip, count(DISTINCT c.person_id) AS n_persons
              FROM fs_chain_comp c LEFT JOIN fs_ipua i ON i.person_id = c.person_id GROUP BY 1
            )
            SELECT c.person_id, c.chain, n.n_persons AS n, n.n_ip, n.n_ua, n.top_ip
            FROM fs_chain_comp c JOIN stats s ON s.chain = c.chain JOIN net n ON n.chain = c.chain
            JOIN out_degree o ON o.chain = c.chain
            WHERE s.n_edges >= {int(p.chain_min_edges)} AND o.max_out <= 2
              AND n.n_ip BETWEEN 1 AND 2 + n.n_persons DIV 4 AND n.n_ua <= 2""",
    )


def _clusters(views: _Views, p: GraphParams) -> None:
    """fs_cluster (graph_patterns.clusters): invitees of different inviters on one identifier."""
    lo = round((1.0 - float(p.burst_share)) / 2, 4)
    span = f"(percentile({_epoch('ts')}, {1 - lo}) - percentile({_epoch('ts')}, {lo})) / 3600"
    views.make(
        "fs_cluster_inv",
        """WITH src AS (
             SELECT person_id, 'ipua' AS kind, value FROM fs_ipua_crowd
             UNION ALL SELECT person_id, kind, value FROM fs_shared WHERE kind IN ('device', 'payment_account'))
           SELECT s.kind, s.value, x.invitee, x.inviter, x.ts, x.dud FROM src s JOIN fs_edge_x x ON x.invitee = s.person_id""",
        materialise=True,
    )
    views.make(
        "fs_cluster",
        f"""WITH candidates AS (
              SELECT kind, value FROM fs_cluster_inv WHERE dud GROUP BY 1, 2
              HAVING count(*) >= {int(min(p.cluster_min_invitees, p.cluster_min_direct) * float(p.dud_share))})
            SELECT i.kind, i.value, count(DISTINCT invitee) AS n_inv, count(DISTINCT inviter) AS n_inviters,
                   collect_set(invitee) AS members, {span} AS span_hours
            FROM fs_cluster_inv i LEFT SEMI JOIN candidates c ON c.kind = i.kind AND c.value = i.value
            GROUP BY i.kind, i.value
            HAVING count(DISTINCT invitee) >= CASE i.kind WHEN 'ipua' THEN {int(p.cluster_min_invitees)}
                                                          ELSE {int(p.cluster_min_direct)} END
               AND count(DISTINCT inviter) >= {int(p.cluster_min_inviters)}
               AND avg(cast(dud AS INT)) >= {float(p.dud_share)}
               AND {span} <= {float(p.cluster_burst_hours)}""",
    )


def _pair_features(views: _Views, p: GraphParams) -> None:
    """fs_crowded, fs_edge_shared (graph._pair_features)."""
    views.make(
        "fs_crowded",
        f"SELECT person_id, value, n FROM fs_shared WHERE kind = 'device' AND n >= {int(p.crowded_device)}",
    )
    views.make(
        "fs_edge_shared",
        """SELECT e.inviter, e.invitee, e.campaign_id, a.kind, a.value
           FROM fs_edges e JOIN fs_shared a ON a.person_id = e.inviter
           JOIN fs_shared b ON b.person_id = e.invitee AND b.kind = a.kind AND b.value = a.value
           WHERE e.inviter <> e.invitee""",
    )


def _load_features(views: _Views, con: duckdb.DuckDBPyConnection) -> None:
    """Bring each feature table (graph.FEATURE_TABLES) to the driver as Arrow and into `con` as the
    temp table the scoring reads, typed as the embedded scan types it (timestamps travel as
    microseconds since the epoch, UTC)."""
    for table, ddl in graph.FEATURE_TABLES.items():
        columns = [(c.split()[0], c.split()[1]) for c in ddl.split(", ")]
        frame = views.sql(f"SELECT * FROM {'fs_' + table[3:]}")
        frame = frame.select(
            *[F.unix_micros(F.col(c)).alias(c) if kind == "TIMESTAMP" else F.col(c) for c, kind in columns]
        )
        select = ", ".join(
            f"make_timestamp({c}) AS {c}" if kind == "TIMESTAMP" else f"CAST({c} AS {kind}) AS {c}"
            for c, kind in columns
        )
        con.register("fr_spark_load", frame.toArrow())
        try:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT {select} FROM fr_spark_load")
        finally:
            con.unregister("fr_spark_load")


def scan(
    con: duckdb.DuckDBPyConnection,
    params: GraphParams | None = None,
    virtual_phone_persons: np.ndarray | list[int] | None = None,
    as_of: datetime | None = None,
    identity_links: pd.DataFrame | None = None,
    store_url: str | None = None,
    session: SparkSession | None = None,
) -> graph.ScanResult:
    """graph.scan with the features extracted on Spark from the event store (`store_url`, default
    LIEBIAN_EVENT_STORE); the scores are written to `con`'s fraud_person_risk / _referral_risk by
    the same scoring as the embedded scan."""
    # deferred: starts (or reuses) the JVM only when the Spark scan runs
    from liebian.engine.spark import spark_session

    p = params or GraphParams()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}
    files = eventstore.snapshot(store_url)
    views = _Views(session or spark_session())
    try:
        t = time.perf_counter()
        _read_store(views, files)
        as_of = as_of or _as_of(views)
        _links(views, p, identity_links)
        n_shared, n_comp = _components(views)
        timings["components"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        _cycles(views)
        timings["cycles"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        _activity(views, p, as_of)
        _farms_stars(views, p)
        _chains(views, p)
        _clusters(views, p)
        _pair_features(views, p)
        timings["patterns"] = round(time.perf_counter() - t, 3)
        t = time.perf_counter()
        row = views.sql(
            "SELECT (SELECT count(DISTINCT person_id) FROM fs_links), (SELECT count(*) FROM fs_edges)"
        ).collect()[0]
        stats = {
            "persons": int(row[0]),
            "referrals": int(row[1]),
            "shared_links": n_shared,
            "components": n_comp,
        }
        _load_features(views, con)
        timings["collect"] = round(time.perf_counter() - t, 3)
    finally:
        views.drop()
    return graph.score(con, p, as_of, stats, virtual_phone_persons, timings, t0)
