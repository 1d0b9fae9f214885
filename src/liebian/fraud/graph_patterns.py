"""Graph-scan steps for the patterns a single inviter's view misses: self-referral through OneID,
identifiers learned from the identity store, chains and cross-inviter clusters.

Each step reads the scan's temp tables (`fr_edges`, `fr_edge_x`, `fr_ipua`, `fr_links` …, see
graph.py) and writes its own; the evidence of a reason is a JSON object of parameters (which
device, which address, which account) that `reasons.explain` renders in Chinese or English.

- Self-referral: an event whose referrer is its own person (after OneID) is a referral, even when
  the importer dropped its edge because the identities were known first (`fr_self`).
- Identity links: evidence the identity store kept as a *conflict* (e.g. a phone seen with a second
  unionid) still says that person holds that phone / payment account / device (`fr_idlinks`).
- Chains: long thin paths built fast — each invitee invites the next within `chain_gap_minutes`,
  every account of it does nothing after at most one order, on a few addresses (`fr_chain`).
- Cross-inviter clusters: invitees of several different inviters on one address+UA, device or
  payment account, signed up in a burst and gone after one order (`fr_cluster`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from liebian.fraud.graph_params import GraphParams
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
    import numpy as np
    import pandas as pd
    import scipy.sparse as sp_sparse
    import scipy.sparse.csgraph as sp_csgraph
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")
    pd = lazy_import("pandas")
    sp_sparse = lazy_import("scipy.sparse")
    sp_csgraph = lazy_import("scipy.sparse.csgraph")

# identifier types that are a person's own (a second person holding one is the same human or a fraud)
DIRECT_KINDS = {"phone": "phone", "payment_account": "payment_account", "device_id": "device"}
LINK_COLUMNS = ["id_type_a", "id_value_a", "id_type_b", "id_value_b"]


def self_referrals(con: duckdb.DuckDBPyConnection) -> None:
    """fr_self: invites a person sent to their own other account (the referrer resolved to the
    invitee's person), with that account as the evidence."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE fr_self AS
        SELECT person_id, campaign_id, any_value(channel) AS channel, min(ts) AS ts,
               arg_min(id_type || ':' || user_id, ts) AS account
        FROM events WHERE referrer_person_id = person_id GROUP BY person_id, campaign_id
        """
    )


def identity_links(con: duckdb.DuckDBPyConnection, links: pd.DataFrame | None) -> None:
    """fr_idlinks (person_id, kind, value): direct identifiers a person was seen with in the identity
    store's evidence although OneID did not merge them (a conflict), either side of each link."""
    frame = links if links is not None else pd.DataFrame(columns=LINK_COLUMNS)
    con.register("fr_idlinks_df", frame[LINK_COLUMNS].astype(str))
    kinds = ", ".join(f"('{t}', '{k}')" for t, k in DIRECT_KINDS.items())
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_idlinks AS
        WITH k(id_type, kind) AS (VALUES {kinds}),
        sides AS (
            SELECT id_type_a AS own_t, id_value_a AS own_v, id_type_b AS t, id_value_b AS v FROM fr_idlinks_df
            UNION ALL
            SELECT id_type_b, id_value_b, id_type_a, id_value_a FROM fr_idlinks_df
        )
        SELECT DISTINCT m.person_id, k.kind, s.v AS value
        FROM sides s JOIN k ON k.id_type = s.t
        JOIN identity_map m ON m.id_type = s.own_t AND m.id_value = s.own_v
        """
    )
    con.unregister("fr_idlinks_df")


def _components_undirected(src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    nodes, inverse = np.unique(np.concatenate([src, dst]), return_inverse=True)
    n = len(nodes)
    if n == 0:
        return nodes, np.empty(0, dtype=np.int64)
    a, b = inverse[: len(src)], inverse[len(src) :]
    graph = sp_sparse.coo_matrix((np.ones(len(a), dtype=np.int8), (a, b)), shape=(n, n)).tocsr()
    _, labels = sp_csgraph.connected_components(graph, directed=False)
    return nodes, labels.astype(np.int64)


def chains(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    """fr_chain (person_id, chain, n, n_ip, n_ua, top_ip): the accounts of thin fast chains; every
    referral into one of them (the head's too: it brought a chain account in) gets CHAIN."""
    # A link of a chain: a→b followed by b→c within the gap. Joining on inviter = invitee keeps it
    # linear in the edges (an invitee invites few).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_fast AS
        WITH pairs AS (
            SELECT a.inviter AS a1, a.invitee AS a2, b.invitee AS b2
            FROM fr_edge_x a JOIN fr_edge_x b ON b.inviter = a.invitee
            WHERE b.ts >= a.ts AND b.ts <= a.ts + to_minutes({int(p.chain_gap_minutes)}::BIGINT)
        )
        SELECT a1 AS inviter, a2 AS invitee FROM pairs UNION SELECT a2, b2 FROM pairs
        """
    )
    _quiet_nodes(con)
    arrays = con.execute(
        "SELECT inviter, invitee FROM fr_fast SEMI JOIN fr_quiet q ON q.person_id = inviter"
        " SEMI JOIN fr_quiet r ON r.person_id = invitee"
    ).fetchnumpy()
    nodes, labels = _components_undirected(
        np.asarray(arrays["inviter"], dtype=np.int64), np.asarray(arrays["invitee"], dtype=np.int64)
    )
    con.register("fr_chain_comp_df", pd.DataFrame({"person_id": nodes, "chain": labels}))
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_chain AS
        WITH e AS (
            -- the chain's own referrals: both ends quiet accounts of it
            SELECT f.inviter, f.invitee, c.chain FROM fr_fast f JOIN fr_chain_comp_df c ON c.person_id = f.invitee
            JOIN fr_chain_comp_df ci ON ci.person_id = f.inviter AND ci.chain = c.chain
        ), out_degree AS (
            SELECT chain, max(d) AS max_out FROM (SELECT chain, inviter, count(*) AS d FROM e GROUP BY ALL) GROUP BY 1
        ), stats AS (
            SELECT chain, count(*) AS n_edges FROM e GROUP BY 1
        ), net AS (
            SELECT c.chain, count(DISTINCT i.ip) AS n_ip, count(DISTINCT i.ua) AS n_ua,
                   mode(i.ip) AS top_ip, count(DISTINCT c.person_id) AS n_persons
            FROM fr_chain_comp_df c LEFT JOIN fr_ipua i USING (person_id) GROUP BY 1
        )
        SELECT c.person_id, c.chain, n.n_persons AS n, n.n_ip, n.n_ua, n.top_ip
        FROM fr_chain_comp_df c JOIN stats s USING (chain) JOIN net n USING (chain)
        JOIN out_degree o USING (chain)
        WHERE s.n_edges >= {int(p.chain_min_edges)} AND o.max_out <= 2
          -- a few addresses / one user agent for the whole chain: one operator
          AND n.n_ip BETWEEN 1 AND 2 + n.n_persons // 4 AND n.n_ua <= 2
        """
    )
    con.unregister("fr_chain_comp_df")


def _quiet_nodes(con: duckdb.DuckDBPyConnection) -> None:
    """fr_quiet: persons on fast links who did nothing after at most one order (a chain's accounts;
    a genuine customer whose link a chain's head received is not one of them)."""
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE fr_quiet AS
        WITH nodes AS (SELECT inviter AS person_id FROM fr_fast UNION SELECT invitee FROM fr_fast),
        ev AS (SELECT person_id, min(ts) AS first_ts, max(ts) AS last_ts FROM events SEMI JOIN nodes USING (person_id)
               GROUP BY 1),
        od AS (SELECT person_id, count(*) AS n, max(ts) AS last_od FROM orders SEMI JOIN nodes USING (person_id)
               WHERE status NOT IN ('cancelled', 'refunded') GROUP BY 1),
        -- sending an invite is activity too: a customer who signed up weeks before inviting the
        -- chain's head is not one of its accounts
        iv AS (SELECT inviter AS person_id, max(ts) AS last_inv FROM fr_edge_x SEMI JOIN nodes ON person_id = inviter
               GROUP BY 1)
        SELECT person_id FROM nodes LEFT JOIN ev USING (person_id) LEFT JOIN od USING (person_id)
        LEFT JOIN iv USING (person_id)
        WHERE coalesce(od.n, 0) <= 1
          AND greatest(ev.last_ts, od.last_od, iv.last_inv) < ev.first_ts + INTERVAL 2 DAY
        """
    )


def clusters(con: duckdb.DuckDBPyConnection, p: GraphParams) -> None:
    """fr_cluster (kind, value, members, …): invitees of different inviters crowding on one identifier."""
    lo = round((1.0 - float(p.burst_share)) / 2, 4)
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE fr_cluster AS
        WITH src AS (
            -- farm and cluster accounts may be seen once: single visits count on a crowded address
            SELECT c.person_id, 'ipua' AS kind, c.value FROM fr_ipua_crowd c
            UNION ALL
            SELECT person_id, kind, value FROM fr_shared WHERE kind IN ('device', 'payment_account')
        ), inv AS MATERIALIZED (
            SELECT s.kind, s.value, x.invitee, x.inviter, x.ts, x.dud FROM src s JOIN fr_edge_x x ON x.invitee = s.person_id
        ), candidates AS (
            -- cheap first cut: enough quiet invitees at all (most identifiers have none)
            SELECT kind, value FROM inv WHERE dud GROUP BY ALL
            HAVING count(*) >= {int(min(p.cluster_min_invitees, p.cluster_min_direct) * float(p.dud_share))}
        )
        SELECT kind, value, count(DISTINCT invitee) AS n_inv, count(DISTINCT inviter) AS n_inviters,
               list(DISTINCT invitee) AS members,
               (quantile_cont(epoch(ts), {1 - lo}) - quantile_cont(epoch(ts), {lo})) / 3600 AS span_hours
        FROM inv SEMI JOIN candidates USING (kind, value) GROUP BY kind, value
        HAVING count(DISTINCT invitee) >= CASE kind WHEN 'ipua' THEN {int(p.cluster_min_invitees)}
                                                    ELSE {int(p.cluster_min_direct)} END
           AND count(DISTINCT inviter) >= {int(p.cluster_min_inviters)}
           AND avg(dud::INT) >= {float(p.dud_share)}
           AND (quantile_cont(epoch(ts), {1 - lo}) - quantile_cont(epoch(ts), {lo})) / 3600 <= {float(p.cluster_burst_hours)}
        """
    )


