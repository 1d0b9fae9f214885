"""A person's facts in the warehouse, for their profile: the channels they were seen on, their
events and orders (newest first) and the referral edges they are part of. Reads only; every query
takes the person's ids (the current one and those merged into it: the warehouse follows merges
when it syncs, rows not yet rewritten still carry the old id)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from liebian.engine import warehouse

TIMELINE_LIMIT = 200


@dataclass
class WarehouseFacts:
    channels: list[dict[str, Any]] = field(default_factory=list)
    events: list[dict[str, Any]] = field(default_factory=list)
    orders: list[dict[str, Any]] = field(default_factory=list)
    inviters: list[dict[str, Any]] = field(default_factory=list)
    invitees: list[dict[str, Any]] = field(default_factory=list)


def _rows(con, sql: str, params: list[Any]) -> list[dict[str, Any]]:  # noqa: ANN001 - a DuckDB connection
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


def warehouse_facts(person_ids: list[int], limit: int = TIMELINE_LIMIT) -> WarehouseFacts:
    """Channels, the latest `limit` events and orders, and referral edges of these person ids."""
    ids = [int(p) for p in person_ids]
    marks = ", ".join("?" * len(ids))
    with warehouse.connect(read_only=True) as con:
        return WarehouseFacts(
            channels=_rows(con, f"""
                SELECT channel, count(*) AS events, min(ts) AS first_seen, max(ts) AS last_seen
                FROM events WHERE person_id IN ({marks}) GROUP BY channel ORDER BY last_seen DESC""", ids),
            events=_rows(con, f"""
                SELECT ts, event, channel, campaign_id FROM events WHERE person_id IN ({marks})
                ORDER BY ts DESC, event_id LIMIT {int(limit)}""", ids),
            orders=_rows(con, f"""
                SELECT order_id, ts, amount_fen, status, channel, campaign_id FROM orders
                WHERE person_id IN ({marks}) ORDER BY ts DESC, order_id LIMIT {int(limit)}""", ids),
            inviters=_rows(con, f"""
                SELECT inviter_person_id AS person_id, campaign_id, channel, ts FROM referral_edges
                WHERE invitee_person_id IN ({marks}) ORDER BY ts DESC LIMIT {int(limit)}""", ids),
            invitees=_rows(con, f"""
                SELECT invitee_person_id AS person_id, campaign_id, channel, ts FROM referral_edges
                WHERE inviter_person_id IN ({marks}) ORDER BY ts DESC LIMIT {int(limit)}""", ids),
        )  # fmt: skip  # noqa: S608 - the placeholders are generated, the values bound


def timeline(facts: WarehouseFacts, limit: int = TIMELINE_LIMIT) -> list[dict[str, Any]]:
    """Events and orders in one list, newest first: kind event|order, time, name, channel, campaign."""
    items: list[dict[str, Any]] = [
        {"kind": "event", "ts": e["ts"], "name": e["event"], "channel": e["channel"],
         "campaign_id": e["campaign_id"], "amount_fen": None}
        for e in facts.events
    ] + [
        {"kind": "order", "ts": o["ts"], "name": o["status"], "channel": o["channel"],
         "campaign_id": o["campaign_id"], "amount_fen": o["amount_fen"]}
        for o in facts.orders
    ]  # fmt: skip
    items.sort(key=lambda i: i["ts"] or datetime.min, reverse=True)
    return items[:limit]
