"""Graph analysis over the warehouse: rings, farms, star inviters and cycles → a 0–100 risk score.

The graph has one node per person. Persons are linked by referrals (directed, inviter → invitee)
and by identifiers they share: a device id, an IP address together with a user agent, a payment
account. An identifier shared by more than `max_share` persons is infrastructure (a carrier NAT,
a shop's tablet), not evidence, and is left out.

Detectors (each yields stable reason codes, see reasons.py):
- DEVICE_FARM / FARM_INVITER: in one component of the shared-identifier graph (or on one
  address+UA, counting single visits there), one inviter has many invitees that crowd onto few
  devices, or that signed up in a burst and then did nothing after one order.
- STAR_CHURN / STAR_CHURN_INVITEE: an inviter whose invitees (old enough to judge) nearly all
  churn the same day or never order again after their first order.
- CYCLE: strongly connected components of the referral graph (A→B→A, A→B→C→A).
- CROWDED_DEVICE, SHARED_* (invitee shares an identifier with its inviter), SAME_PERSON.
- CHAIN, CROSS_CLUSTER and self-referral through OneID / the identity store's conflicts: see
  graph_patterns.py (thresholds for all in graph_params.py).
- VIRTUAL_PHONE: persons the caller marks (phones are HMACs in the warehouse; the job reads the
  prefix from the operational store).
- ANOMALY: Isolation Forest over per-inviter features; worth at most 30 points alone, so it only
  tips cases that other evidence already makes suspicious.

All heavy work is DuckDB SQL plus vectorised numpy/scipy; nothing loops over persons in Python.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from liebian.fraud import graph_patterns as patterns
from liebian.fraud.graph_params import GraphParams
from liebian.fraud.reasons import REASONS
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp_sparse
    import scipy.sparse.csgraph as sp_csgraph
    import sklearn.ensemble as sk_ensemble
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    np = lazy_import("numpy")
    pd = lazy_import("pandas")
    sp_sparse = lazy_import("scipy.sparse")
    sp_csgraph = lazy_import("scipy.sparse.csgraph")
    sk_ensemble = lazy_import("sklearn.ensemble")
from liebian.predict.common import aggregate_row

PERSON_TABLE = "fraud_person_risk"
REFERRAL_TABLE = "fraud_referral_risk"


@dataclass
class ScanResult:
    persons: int
    referrals: int
    shared_links: int
    components: int
    flagged_persons: int
    flagged_referrals: int
    seconds: float
    timings: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return asdict(self)


def _ua_expr() -> str:
    # The user agent travels in the event's props; channels spell the key differently.
    return (
        "coalesce(json_extract_string(props, '$.user_agent'), json_extract_string(props, '$.ua'), "
        "json_extract_string(props, '$.userAgent'))"
    )


def _components(src: np.ndarray, dst: np.ndarray, directed: bool) -> tuple[np.ndarray, np.ndarray]:
    """Component label per node for edges src→dst (node ids arbitrary int64). Returns (nodes, labels)."""
    nodes, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(nodes)
    if n == 0:
        return nodes, np.empty(0, dtype=np.int64)
    a, b = inverse[: len(src)], inverse[len(src) :]
    graph = sp_sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    _, labels = sp_csgraph.connected_components(graph, directed=directed, connection="strong")
    return nodes, labels.astype(np.int64)


def scan(
    con: duckdb.DuckDBPyConnection,
    params: GraphParams | None = None,
    virtual_phone_persons: np.ndarray | list[int] | None = None,
    as_of: datetime | None = None,
    identity_links: pd.DataFrame | None = None,
) -> ScanResult:
    """Score every person and referral in the warehouse; (re)write fraud_person_risk / _referral_risk.

    `identity_links` (id_type_a, id_value_a, id_type_b, id_value_b, stored values): the identity
    store's evidence OneID did not merge (conflicts), so a phone / payment account / device seen with
    two persons still links them (graph_inputs.conflict_links reads it)."""
    p = params or GraphParams()
    t0 = time.perf_counter()
    timings: dict[str, float] = {}

    def lap(name: str, start: float) -> float:
        now = time.perf_counter()
        timings[name] = round(now - start, 3)
        return now

    t = t0
    if as_of is None:
        as_of = aggregate_row(
            con,
            "SELECT greatest((SELECT max(ts) FROM events), (SELECT max(ts) FROM orders), "
            "(SELECT max(ts) FROM referral_edges))",
        )[0]
    as_of = as_of or datetime(1970, 1, 1)

    patterns.self_referrals(con)
    patterns.identity_links(con, identity_links)
    _links(con, p)
    t = lap("links", t)
    n_shared, n_comp = _shared_components(con)
    t = lap("components", t)
    _cycles(con)
    t = lap("cycles", t)
    _invitee_activity(con, p, as_of)
    t = lap("activity", t)
    _farms(con, p)
    _stars(con, p)
    t = lap("farms_stars", t)
    patterns.chains(con, p)
    patterns.clusters(con, p)
    t = lap("chains_clusters", t)
    _pair_features(con, p)
    _anomaly_features(con, p)
    persons, referrals = aggregate_row(
        con, "SELECT (SELECT count(DISTINCT person_id) FROM fr_links), (SELECT count(*) FROM fr_edges)"
    )
    stats = {
        "persons": int(persons),
        "referrals": int(referrals),
        "shared_links": n_shared,
        "components": n_comp,
    }
    return score(con, p, as_of, stats, virtual_phone_persons, timings, t0)


# The feature tables the scoring reads (`score`): the embedded scan builds them with DuckDB SQL
# above, the Spark scan (graph_spark.py) with Spark DataFrames and loads them into the warehouse
# connection. Columns as the embedded scan types them.
FEATURE_TABLES: dict[str, str] = {
    "fr_edges": "inviter BIGINT, invitee BIGINT, campaign_id VARCHAR, channel VARCHAR, ts TIMESTAMP",
    "fr_self": "person_id BIGINT, campaign_id VARCHAR, channel VARCHAR, ts TIMESTAMP, account VARCHAR",
    "fr_cycle": "person_id BIGINT, scc BIGINT, size BIGINT",
    "fr_crowded": "person_id BIGINT, value VARCHAR, n BIGINT",
    "fr_edge_shared": "inviter BIGINT, invitee BIGINT, campaign_id VARCHAR, kind VARCHAR, value VARCHAR",
    "fr_farm": "inviter BIGINT, grp VARCHAR, n_inv BIGINT, n_dev BIGINT, dud_share DOUBLE, members BIGINT[], "
    "ip VARCHAR, span80_minutes DOUBLE",
    "fr_star": "inviter BIGINT, n_inv BIGINT, churn_share DOUBLE, dud_share DOUBLE",
    "fr_star_invitee": "inviter BIGINT, invitee BIGINT",
    "fr_anom_feats": "inviter BIGINT, n_inv BIGINT, churn_share DOUBLE, dud_share DOUBLE, "
    "inv_per_device DOUBLE, per_hour DOUBLE",
    "fr_chain": "person_id BIGINT, chain BIGINT, n BIGINT, n_ip BIGINT, n_ua BIGINT, top_ip VARCHAR",
    "fr_cluster": "kind VARCHAR, value VARCHAR, n_inv BIGINT, n_inviters BIGINT, members BIGINT[], "
    "span_hours DOUBLE",
}


def score(
    con: duckdb.DuckDBPyConnection,
    p: GraphParams,
    as_of: datetime,
    stats: dict[str, int],
    virtual_phone_persons: np.ndarray | list[int] | None = None,
    timings: dict[str, float] | None = None,
    started: float | None = None,
) -> ScanResult:
    """The scoring both engines share: from the FEATURE_TABLES in `con` (temp tables), the reasons,
    the anomaly forest and the combined scores → fraud_person_risk / fraud_referral_risk.

    `stats` are the feature extraction's counts (persons, referrals, shared_links, components)."""
    timings = timings if timings is not None else {}
    t = time.perf_counter()
    t0 = started if started is not None else t
    _anomalies(con, p)
    _virtual_phones(con, virtual_phone_persons)
    _edge_evidence(con)
    _person_scores(con, p, as_of)
    _referral_scores(con, as_of)
    timings["score"] = round(time.perf_counter() - t, 3)
    flagged = aggregate_row(
        con,
        f"""
        SELECT (SELECT count(*) FROM {PERSON_TABLE} WHERE score >= {float(p.flag_threshold)}),
               (SELECT count(*) FROM {REFERRAL_TABLE} WHERE score >= {float(p.flag_threshold)})
        """,
    )
    _drop_temp_tables(con)
    return ScanResult(
        persons=int(stats["persons"]),
        referrals=int(stats["referrals"]),
        shared_links=int(stats["shared_links"]),
        components=int(stats["components"]),
        flagged_persons=int(flagged[0]),
        flagged_referrals=int(flagged[1]),
        seconds=round(time.perf_counter() - t0, 3),
        timings=timings,
    )


