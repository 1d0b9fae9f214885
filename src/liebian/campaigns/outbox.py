"""The campaign engine's warehouse outbox: the campaign loop's events (invites created, joins, clicks,
accepts, qualifications, conversions, refunds, rewards granted / issued / revoked), referral edges
and orders are queued in the operational store in the request's transaction, and moved into the
DuckDB warehouse off the request path (`drain_warehouse`, run by the server's flusher thread and by
`liebian campaign flush`).

Orders: a concluded (trusted or confirmed) conversion of an `order` event queues an order row,
tagged with the campaign; an order id the warehouse already holds (an import) is tagged instead
of added (one row per order id, like the importer's own key). A refund marks it refunded, so
revenue (paid orders) is net of refunds."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, select
from sqlalchemy.orm import Session

from liebian.campaigns.common import to_json
from liebian.campaigns.models import CampaignOrder, Invite, Outbox, Referral
from liebian.campaigns.schemas import ConversionRequest
from liebian.db.base import table_of, utcnow
from liebian.db.session import insert_rows, session_scope
from liebian.engine import eventstore, warehouse


def record_event(
    session: Session,
    *,
    event: str,
    ts: datetime,
    person_id: int,
    campaign_id: str | None,
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
    text, now = to_json(payload), utcnow()
    rows = [{"kind": "event", "payload": text, "created_at": now}]
    if edge:
        rows.append({"kind": "edge", "payload": text, "created_at": now})
    _write(session, rows)


def _write(session: Session, rows: list[dict[str, Any]]) -> None:
    """Outbox rows are written at the transaction's commit, one INSERT for all rows of a request
    (a conversion queues five: one statement instead of five on the hot path), and dropped with its
    rollback. Inside a savepoint they are written at once, so that its rollback takes them back."""
    if session.in_nested_transaction():
        insert_rows(session, table_of(Outbox), rows)
    else:
        session.info.setdefault(_PENDING, []).extend(rows)


_PENDING = "campaign_outbox"


@event.listens_for(Session, "before_commit")
def _write_pending(session: Session) -> None:
    rows = session.info.pop(_PENDING, None)
    if rows:
        insert_rows(session, table_of(Outbox), rows)


@event.listens_for(Session, "after_rollback")
def _drop_pending(session: Session) -> None:
    session.info.pop(_PENDING, None)


# The channel of rows the engine makes without an invite (orders, rewards).
CAMPAIGN_CHANNEL = "campaign"


def invite_created(session: Session, inv: Invite, code: str) -> None:
    """A new invite link: an `invite_share` (invites created) and the inviter's `join_campaign`."""
    record_event(
        session,
        event="invite_share",
        ts=inv.created_at,
        person_id=inv.inviter_person_id,
        campaign_id=inv.campaign_id,
        code=code,
        channel=inv.channel,
        key=f"invite:{inv.id}",
    )
    joined(session, inv.inviter_person_id, inv, inv.created_at)


def joined(session: Session, person_id: int, inv: Invite, ts: datetime, *, blocked: bool = False) -> None:
    """A person takes part in a campaign (`join_campaign`, once per person and campaign); a friend
    whose accept was blocked as fraud does not."""
    if blocked:
        return
    record_event(
        session,
        event="join_campaign",
        ts=ts,
        person_id=person_id,
        campaign_id=inv.campaign_id,
        code=None,
        channel=inv.channel,
        key=f"join:{inv.campaign_id}:{person_id}",
    )


def qualified(session: Session, ref: Referral, order_id: str | None, ts: datetime) -> None:
    """A referral qualified (the friend met the qualifying event)."""
    record_event(
        session,
        event="referral_qualified",
        ts=ts,
        person_id=ref.friend_person_id,
        campaign_id=ref.campaign_id,
        code=None,
        channel=ref.channel,
        referrer=ref.inviter_person_id,
        key=f"qualify:{ref.id}",
        props={"order_id": order_id},
    )