def evidence_sql(kind: str, value: str) -> str:
    """SQL for a JSON evidence object naming an identifier: a device id as it is, an address with a
    short hash of its user agent, a phone / payment account only by a short prefix of its HMAC."""
    return (
        f"CASE {kind} WHEN 'device' THEN json_object('device', {value}) "
        f"WHEN 'ipua' THEN json_object('ip', split_part({value}, '|', 1), "
        f"'ua', left(md5(substr({value}, strpos({value}, '|') + 1)), 8)) "
        f"ELSE json_object('kind', {kind}, 'ref', left({value}, 8)) END"
    )


PERSON_REASONS_SQL = f"""
    SELECT person_id, 'CHAIN' AS code, 1.0 AS strength,
           json_object('n', n, 'ips', n_ip, 'ip', top_ip)::VARCHAR AS detail FROM fr_chain
    UNION ALL
    SELECT m.person_id, 'CROSS_CLUSTER', 1.0,
           json_merge_patch({evidence_sql("c.kind", "c.value")},
                            json_object('n', c.n_inv, 'inviters', c.n_inviters))::VARCHAR
    FROM fr_cluster c, unnest(c.members) AS m(person_id)
    UNION ALL
    SELECT person_id, 'SAME_PERSON', 1.0, json_object('account', left(account, 24))::VARCHAR FROM fr_self
"""

EDGE_REASONS_SQL = f"""
    SELECT e.inviter, e.invitee, e.campaign_id, 'SAME_PERSON' AS code, 1.0 AS strength,
           json_object('account', left(coalesce(s.account, ''), 24))::VARCHAR AS detail
    FROM fr_edges e LEFT JOIN fr_self s ON s.person_id = e.invitee AND s.campaign_id IS NOT DISTINCT FROM e.campaign_id
    WHERE e.inviter = e.invitee
    UNION ALL
    SELECT a.inviter, a.invitee, a.campaign_id,
           CASE a.kind WHEN 'device' THEN 'SHARED_DEVICE' WHEN 'payment_account' THEN 'SHARED_PAYMENT'
                       WHEN 'phone' THEN 'SHARED_PHONE' ELSE 'SHARED_IP_UA' END,
           -- an address+UA shared with the inviter is also what colleagues show: with an anomaly
           -- score alone it must stay below the flag (24 + 30 → 47)
           CASE a.kind WHEN 'ipua' THEN 0.8 ELSE 1.0 END,
           {evidence_sql("a.kind", "a.value")}::VARCHAR
    FROM fr_edge_shared a
"""