def _links(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    """fr_edges (the referrals) and fr_shared (identifiers that 2..max_share persons share), with the
    identifier links they come from."""
    # Referrals: one row per (inviter, invitee, campaign).
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE fr_edges AS
        SELECT inviter_person_id AS inviter, invitee_person_id AS invitee, campaign_id, channel, min(ts) AS ts
        FROM referral_edges GROUP BY ALL
        """
    )
    # an invite to one's own second account is a referral even where the importer dropped its edge
    con.execute(
        """
        INSERT INTO fr_edges
        SELECT s.person_id, s.person_id, s.campaign_id, s.channel, s.ts FROM fr_self s
        ANTI JOIN fr_edges e ON e.inviter = s.person_id AND e.invitee = s.person_id
             AND e.campaign_id IS NOT DISTINCT FROM s.campaign_id
        """
    )
    # Identifier links per person, then only identifiers that 2..max_share persons share.
    # props repeat per person and address: parse each distinct one once
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_ipua AS
        SELECT person_id, ip, ua, ip || '|' || ua AS value, sum(n) AS n FROM (
            SELECT person_id, ip, {_ua_expr()} AS ua, n FROM (
                SELECT person_id, ip, props, count(*) AS n FROM events
                WHERE ip IS NOT NULL AND ip <> '' AND props IS NOT NULL GROUP BY ALL
            )
        ) WHERE ua IS NOT NULL AND ua <> '' GROUP BY ALL
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_links AS
        SELECT DISTINCT person_id, kind, value FROM (
            SELECT person_id, 'device' AS kind, device_id AS value FROM events
            WHERE device_id IS NOT NULL AND device_id <> ''
            UNION ALL
            -- a carrier NAT hands out a new address per session: only an address+UA a person
            -- came back with (home, office, farm) links them to others
            SELECT person_id, 'ipua', value FROM fr_ipua WHERE n >= {int(p.ipua_min_events)}
            UNION ALL
            SELECT person_id, CASE WHEN id_type = 'device_id' THEN 'device' ELSE id_type END, id_value
            FROM identity_map WHERE id_type IN ('device_id', 'payment_account', 'phone')
            UNION ALL
            -- identifiers the identity store saw with a person without merging (conflicts)
            SELECT person_id, kind, value FROM fr_idlinks
            UNION ALL
            -- a payment account an order carries (as the importer kept it: a stable token)
            SELECT person_id, 'payment_account', 'order:' || pay FROM (
                SELECT DISTINCT person_id, json_extract_string(props, '$.payment_account') AS pay
                FROM orders WHERE props IS NOT NULL
            ) WHERE pay IS NOT NULL AND pay <> ''
        )
        """
    )
    # Farm accounts may visit once: for the farm test (one inviter's invitees crowding on one
    # address+UA) single visits count too, on addresses that enough persons share.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_ipua_crowd AS
        SELECT person_id, value FROM fr_ipua
        WHERE value IN (SELECT value FROM fr_ipua GROUP BY 1
                        HAVING count(*) BETWEEN {int(p.farm_min_invitees)} AND {int(p.max_share)})
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_shared AS
        SELECT l.person_id, l.kind, l.value, c.n
        FROM fr_links l
        JOIN (SELECT kind, value, count(*) AS n FROM fr_links GROUP BY ALL
              HAVING count(*) BETWEEN 2 AND {int(p.max_share)}) c USING (kind, value)
        """
    )


def _shared_components(con: duckdb.DuckDBPyConnection) -> tuple[int, int]:
    """fr_comp: each person's component of the shared-identifier graph; (shared links, components)."""
    # Components of the shared-identifier graph (bipartite person–identifier, undirected).
    arrays = con.execute(
        "SELECT person_id, (hash(kind || ':' || value) >> 1)::BIGINT AS link FROM fr_shared"
    ).fetchnumpy()
    persons_col = np.asarray(arrays["person_id"], dtype=np.int64)
    links_col = np.asarray(arrays["link"], dtype=np.int64)
    n_shared = len(persons_col)
    # Offset link ids into their own range so that they cannot collide with person ids.
    person_nodes, person_idx = np.unique(persons_col, return_inverse=True)
    link_nodes, link_idx = np.unique(links_col, return_inverse=True)
    n_p, n_l = len(person_nodes), len(link_nodes)
    if n_shared:
        graph = sp_sparse.coo_matrix(
            (np.ones(n_shared, dtype=np.int8), (person_idx, n_p + link_idx)), shape=(n_p + n_l, n_p + n_l)
        ).tocsr()
        n_comp, labels = sp_csgraph.connected_components(graph, directed=False)
        comp = pd.DataFrame({"person_id": person_nodes, "comp": labels[:n_p].astype(np.int64)})
    else:
        n_comp, comp = 0, pd.DataFrame({"person_id": np.empty(0, np.int64), "comp": np.empty(0, np.int64)})
    con.register("fr_comp_df", comp)
    con.execute("CREATE OR REPLACE TEMP TABLE fr_comp AS SELECT * FROM fr_comp_df")
    con.unregister("fr_comp_df")
    return n_shared, int(n_comp)


