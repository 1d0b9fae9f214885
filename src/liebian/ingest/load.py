"""Loading a batch into the warehouse in one DuckDB transaction: events, edges and messages as rows,
orders as their latest status per order, identities as OneID links; the batch record and its rejects."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from liebian import ports
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import eventstore
from liebian.identity import bulk
from liebian.identity import service as identity
from liebian.identity.keys import DIRECT_TYPES
from liebian.ingest import campaigns, currency
from liebian.ingest.files import RawFile
from liebian.ingest.steps import Steps
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")


@dataclass
class Outcome:
    loaded: int
    duplicate: int
    rejected_rows: int
    updated: int
    reasons: dict[str, int]
    rejects: list[tuple[int, str, str, str]]
    loaded_lines: set[int]
    details: dict[str, int] = field(default_factory=dict)


def load(
    con: duckdb.DuckDBPyConnection,
    kind: str,
    source: str,
    batch_id: str,
    raw_file: RawFile,
    want_lines: bool,
    registration: bulk.Registration | None = None,
) -> Outcome:
    now = utcnow()
    while True:
        con.execute("BEGIN TRANSACTION")
        in_transaction = True
        try:
            if registration is not None:
                registration.map_into(con)  # the identifiers the store is being given meanwhile
            if kind == "orders":
                loaded, updated = _load_orders(con, batch_id, now)
            else:
                loaded, updated = _load_rows(con, kind, batch_id, now, want_lines), 0
            if kind in ("events", "orders"):
                _record_members(con)
            if kind == "events":
                campaigns.record_event_titles(con)
            rejects = con.execute(
                "SELECT line, field, reason, raw FROM batch_rejects ORDER BY line, field"
            ).fetchall()
            rejected_rows = len({line for line, *_ in rejects})
            valid = raw_file.rows_read - rejected_rows
            duplicate = valid - loaded
            con.execute(
                "INSERT INTO rejects SELECT ?, ?, ?, line, field, reason, raw, ? FROM batch_rejects",
                [batch_id, kind, source, now],
            )
            con.execute(
                "INSERT INTO import_batches VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [batch_id, kind, source, raw_file.rows_read, loaded, duplicate, rejected_rows, now],
            )
            # Commit only what the store holds: wait for it (it had the whole load to finish).
            if registration is not None and not registration.stored():
                # An id was taken or an identifier registered meanwhile: undo, register by every
                # rule (the rows' person ids may differ), load again.
                con.execute("ROLLBACK")
                in_transaction = False
                registration.register_here(con)
                registration = None
                continue
            if registration is not None:
                registration.advance(con)
            con.execute("COMMIT")
        except BaseException:
            if registration is not None:
                registration.abandon()
            if in_transaction:
                con.execute("ROLLBACK")
            raise
        break
    try:
        with session_scope() as session:
            identity.sync_warehouse(session, con)  # replay merges other writers made meanwhile
    except duckdb.TransactionException:
        pass  # the rows are committed; the next import or sync replays the merges
    eventstore.commit(con, batch_id)  # the batch, and the merges just replayed, to the Parquet store
    for follower in ports.current().import_followers:  # e.g. anti-fraud learns the batch's devices
        follower(con, kind, batch_id)
    lines = {r[0] for r in con.execute("SELECT line FROM loaded_lines").fetchall()} if want_lines else set()
    reasons = Counter(reason_key(reason) for _line, _f, reason, _raw in rejects)
    return Outcome(loaded, duplicate, rejected_rows, updated, dict(reasons), rejects, lines)


# Persons the batch says are members since a time (`member_since`): their earliest, kept once per
# person and time (a later or equal one known already adds nothing). Analytics counts them as
# existing members, never new users, when they were members before their first registration.
MEMBERS_INSERT = """
INSERT INTO members
SELECT n.person_id, n.member_since FROM (
    SELECT m.person_id, min(t.member_since) AS member_since
    FROM to_load t
    JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
    WHERE t.member_since IS NOT NULL
    GROUP BY m.person_id
) n
ANTI JOIN members e ON e.person_id = n.person_id AND e.member_since <= n.member_since
"""


def _record_members(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(MEMBERS_INSERT)


def reason_key(reason: str) -> str:
    """The histogram bucket of a reason: without the offending value it quotes."""
    for prefix in ("unreadable timestamp", "unknown channel", "unknown id_type", "unknown order status"):
        if reason.startswith(prefix):
            return prefix
    return reason.split(":")[0]


EVENT_INSERT = """
INSERT INTO events
SELECT t.event_id, t.ts, m.person_id, t.id_type, t.user_id, t.event, t.channel, t.campaign_id,
       t.invite_code, {referrer}, t.device_id, t.ip, t._props, t.received_at, $batch, $now
