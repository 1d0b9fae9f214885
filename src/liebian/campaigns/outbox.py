"""The campaign engine's warehouse outbox: invite, click, accept and conversion events and referral
edges are queued in the operational store in the request's transaction, and moved into the DuckDB
warehouse off the request path (`drain_warehouse`, run by the server's flusher thread and by
`liebian campaign flush`)."""

from __future__ import annotations

import threading
from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from liebian.campaigns.common import to_json
from liebian.campaigns.models import Outbox
from liebian.db.base import table_of, utcnow
from liebian.db.session import session_scope
from liebian.engine import warehouse


def record_event(
    session: Session,
    *,
    event: str,
    ts: datetime,
    person_id: int,
    campaign_id: str,
    code: str | None,
    channel: str,
    key: str,
    referrer: int | None = None,
    device_id: str | None = None,
    ip: str | None = None,
    props: dict | None = None,
    edge: bool = False,
) -> None:
    """Queue a campaign event (and, with `edge`, a referral edge) for the warehouse, in the
    caller's transaction; `key` makes its event id, so a repeated flush adds it once."""
    payload = {
        "event_id": f"cmp:{key}",
        "ts": ts.isoformat(),
        "person_id": person_id,
        "event": event,
        "channel": channel,
        "campaign_id": campaign_id,
        "invite_code": code,
        "referrer_person_id": referrer,
        "device_id": device_id,
        "ip": ip,
        "props": props or {},
    }
    rows = [{"kind": "event", "payload": to_json(payload), "created_at": utcnow()}]
    if edge:
        rows.append({"kind": "edge", "payload": to_json(payload), "created_at": utcnow()})
    session.execute(table_of(Outbox).insert(), rows)


# Outbox payloads are parsed by DuckDB, not Python: a flush then holds the GIL only to fetch the
# rows, so requests served meanwhile do not queue behind it (with a Python loop over 5000 payloads,
# requests waited up to ~0.5 s after a burst).
_EVENTS_FROM_OUTBOX = """
INSERT INTO events BY NAME
SELECT * FROM (
    SELECT payload->>'$.event_id' AS event_id, (payload->>'$.ts')::TIMESTAMP AS ts,
           (payload->>'$.person_id')::BIGINT AS person_id, 'person' AS id_type,
           payload->>'$.person_id' AS user_id, payload->>'$.event' AS event, payload->>'$.channel' AS channel,
           payload->>'$.campaign_id' AS campaign_id, payload->>'$.invite_code' AS invite_code,
           (payload->>'$.referrer_person_id')::BIGINT AS referrer_person_id,
           payload->>'$.device_id' AS device_id, payload->>'$.ip' AS ip,
           (payload->'$.props')::VARCHAR AS props, (payload->>'$.ts')::TIMESTAMP AS received_at,
           'campaigns' AS batch_id, $now AS ingested_at
    FROM outbox_rows WHERE kind = 'event'
) n
WHERE NOT EXISTS (SELECT 1 FROM events e WHERE e.event_id = n.event_id)
"""
_EDGES_FROM_OUTBOX = """
INSERT INTO referral_edges BY NAME
SELECT * FROM (
    SELECT (payload->>'$.referrer_person_id')::BIGINT AS inviter_person_id,
           (payload->>'$.person_id')::BIGINT AS invitee_person_id, payload->>'$.campaign_id' AS campaign_id,
           payload->>'$.channel' AS channel, (payload->>'$.ts')::TIMESTAMP AS ts, payload->>'$.event_id' AS event_id
    FROM outbox_rows WHERE kind = 'edge'
) n
WHERE NOT EXISTS (SELECT 1 FROM referral_edges r WHERE r.invitee_person_id = n.invitee_person_id
                  AND r.campaign_id = n.campaign_id)
"""
FLUSH_ROWS = 1000  # outbox rows per flush transaction


_flush_lock = threading.Lock()


def flush_warehouse(session: Session, limit: int = FLUSH_ROWS) -> int:
    """Move queued events and referral edges into the DuckDB warehouse; safe to re-run after a crash.

    Connections of one process share one DuckDB instance whose transactions do not serialise
    appends, hence the lock; other processes wait on the file lock instead.
    """
    with _flush_lock:
        return _flush(session, limit)


def _flush(session: Session, limit: int) -> int:
    # pyarrow and DuckDB load only in the process that flushes (the server's thread, the CLI's
    # flush), not in every process that imports the campaign engine
    import pyarrow as pa

    rows = session.execute(
        select(Outbox.id, Outbox.kind, Outbox.payload).order_by(Outbox.id).limit(limit)
    ).all()
    if not rows:
        return 0
    ids, kinds, payloads = zip(*rows, strict=True)
    batch = pa.table({"kind": pa.array(kinds, pa.string()), "payload": pa.array(payloads, pa.string())})
    with warehouse.connect() as con:
        con.register("outbox_rows", batch)
        try:
            con.execute("BEGIN")
            con.execute(_EVENTS_FROM_OUTBOX, {"now": utcnow()})
            con.execute(_EDGES_FROM_OUTBOX)
            con.execute("COMMIT")
        finally:
            con.unregister("outbox_rows")
    session.execute(delete(Outbox).where(Outbox.id.in_(ids)))
    return len(rows)


def drain_warehouse() -> int:
    """Flush in rounds of FLUSH_ROWS, each in its own transaction, until the outbox is empty."""
    total = 0
    while True:
        with session_scope() as s:
            n = flush_warehouse(s)
        total += n
        if n < FLUSH_ROWS:
            return total