def _cycles(con: duckdb.DuckDBPyConnection) -> None:
    # Cycles: strongly connected components of the directed referral graph.
    edge_arrays = con.execute("SELECT inviter, invitee FROM fr_edges WHERE inviter <> invitee").fetchnumpy()
    src = np.asarray(edge_arrays["inviter"], dtype=np.int64)
    dst = np.asarray(edge_arrays["invitee"], dtype=np.int64)
    nodes, scc = _components(src, dst, directed=True)
    if len(nodes):
        sizes = np.bincount(scc)
        in_cycle = sizes[scc] > 1
        cyc = pd.DataFrame({"person_id": nodes[in_cycle], "scc": scc[in_cycle], "size": sizes[scc][in_cycle]})
    else:
        cyc = pd.DataFrame({"person_id": np.empty(0, np.int64), "scc": np.empty(0, np.int64), "size": []})
    con.register("fr_cycle_df", cyc)
    con.execute("CREATE OR REPLACE TEMP TABLE fr_cycle AS SELECT * FROM fr_cycle_df")
    con.unregister("fr_cycle_df")


def _invitee_activity(con: duckdb.DuckDBPyConnection, p: GraphParams, as_of: datetime) -> None:
    # Per-invitee activity: last activity and paid orders, for churn and "one order then nothing".
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE fr_invitee AS
        WITH inv AS (SELECT DISTINCT invitee AS person_id FROM fr_edges),
        -- aggregate first, join after: cheaper than a semi-join over every event
        ev AS (SELECT person_id, max(ts) AS last_ev FROM events GROUP BY 1),
        od AS (SELECT o.person_id, max(o.ts) AS last_od, count(*) AS n_orders
               FROM orders o WHERE o.status NOT IN ('cancelled', 'refunded') GROUP BY 1)
        SELECT inv.person_id, greatest(ev.last_ev, od.last_od) AS last_active, coalesce(od.n_orders, 0) AS n_orders
        FROM inv LEFT JOIN ev USING (person_id) LEFT JOIN od USING (person_id)
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_edge_x AS
        SELECT e.*, ci.comp AS comp,
               coalesce(i.last_active, e.ts) < e.ts + INTERVAL 1 DAY AS churned,
               coalesce(i.n_orders, 0) <= 1 AND coalesce(i.last_active, e.ts) < e.ts + INTERVAL 2 DAY AS dud,
               e.ts <= TIMESTAMP '{as_of}' - to_seconds({float(p.churn_min_age_days) * 86400}) AS judged
        FROM fr_edges e LEFT JOIN fr_comp ci ON ci.person_id = e.invitee
        LEFT JOIN fr_invitee i ON i.person_id = e.invitee
        WHERE e.inviter <> e.invitee
        """
    )


def _farms(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    lo = round((1.0 - float(p.burst_share)) / 2, 4)  # the central burst_share of sign-up times
    # Farms: per (inviter, component) the invitees, their distinct devices and the sign-up span.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_farm AS
        WITH big AS (
            -- only inviters with enough invitees can run a farm: most inviters drop out here
            SELECT x.* FROM fr_edge_x x
            SEMI JOIN (SELECT inviter FROM fr_edge_x GROUP BY 1 HAVING count(*) >= {int(p.farm_min_invitees)}) USING (inviter)
        ), grouped AS (
            -- a group: one inviter's invitees in one identifier component, or on one address+UA
            SELECT inviter, invitee, ts, dud, 'c' || comp AS grp FROM big WHERE comp IS NOT NULL
            UNION ALL
            SELECT x.inviter, x.invitee, x.ts, x.dud, 'a' || c.value FROM big x
            JOIN fr_ipua_crowd c ON c.person_id = x.invitee
        ), g AS (
            SELECT inviter, grp, count(DISTINCT invitee) AS n_inv,
                   avg(dud::INT) AS dud_share, list(DISTINCT invitee) AS members,
                   quantile_cont(epoch(ts), {lo}) AS t10, quantile_cont(epoch(ts), {1 - lo}) AS t90
            FROM grouped GROUP BY ALL HAVING count(DISTINCT invitee) >= {int(p.farm_min_invitees)}
        ), d AS (
            SELECT g.inviter, g.grp, count(DISTINCT l.value) AS n_dev
            FROM g, unnest(g.members) AS m(person_id) JOIN fr_links l ON l.person_id = m.person_id AND l.kind = 'device'
            GROUP BY ALL
        )
        SELECT g.inviter, g.grp, g.n_inv, coalesce(d.n_dev, 0) AS n_dev, g.dud_share, g.members,
               CASE WHEN g.grp LIKE 'a%' THEN split_part(substr(g.grp, 2), '|', 1) END AS ip,
               (g.t90 - g.t10) / 60 AS span80_minutes
        FROM g LEFT JOIN d USING (inviter, grp)
        -- crowding needs known devices: without any, only the burst-then-nothing shape counts
        WHERE (coalesce(d.n_dev, 0) > 0 AND g.n_inv >= {float(p.farm_device_ratio)} * d.n_dev)
           OR ((g.t90 - g.t10) / 60 <= {int(p.burst_minutes)} AND g.dud_share >= {float(p.dud_share)})
        """
    )