FROM to_load t
JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
{referrer_join}
"""


REFERRER_JOIN = "LEFT JOIN identity_map r ON r.id_type = t.referrer_id_type AND r.id_value = t.referrer_id"


EDGE_INSERT = """
INSERT INTO referral_edges
SELECT c.inviter, c.invitee, c.campaign_id, c.channel, c.ts, c.event_id FROM (
    SELECT r.person_id AS inviter, m.person_id AS invitee, t.campaign_id, t.channel, t.ts, t.event_id
    FROM to_load t
    JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
    JOIN identity_map r ON r.id_type = t.referrer_id_type AND r.id_value = t.referrer_id
    WHERE r.person_id <> m.person_id
    QUALIFY row_number() OVER (PARTITION BY m.person_id, t.campaign_id ORDER BY t.ts, t._line) = 1
) c
ANTI JOIN referral_edges e
    ON e.invitee_person_id = c.invitee AND e.campaign_id IS NOT DISTINCT FROM c.campaign_id
"""


MESSAGE_INSERT = """
INSERT INTO messages
SELECT t.message_id, t.ts, t.group_id, m.person_id, t.id_type, t.user_id, t.text, t.channel,
       t._props, $batch, $now
FROM to_load t
JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
"""


def _load_rows(
    con: duckdb.DuckDBPyConnection, kind: str, batch_id: str, now: datetime, want_lines: bool
) -> int:
    counts = "count(*), count(referrer_id)" if kind == "events" else "count(*), 0"
    expected, referred = con.execute(f"SELECT {counts} FROM to_load").fetchall()[0]
    if kind == "events":
        # Without referrers in the batch, skip probing identity_map a second time for every row.
        sql = EVENT_INSERT.format(
            referrer="r.person_id" if referred else "NULL",
            referrer_join=REFERRER_JOIN if referred else "",
        )
    else:
        sql = MESSAGE_INSERT
    inserted = con.execute(sql, {"batch": batch_id, "now": now}).fetchall()[0][0]
    if inserted != expected:  # never drop a row silently
        raise RuntimeError(f"{kind}: {expected - inserted} rows found no person in identity_map")
    if referred:
        con.execute(EDGE_INSERT)
    if want_lines:  # the collector answers per item
        con.execute("CREATE OR REPLACE TEMP TABLE loaded_lines AS SELECT _line AS line FROM to_load")
    return inserted


def _load_orders(con: duckdb.DuckDBPyConnection, batch_id: str, now: datetime) -> tuple[int, int]:
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE order_plan AS
        SELECT g.*, o.status AS cur_status, o.status_ts AS cur_status_ts, f.status AS first_status,
               o.order_id IS NULL AS is_new
        FROM order_groups g
        JOIN to_load f ON f._line = g.first_line
        LEFT JOIN orders o ON o.order_id = g.order_id
        """
    )
    expected = con.execute("SELECT count(*) FROM order_plan WHERE is_new").fetchall()[0][0]
    inserted = con.execute(
        f"""
        INSERT INTO orders
        SELECT t.order_id, t.ts, m.person_id, t.id_type, t.user_id, t.amount_fen, t.currency,
               p.final.status, t.channel, t.campaign_id, p.final.ts, t._props, t.received_at, $batch, $now,
               {currency.warehouse_values(con)}
        FROM order_plan p
        JOIN to_load t ON t._line = p.first_line
        JOIN identity_map m ON m.id_type = t.id_type AND m.id_value = t.user_id
        WHERE p.is_new
        """,
        {"batch": batch_id, "now": now},
    ).fetchall()[0][0]
    if inserted != expected:
        raise RuntimeError(f"orders: {expected - inserted} rows found no person in identity_map")
    # A known order moves on only to a later or stronger state (paid -> refunded/cancelled).
    con.execute(
        f"""
        CREATE OR REPLACE TEMP TABLE order_updates AS
        SELECT order_id, final FROM order_plan
        WHERE NOT is_new AND final.status <> cur_status
          AND ({STATUS_RANK.replace("status", "final.status")} > {STATUS_RANK.replace("status", "cur_status")}
               OR ({STATUS_RANK.replace("status", "final.status")} = {STATUS_RANK.replace("status", "cur_status")}
                   AND final.ts > cur_status_ts))
        """
    )
    updated = con.execute(
        """
        UPDATE orders SET status = u.final.status, status_ts = u.final.ts
        FROM order_updates u WHERE orders.order_id = u.order_id
        """
    ).fetchall()[0][0]
    con.execute(
        """
        CREATE OR REPLACE TEMP TABLE loaded_lines AS
        SELECT first_line AS line FROM order_plan WHERE is_new
        UNION SELECT final.line FROM order_plan WHERE is_new AND final.status <> first_status
        UNION SELECT final.line FROM order_updates
        """
    )
    loaded = con.execute("SELECT count(*) FROM loaded_lines").fetchall()[0][0]
    con.execute("DROP TABLE order_plan")
    con.execute("DROP TABLE order_updates")
    return loaded, updated


