"""A warehouse as the previous release (no schema versioning) left it, built from code.

`PREVIOUS_RELEASE_DDL` is `SCHEMA` of `src/liebian/engine/warehouse.py` on main before versioning,
copied verbatim (comments aside): it is frozen here on purpose, so a change to migration 1 that
would no longer match what those files hold makes the tests fail.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

PREVIOUS_RELEASE_DDL = [
    """
    CREATE TABLE IF NOT EXISTS events (
        event_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        event VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        campaign_id VARCHAR,
        invite_code VARCHAR,
        referrer_person_id BIGINT,
        device_id VARCHAR,
        ip VARCHAR,
        props VARCHAR,
        received_at TIMESTAMP,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS orders (
        order_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        amount_fen BIGINT NOT NULL,
        currency VARCHAR NOT NULL,
        status VARCHAR NOT NULL,
        channel VARCHAR NOT NULL,
        campaign_id VARCHAR,
        status_ts TIMESTAMP NOT NULL,
        props VARCHAR,
        received_at TIMESTAMP,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS messages (
        message_id VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        group_id VARCHAR NOT NULL,
        person_id BIGINT NOT NULL,
        id_type VARCHAR NOT NULL,
        user_id VARCHAR NOT NULL,
        text VARCHAR,
        channel VARCHAR NOT NULL,
        props VARCHAR,
        batch_id VARCHAR NOT NULL,
        ingested_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS referral_edges (
        inviter_person_id BIGINT NOT NULL,
        invitee_person_id BIGINT NOT NULL,
        campaign_id VARCHAR,
        channel VARCHAR NOT NULL,
        ts TIMESTAMP NOT NULL,
        event_id VARCHAR NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS identity_map (
        id_type VARCHAR NOT NULL,
        id_value VARCHAR NOT NULL,
        person_id BIGINT NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS applied_merges (
        merge_id BIGINT NOT NULL,
        applied_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS import_batches (
        batch_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        rows_read BIGINT NOT NULL,
        rows_loaded BIGINT NOT NULL,
        rows_duplicate BIGINT NOT NULL,
        rows_rejected BIGINT NOT NULL,
        finished_at TIMESTAMP NOT NULL
    )
    """,
    """
    CREATE TABLE IF NOT EXISTS rejects (
        batch_id VARCHAR NOT NULL,
        kind VARCHAR NOT NULL,
        source VARCHAR NOT NULL,
        line BIGINT,
        field VARCHAR,
        reason VARCHAR NOT NULL,
        raw VARCHAR,
        rejected_at TIMESTAMP NOT NULL
    )
    """,
]

# Created on first use by the previous release's `identity.service.sync_watermark`.
PREVIOUS_RELEASE_IDENTITY_SYNC_DDL = "CREATE TABLE IF NOT EXISTS identity_sync (last_identifier_id BIGINT)"

T = datetime(2026, 5, 1, 8, 30)

PREVIOUS_RELEASE_ROWS = {
    "events": [
        (
            "e1",
            T,
            11,
            "phone",
            "h:aa",
            "signup",
            "app",
            "c1",
            "INV1",
            10,
            "d1",
            "1.2.3.4",
            '{"k": 1}',
            T,
            "b1",
            T,
        ),
        (
            "e2",
            T,
            10,
            "unionid",
            "u10",
            "invite_share",
            "wecom",
            "c1",
            None,
            None,
            None,
            None,
            None,
            None,
            "b1",
            T,
        ),
    ],
    "orders": [("o1", T, 11, "phone", "h:aa", 9900, "CNY", "paid", "app", "c1", T, None, T, "b2", T)],
    "messages": [("m1", T, "g1", 10, "unionid", "u10", "hello", "wecom", None, "b3", T)],
    "referral_edges": [(10, 11, "c1", "app", T, "e1")],
    "identity_map": [("phone", "h:aa", 11), ("unionid", "u10", 10)],
    "applied_merges": [(7, T)],
    "import_batches": [("b1", "events", "events.csv", 3, 2, 0, 1, T)],
    "rejects": [("b1", "events", "events.csv", 4, "ts", "not a time", "x,y", T)],
}


def build_previous_release_warehouse(path: Path, synced: bool = True) -> None:
    """A warehouse file made by the previous release, with rows in every table; `synced`: after an
    identity sync (which added its watermark table)."""
    con = duckdb.connect(str(path))
    try:
        for ddl in PREVIOUS_RELEASE_DDL:
            con.execute(ddl)
        for table, rows in PREVIOUS_RELEASE_ROWS.items():
            marks = ", ".join("?" * len(rows[0]))
            con.executemany(f"INSERT INTO {table} VALUES ({marks})", rows)
        if synced:
            con.execute(PREVIOUS_RELEASE_IDENTITY_SYNC_DDL)
            con.execute("INSERT INTO identity_sync VALUES (42)")
    finally:
        con.close()