def concluded(
    session: Session,
    order_pk: int,
    campaign_id: str,
    req: ConversionRequest,
    person_id: int,
    ts: datetime,
    status: str,
) -> None:
    """A trusted (or confirmed) conversion, judged: its `conversion` event (with the order's amount
    and currency) and, for an `order` event, the warehouse order row tagged with the campaign."""
    props = {
        "order_id": req.order_id,
        "status": status,
        "amount_fen": req.amount_fen,
        "currency": req.currency,
        "conversion_event": req.event,
    }
    record_event(
        session,
        event="conversion",
        ts=ts,
        person_id=person_id,
        campaign_id=campaign_id,
        code=None,
        channel=CAMPAIGN_CHANNEL,
        key=f"conversion:{order_pk}",
        props=props,
    )
    if req.event != "order":
        return
    order = {
        "order_id": req.order_id,
        "ts": ts.isoformat(),
        "person_id": person_id,
        "amount_fen": req.amount_fen,
        "currency": req.currency,
        "channel": CAMPAIGN_CHANNEL,
        "campaign_id": campaign_id,
    }
    _queue(session, "order", order)


def refunded(session: Session, o: CampaignOrder, ts: datetime) -> None:
    """A refunded conversion: its `refund` event, and its warehouse order marked refunded."""
    record_event(
        session,
        event="refund",
        ts=ts,
        person_id=o.person_id,
        campaign_id=o.campaign_id,
        code=None,
        channel=CAMPAIGN_CHANNEL,
        key=f"refund:{o.id}",
        props={"order_id": o.order_id, "amount_fen": o.amount_fen, "currency": o.currency},
    )
    _queue(session, "refund", {"order_id": o.order_id, "campaign_id": o.campaign_id, "ts": ts.isoformat()})


# Ledger entries that reach the warehouse: a grant, and the moves to issued and revoked.
_REWARD_EVENTS = {
    ("grant", None): "reward_granted",
    ("transition", "issued"): "reward_issued",
    ("transition", "revoked"): "reward_revoked",
}


def reward_on_entry(session: Session, entry: dict[str, Any], reward: dict[str, Any]) -> None:
    """The ledger's subscriber (wired in `liebian.bootstrap`): rewards granted, issued and revoked
    reach the warehouse as `reward_*` events with their value, in the entry's transaction."""
    event = _REWARD_EVENTS.get((entry["kind"], None if entry["kind"] == "grant" else entry["to_state"]))
    if event is None or reward.get("person_id") is None:
        return
    record_event(
        session,
        event=event,
        ts=entry["ts"],
        person_id=reward["person_id"],
        campaign_id=reward.get("campaign_id"),
        code=None,
        channel=CAMPAIGN_CHANNEL,
        key=f"ledger:{entry['seq']}",
        props={"reward_id": reward["id"], "value_fen": reward["value_fen"], "state": entry["to_state"]},
    )


def _queue(session: Session, kind: str, payload: dict[str, Any]) -> None:
    _write(session, [{"kind": kind, "payload": to_json(payload), "created_at": utcnow()}])


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
QUALIFY row_number() OVER (PARTITION BY n.event_id ORDER BY n.ts) = 1
"""
_ORDER_ROWS = """
SELECT payload->>'$.order_id' AS order_id, (payload->>'$.ts')::TIMESTAMP AS ts,
       (payload->>'$.person_id')::BIGINT AS person_id, (payload->>'$.amount_fen')::BIGINT AS amount_fen,
       payload->>'$.currency' AS currency, payload->>'$.channel' AS channel,
       payload->>'$.campaign_id' AS campaign_id
FROM outbox_rows WHERE kind = 'order'
"""
# One row per order id (the importer's key): a new order is added, a known untagged one tagged.
_ORDERS_FROM_OUTBOX = f"""
INSERT INTO orders BY NAME
SELECT order_id, ts, person_id, 'person' AS id_type, person_id::VARCHAR AS user_id, amount_fen, currency,
       'paid' AS status, channel, campaign_id, ts AS status_ts, '{{}}' AS props, ts AS received_at,
       'campaigns' AS batch_id, $now AS ingested_at
FROM ({_ORDER_ROWS}) n
WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.order_id = n.order_id)
QUALIFY row_number() OVER (PARTITION BY n.order_id ORDER BY n.ts) = 1
"""
_TAG_ORDERS = f"""
UPDATE orders SET campaign_id = n.campaign_id
FROM ({_ORDER_ROWS}) n
WHERE orders.order_id = n.order_id AND orders.campaign_id IS NULL
"""
_REFUNDS_FROM_OUTBOX = """
UPDATE orders SET status = 'refunded', status_ts = n.ts
FROM (SELECT payload->>'$.order_id' AS order_id, payload->>'$.campaign_id' AS campaign_id,
             (payload->>'$.ts')::TIMESTAMP AS ts
      FROM outbox_rows WHERE kind = 'refund') n