def _stars(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    # Star inviters: invitees old enough to judge, nearly all churned / one order then nothing.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_star AS
        SELECT inviter, count(*) AS n_inv, avg(churned::INT) AS churn_share, avg(dud::INT) AS dud_share
        FROM fr_edge_x WHERE judged GROUP BY 1
        HAVING count(*) >= {int(p.star_min_invitees)}
           AND greatest(avg(churned::INT), avg(dud::INT)) >= {float(p.star_churn_share)}
        """
    )
    # the star's invitees that show it (old enough to judge, churned or one order then nothing)
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE fr_star_invitee AS
        SELECT x.inviter, x.invitee FROM fr_edge_x x SEMI JOIN fr_star s USING (inviter)
        WHERE x.judged AND (x.churned OR x.dud)
        """
    )


def _pair_features(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    """fr_crowded (devices many persons share) and fr_edge_shared (identifiers both ends of a
    referral hold), from fr_shared: the scoring's inputs that would otherwise need all links."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_crowded AS
        SELECT person_id, value, n FROM fr_shared WHERE kind = 'device' AND n >= {int(p.crowded_device)}
        """
    )
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE fr_edge_shared AS
        SELECT e.inviter, e.invitee, e.campaign_id, a.kind, a.value
        FROM fr_edges e JOIN fr_shared a ON a.person_id = e.inviter
        JOIN fr_shared b ON b.person_id = e.invitee AND b.kind = a.kind AND b.value = a.value
        WHERE e.inviter <> e.invitee
        """
    )


def _anomaly_features(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    """fr_anom_feats: per-inviter features for the Isolation Forest (inviters with enough invitees)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_anom_feats AS
        WITH dev AS (
            SELECT e.inviter, count(DISTINCT l.value) AS n_dev
            FROM fr_edges e JOIN fr_links l ON l.person_id = e.invitee AND l.kind = 'device' GROUP BY 1
        )
        SELECT x.inviter, count(*) AS n_inv, avg(x.churned::INT) AS churn_share, avg(x.dud::INT) AS dud_share,
               count(*) / greatest(coalesce(any_value(dev.n_dev), 0), 1) AS inv_per_device,
               count(*) / (1 + (epoch(max(x.ts)) - epoch(min(x.ts))) / 3600) AS per_hour
        FROM fr_edge_x x LEFT JOIN dev USING (inviter)
        GROUP BY 1 HAVING count(*) >= {int(p.anomaly_min_invitees)}
        """
    )


def _anomalies(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    # Isolation Forest over per-inviter features (in inviter order: the forest's sample depends on it).
    feats = con.execute("SELECT * FROM fr_anom_feats ORDER BY inviter").df()
    anomalies = pd.DataFrame({"inviter": np.empty(0, np.int64), "strength": np.empty(0)})
    if len(feats) >= 20:
        matrix = np.column_stack(
            [
                np.log1p(feats.n_inv.to_numpy(float)),
                feats.churn_share.to_numpy(float),
                feats.dud_share.to_numpy(float),
                np.log1p(feats.inv_per_device.to_numpy(float)),
                np.log1p(feats.per_hour.to_numpy(float)),
            ]
        )
        forest = sk_ensemble.IsolationForest(
            n_estimators=50, max_samples=min(256, len(feats)), random_state=p.anomaly_seed, n_jobs=1
        )
        forest.fit(matrix)
        s = -forest.score_samples(matrix)  # 0.5 ≈ ordinary, → 1 anomalous
        strength = np.clip((s - 0.55) / 0.15, 0.0, 1.0)
        keep = strength > 0
        anomalies = pd.DataFrame({"inviter": feats.inviter.to_numpy()[keep], "strength": strength[keep]})
    con.register("fr_anom_df", anomalies)
    con.execute("CREATE OR REPLACE TEMP TABLE fr_anom AS SELECT * FROM fr_anom_df")
    con.unregister("fr_anom_df")


def _virtual_phones(
    con: duckdb.DuckDBPyConnection, virtual_phone_persons: np.ndarray | list[int] | None
) -> None:
    vp = np.asarray(list(virtual_phone_persons) if virtual_phone_persons is not None else [], dtype=np.int64)
    con.register("fr_vp_df", pd.DataFrame({"person_id": vp}))
    con.execute("CREATE OR REPLACE TEMP TABLE fr_vp AS SELECT DISTINCT person_id FROM fr_vp_df")
    con.unregister("fr_vp_df")


# edge evidence that also marks the invitee (the second account of a self-referral)
SELF_CODES = ("SAME_PERSON", "SHARED_DEVICE", "SHARED_PHONE", "SHARED_PAYMENT")
# person reasons that belong to a role or to certain edges only: not copied onto every referral
NOT_PROPAGATED = ("FARM_INVITER", "STAR_CHURN", "ANOMALY", *SELF_CODES)


def _edge_evidence(con: duckdb.DuckDBPyConnection) -> None:
    """fr_edge_evidence: what a referral shows by itself (same person, shared identifiers, cycle)."""
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_edge_evidence AS
        {patterns.EDGE_REASONS_SQL}
        UNION ALL
        SELECT e.inviter, e.invitee, e.campaign_id, 'CIRCULAR', 1.0, json_object('size', a.size)::VARCHAR
        FROM fr_edges e JOIN fr_cycle a ON a.person_id = e.inviter JOIN fr_cycle b ON b.person_id = e.invitee
        WHERE a.scc = b.scc
        """
    )


