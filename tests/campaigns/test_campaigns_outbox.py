"""The campaign outbox reaches the warehouse field for field, in rounds, exactly once."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from liebian.campaigns import outbox, service
from liebian.campaigns.models import CampaignOrder, Outbox
from liebian.campaigns.schemas import ConversionRequest
from liebian.db.session import session_scope
from liebian.engine import warehouse


def test_outbox_rows_reach_the_warehouse_field_for_field_once(store) -> None:
    n = outbox.FLUSH_ROWS + 7  # more than one flush round
    big = 2**62 + 12345  # person ids use 63 bits: no float on the way
    when = datetime(2026, 11, 3, 9, 30, 15, 123456)
    props = {"渠道": "企业微信群", "tier": [1, 2], "note": None}
    with session_scope() as s:
        for i in range(n):
            outbox.record_event(
                s, event="invite_accept" if i % 2 else "invite_click", ts=when, person_id=big + i,
                campaign_id="c-1", code=f"CODE{i}", channel="wecom_group", key=f"k{i}",
                referrer=big - 1 if i % 2 else None, device_id=f"dev{i}" if i % 3 else None,
                ip="10.0.0.1" if i == 5 else None, props=props if i == 5 else None, edge=bool(i % 2),
            )  # fmt: skip
    with session_scope() as s:  # (queued rows are written at commit)
        # a crash after the warehouse commit leaves rows queued again: they must not double
        s.add(Outbox(kind="event", payload=s.query(Outbox.payload).filter(Outbox.kind == "event").first()[0],
                     created_at=when))  # fmt: skip
    with session_scope() as s:
        assert outbox.flush_warehouse(s) == outbox.FLUSH_ROWS
    service.warehouse_flusher().flush_once()  # the rest, in rounds
    with session_scope() as s:
        assert s.query(Outbox).count() == 0
    with warehouse.connect() as con:
        events = con.execute(
            "SELECT event_id, ts, person_id, id_type, user_id, event, channel, campaign_id, invite_code, "
            "referrer_person_id, device_id, ip, props, received_at, batch_id FROM events ORDER BY person_id"
        ).fetchall()
        edges = con.execute(
            "SELECT inviter_person_id, invitee_person_id, campaign_id, channel, ts, event_id FROM referral_edges"
        ).fetchall()
    assert len(events) == n
    for i, row in enumerate(events):
        assert row[:12] == (
            f"cmp:k{i}", when, big + i, "person", str(big + i),
            "invite_accept" if i % 2 else "invite_click", "wecom_group", "c-1", f"CODE{i}",
            big - 1 if i % 2 else None, f"dev{i}" if i % 3 else None, "10.0.0.1" if i == 5 else None,
        )  # fmt: skip
        assert json.loads(row[12]) == (props if i == 5 else {})
        assert row[13:] == (when, "campaigns")
    assert sorted(edges) == sorted(
        (big - 1, big + i, "c-1", "wecom_group", when, f"cmp:k{i}") for i in range(1, n, 2)
    )


def test_conversions_add_one_order_row_per_order_id_and_refunds_mark_it(store) -> None:
    """An order the warehouse holds already (an import) is tagged with the campaign, not added again;
    a new one is added once however often it is queued; a refund marks it refunded."""
    when = datetime(2026, 11, 3, 9, 30)
    with warehouse.connect() as con:
        con.execute(
            "INSERT INTO orders BY NAME SELECT 'imp-1' AS order_id, ?::TIMESTAMP AS ts, 7 AS person_id, "
            "'phone' AS id_type, 'x' AS user_id, 5000 AS amount_fen, 'CNY' AS currency, 'paid' AS status, "
            "'youzan' AS channel, NULL AS campaign_id, ?::TIMESTAMP AS status_ts, 'b1' AS batch_id, "
            "?::TIMESTAMP AS ingested_at",
            [when, when, when],
        )
    with session_scope() as s:
        for pk, order_id in ((1, "imp-1"), (2, "new-1"), (3, "new-1")):
            req = ConversionRequest(id_type="unionid", id="u", order_id=order_id, amount_fen=9900)
            outbox.concluded(s, pk, "c-1", req, 7, when, "qualified")
    service.warehouse_flusher().flush_once()
    with session_scope() as s:
        order = CampaignOrder(
            id=2, campaign_id="c-1", order_id="new-1", person_id=7, event="order", amount_fen=9900,
            currency="CNY", status="refunded", reason="", created_at=when, ts=when,
        )  # fmt: skip
        outbox.refunded(s, order, when)
    service.warehouse_flusher().flush_once()
    with warehouse.connect() as con:
        rows = con.execute(
            "SELECT order_id, channel, campaign_id, amount_fen, status FROM orders ORDER BY 1"
        ).fetchall()
        conversions = con.execute("SELECT count(*) FROM events WHERE event = 'conversion'").fetchall()[0][0]
    assert rows == [("imp-1", "youzan", "c-1", 5000, "paid"), ("new-1", "campaign", "c-1", 9900, "refunded")]
    assert conversions == 3


def test_the_servers_flusher_keeps_the_warehouse_open_while_busy_and_lets_it_go_when_idle(
    sqlite_store,
) -> None:
    """The flusher's anchor: rounds with rows keep the DuckDB file open (cheap flushes); the first
    round that finds nothing closes it, so another process can open the warehouse again."""

    def queue(k: int) -> None:
        with session_scope() as s:
            for i in range(k):
                outbox.record_event(
                    s, event="invite_accept", ts=datetime(2026, 11, 3), person_id=i + 1, campaign_id="c-1",
                    code=None, channel="wecom_group", key=f"a{k}-{i}", referrer=99, edge=True,
                )  # fmt: skip

    anchor = outbox.WarehouseAnchor()
    queue(3)
    assert anchor.drain() == 6  # an event and an edge each
    assert anchor.holding
    queue(2)
    assert anchor.drain() == 4
    assert anchor.holding
    assert anchor.drain() == 0  # idle: the file is let go
    assert not anchor.holding
    assert _events_seen_by_another_process() == "5"


def test_a_failed_flush_lets_the_warehouse_go(sqlite_store) -> None:
    """A round that fails after opening the warehouse must not keep it: the failure may be another
    process holding the store while it waits for the warehouse (the console tests met that)."""
    with session_scope() as s:
        outbox.record_event(
            s, event="invite_accept", ts=datetime(2026, 11, 3), person_id=1, campaign_id="c-1",
            code=None, channel="wecom_group", key="ok-1", referrer=99, edge=True,
        )  # fmt: skip
    anchor = outbox.WarehouseAnchor()
    assert anchor.drain() == 2
    assert anchor.holding
    with session_scope() as s:
        s.add(Outbox(kind="event", payload="{not json"))  # a row the warehouse cannot read
    with pytest.raises(Exception):  # noqa: B017 - whichever error DuckDB gives, the round fails
        anchor.drain()
    assert not anchor.holding
    assert _events_seen_by_another_process() == "1"
    with session_scope() as s:  # the bad row stays queued for an operator: nothing was dropped
        assert s.query(Outbox).count() == 1


def _events_seen_by_another_process() -> str:
    """Open the warehouse from a new process (it fails while this one holds the file); its event count."""
    import subprocess
    import sys

    opened = subprocess.run(
        [sys.executable, "-c", f"import duckdb; print(duckdb.connect({str(warehouse.warehouse_path())!r})"
         ".execute('SELECT count(*) FROM events').fetchone()[0])"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert opened.returncode == 0, opened.stderr
    return opened.stdout.strip()