WHERE orders.order_id = n.order_id AND orders.campaign_id = n.campaign_id AND orders.status = 'paid'
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
# How long the server's flusher keeps the warehouse's DuckDB instance open between its rounds while
# events keep coming (`WarehouseAnchor`): other processes (the CLI) wait on the file meanwhile.
ANCHOR_SECONDS = 10.0


_flush_lock = threading.Lock()


class WarehouseAnchor:
    """Keeps one extra DuckDB connection to the warehouse open across the flusher's rounds.

    Each flush opens the warehouse and closes it again (`warehouse.connect`); the close of the last
    connection checkpoints and drops the instance, and the next open loads the catalogue again:
    about half of a flush's CPU. While this connection is open, those opens and closes are cheap.
    It is opened by a round that moved rows, closed by a round that found none (an idle server
    leaves the file to other processes), by a round that failed, and after ANCHOR_SECONDS (then the
    round after reopens it).
    """

    def __init__(self, hold_seconds: float = ANCHOR_SECONDS):
        self.hold_seconds = hold_seconds
        self._con: Any = None
        self._opened = 0.0

    def drain(self) -> int:
        try:
            moved = drain_warehouse(anchor=self)
        except BaseException:
            # A failed round lets the file go too: the failure may be another process holding the
            # store (SQLite's lock) while it waits for this warehouse, and both would wait forever.
            self.close()
            raise
        if not moved or time.monotonic() - self._opened > self.hold_seconds:
            self.close()
        return moved

    @property
    def holding(self) -> bool:
        return self._con is not None

    def hold(self, path: Any) -> None:
        """Called by a flush with the warehouse open (so the instance is live: cheap)."""
        if self._con is None:
            import duckdb

            self._con = duckdb.connect(str(path))
            self._opened = time.monotonic()

    def close(self) -> None:
        con, self._con = self._con, None
        if con is not None:
            with warehouse.WRITE_LOCK:
                con.close()


def flush_warehouse(
    session: Session, limit: int = FLUSH_ROWS, *, anchor: WarehouseAnchor | None = None
) -> int:
    """Move queued events and referral edges into the DuckDB warehouse; safe to re-run after a crash.

    Connections of one process share one DuckDB instance whose transactions do not serialise
    appends, hence the lock; other processes wait on the file lock instead.
    """
    with _flush_lock:
        return _flush(session, limit, anchor)


def _flush(session: Session, limit: int, anchor: WarehouseAnchor | None = None) -> int:
    # pyarrow and DuckDB load only in the process that flushes (the server's thread, the CLI's
    # flush), not in every process that imports the campaign engine
    import pyarrow as pa

    _write_pending(session)  # rows this transaction queued itself
    rows = session.execute(
        select(Outbox.id, Outbox.kind, Outbox.payload).order_by(Outbox.id).limit(limit)
    ).all()
    if not rows:
        return 0
    ids, kinds, payloads = zip(*rows, strict=True)
    present = set(kinds)
    batch = pa.table({"kind": pa.array(kinds, pa.string()), "payload": pa.array(payloads, pa.string())})
    with warehouse.connect() as con:
        if anchor is not None:
            anchor.hold(warehouse.warehouse_path())
        con.register("outbox_rows", batch)
        try:
            # only the statements of the kinds queued (an accept burst has no orders or refunds)
            con.execute("BEGIN")
            if "event" in present:
                con.execute(_EVENTS_FROM_OUTBOX, {"now": utcnow()})
            if "edge" in present:
                con.execute(_EDGES_FROM_OUTBOX)
            if "order" in present:
                con.execute(_ORDERS_FROM_OUTBOX, {"now": utcnow()})
                con.execute(_TAG_ORDERS)
            if "refund" in present:
                con.execute(_REFUNDS_FROM_OUTBOX)
            con.execute("COMMIT")
            eventstore.commit(con, f"campaigns-{ids[0]}-{ids[-1]}")  # the Parquet event store
        finally:
            con.unregister("outbox_rows")
    session.execute(delete(Outbox).where(Outbox.id.in_(ids)))
    return len(rows)


def drain_warehouse(*, anchor: WarehouseAnchor | None = None) -> int:
    """Flush in rounds of FLUSH_ROWS, each in its own transaction, until the outbox is empty."""
    total = 0
    while True:
        with session_scope() as s:
            n = flush_warehouse(s, anchor=anchor)
        total += n
        if n < FLUSH_ROWS:
            return total