def _person_scores(con: duckdb.DuckDBPyConnection, p: GraphParams, as_of: datetime) -> None:
    # Reasons per person: (person_id, code, strength, detail); a detail is the evidence as JSON.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_reasons AS
        SELECT DISTINCT ON (person_id, code) person_id, code, strength, detail FROM (
            SELECT m.person_id, 'DEVICE_FARM' AS code, 1.0 AS strength,
                   json_object('n', f.n_inv, 'inviter', f.inviter, 'devices', f.n_dev, 'ip', f.ip)::VARCHAR AS detail
            FROM fr_farm f, unnest(f.members) AS m(person_id)
            UNION ALL
            SELECT inviter, 'FARM_INVITER', 1.0, json_object('n', n_inv, 'devices', n_dev, 'ip', ip)::VARCHAR
            FROM fr_farm
            UNION ALL
            SELECT inviter, 'STAR_CHURN', 1.0,
                   json_object('n', n_inv, 'churned', round(100 * churn_share))::VARCHAR FROM fr_star
            UNION ALL
            SELECT invitee, 'STAR_CHURN_INVITEE', 1.0, json_object('inviter', inviter)::VARCHAR
            FROM fr_star_invitee
            UNION ALL
            SELECT person_id, 'CYCLE', 1.0, json_object('size', size)::VARCHAR FROM fr_cycle
            UNION ALL
            SELECT person_id, 'CROWDED_DEVICE', 1.0, json_object('device', arg_max(value, n), 'n', max(n))::VARCHAR
            FROM fr_crowded GROUP BY 1
            UNION ALL
            SELECT inviter, 'ANOMALY', strength, json_object('strength', round(strength, 2))::VARCHAR FROM fr_anom
            UNION ALL
            SELECT person_id, 'VIRTUAL_PHONE', 1.0, '' FROM fr_vp
            UNION ALL
            {patterns.PERSON_REASONS_SQL}
            UNION ALL
            SELECT invitee, code, strength, detail FROM fr_edge_evidence WHERE code IN {SELF_CODES}
        ) ORDER BY person_id, code, strength DESC
        """
    )
    _register_weights(con)
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {PERSON_TABLE} AS
        SELECT r.person_id,
               round(100 * (1 - exp(sum(ln(greatest(1e-12, 1 - w.weight / 100 * r.strength))))), 1) AS score,
               list(r.code ORDER BY w.weight * r.strength DESC, r.code) AS reasons,
               list(r.detail ORDER BY w.weight * r.strength DESC, r.code) AS details,
               arg_max(w.pattern, w.weight * r.strength) AS pattern,
               TIMESTAMP '{as_of}' AS as_of
        FROM fr_reasons r JOIN fr_weights w USING (code)
        GROUP BY 1
        """
    )