def load_identities(
    con: duckdb.DuckDBPyConnection, source: str, batch_id: str, raw_file: RawFile, steps: Steps
) -> Outcome:
    """Identity evidence files: every valid pair goes through OneID's link()."""
    rows = con.execute(
        """
        SELECT s._line, s.id_type_a, coalesce(ha.id_value, s.raw_a), s.raw_a,
               s.id_type_b, coalesce(hb.id_value, s.raw_b), s.raw_b, s.ts, s.source
        FROM staged s
        LEFT JOIN hashed ha ON ha.id_type = s.id_type_a AND ha.raw = s.raw_a
        LEFT JOIN hashed hb ON hb.id_type = s.id_type_b AND hb.raw = s.raw_b
        WHERE len(s._errors) = 0
        ORDER BY s._line
        """
    ).fetchall()
    seen: set[tuple] = set()
    evidence = []
    for _line, ta, va, ra, tb, vb, rb, ts, row_source in rows:
        pair = tuple(sorted([(ta, va), (tb, vb)]))
        if pair in seen:
            continue
        seen.add(pair)
        a = identity.RawIdentifier(ta, ra) if ta in DIRECT_TYPES else (ta, va)
        b = identity.RawIdentifier(tb, rb) if tb in DIRECT_TYPES else (tb, vb)
        evidence.append(identity.LinkEvidence(a, b, source=(row_source or source)[:64], observed_at=ts))
    with steps.step("linking identities"):
        report = None
        if evidence:
            with session_scope() as session:
                report = identity.link(session, evidence)
        with session_scope() as session:
            identity.sync_warehouse(session, con)
    rejects = con.execute(
        "SELECT line, field, reason, raw FROM batch_rejects ORDER BY line, field"
    ).fetchall()
    rejected_rows = len({line for line, *_ in rejects})
    already = report.already_same if report else 0
    loaded = len(evidence) - already
    duplicate = raw_file.rows_read - rejected_rows - loaded
    now = utcnow()
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(
            "INSERT INTO rejects SELECT ?, 'identities', ?, line, field, reason, raw, ? FROM batch_rejects",
            [batch_id, source, now],
        )
        con.execute(
            "INSERT INTO import_batches VALUES (?, 'identities', ?, ?, ?, ?, ?, ?)",
            [batch_id, source, raw_file.rows_read, loaded, duplicate, rejected_rows, now],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    eventstore.commit(con, batch_id)  # the merges and identifiers the evidence brought
    reasons = Counter(reason_key(reason) for _l, _f, reason, _r in rejects)
    details = {
        "merged": report.merged if report else 0,
        "already_same": already,
        "conflicts": len(report.conflicts) if report else 0,
    }
    return Outcome(loaded, duplicate, rejected_rows, 0, dict(reasons), rejects, set(), details)


STATUS_RANK = "CASE status WHEN 'paid' THEN 0 ELSE 1 END"