def _referral_scores(con: duckdb.DuckDBPyConnection, as_of: datetime) -> None:
    # Referral reasons: the invitee's own reasons (not the role- or edge-bound ones), the inviter's
    # anomaly, and the edge's own evidence.
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_edge_reasons AS
        SELECT DISTINCT ON (inviter, invitee, campaign_id, code) * FROM (
            SELECT e.inviter, e.invitee, e.campaign_id, r.code, r.strength, r.detail
            FROM fr_edges e JOIN fr_reasons r ON r.person_id = e.invitee
            WHERE r.code NOT IN {NOT_PROPAGATED}
            UNION ALL
            SELECT e.inviter, e.invitee, e.campaign_id, r.code, r.strength, r.detail
            FROM fr_edges e JOIN fr_reasons r ON r.person_id = e.inviter
            WHERE r.code = 'ANOMALY'
            UNION ALL
            SELECT * FROM fr_edge_evidence
        )
        """
    )
    con.execute(
        f"""
        CREATE OR REPLACE TABLE {REFERRAL_TABLE} AS
        SELECT r.inviter AS inviter_person_id, r.invitee AS invitee_person_id, r.campaign_id,
               any_value(e.channel) AS channel, any_value(e.ts) AS ts,
               round(100 * (1 - exp(sum(ln(greatest(1e-12, 1 - w.weight / 100 * r.strength))))), 1) AS score,
               list(r.code ORDER BY w.weight * r.strength DESC, r.code) AS reasons,
               list(r.detail ORDER BY w.weight * r.strength DESC, r.code) AS details,
               arg_max(w.pattern, w.weight * r.strength) AS pattern,
               TIMESTAMP '{as_of}' AS as_of
        FROM fr_edge_reasons r JOIN fr_weights w USING (code)
        JOIN fr_edges e ON e.inviter = r.inviter AND e.invitee = r.invitee
             AND e.campaign_id IS NOT DISTINCT FROM r.campaign_id
        GROUP BY 1, 2, 3
        """
    )


def _drop_temp_tables(con: duckdb.DuckDBPyConnection) -> None:
    for temp in (
        "fr_ipua",
        "fr_ipua_crowd",
        "fr_links",
        "fr_shared",
        "fr_comp",
        "fr_cycle",
        "fr_invitee",
        "fr_edge_x",
        "fr_farm",
        "fr_star",
        "fr_anom",
        "fr_anom_feats",
        "fr_star_invitee",
        "fr_crowded",
        "fr_edge_shared",
        "fr_vp",
        "fr_reasons",
        "fr_edge_reasons",
        "fr_edge_evidence",
        "fr_self",
        "fr_idlinks",
        "fr_fast",
        "fr_quiet",
        "fr_chain",
        "fr_cluster",
        "fr_edges",
        "fr_weights",
    ):
        con.execute(f"DROP TABLE IF EXISTS {temp}")


def _register_weights(con: duckdb.DuckDBPyConnection) -> None:
    frame = pd.DataFrame(
        [{"code": r.code, "weight": float(r.weight), "pattern": r.pattern} for r in REASONS.values()]
    )
    con.register("fr_weights_df", frame)
    con.execute("CREATE OR REPLACE TEMP TABLE fr_weights AS SELECT * FROM fr_weights_df")
    con.unregister("fr_weights_df")


def person_risk(
    con: duckdb.DuckDBPyConnection,
    min_score: float = 0.0,
    limit: int | None = None,
    person_id: int | None = None,
) -> pd.DataFrame:
    """The last scan's person scores (empty before the first scan)."""
    if not _exists(con, PERSON_TABLE):
        return pd.DataFrame(columns=["person_id", "score", "reasons", "details", "pattern", "as_of"])
    sql = f"SELECT * FROM {PERSON_TABLE} WHERE score >= ?"
    args: list = [min_score]
    if person_id is not None:
        sql += " AND person_id = ?"
        args.append(int(person_id))
    sql += " ORDER BY score DESC, person_id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    return con.execute(sql, args).df()


def referral_risk(con: duckdb.DuckDBPyConnection, min_score: float = 0.0) -> pd.DataFrame:
    if not _exists(con, REFERRAL_TABLE):
        return pd.DataFrame(
            columns=[
                "inviter_person_id",
                "invitee_person_id",
                "campaign_id",
                "channel",
                "ts",
                "score",
                "reasons",
                "details",
                "pattern",
                "as_of",
            ]
        )
    return con.execute(
        f"SELECT * FROM {REFERRAL_TABLE} WHERE score >= ? ORDER BY score DESC, invitee_person_id", [min_score]
    ).df()


def _exists(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    return bool(
        aggregate_row(con, "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table])[0]
    )
