"""Statistics of several journeys at once (the console's list): each journey's own goal and window,
paid orders counting for an order_paid goal, the same numbers as asking one journey at a time."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from automation_helpers import add_events, make_persons

from liebian.automation import service
from liebian.db.session import session_scope
from liebian.engine import warehouse

NOON = datetime(2026, 11, 2, 4, 0)  # 12:00 in Shanghai


def _paid_order(person_id: int, ts: datetime) -> None:
    with warehouse.connect() as con:
        con.execute(
            "INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status, channel,"
            " status_ts, batch_id, ingested_at) VALUES (?, ?, ?, 'openid', ?, 100, 'CNY', 'paid', 'wecom', ?, 't', ?)",
            [f"o-{person_id}-{ts.isoformat()}", ts, person_id, f"u{person_id}", ts, ts],
        )


def test_each_journey_counts_its_own_goal_within_its_own_window(store):
    people = make_persons(6)
    add_events([(p, "signup", NOON - timedelta(minutes=5)) for p in people])
    with session_scope() as s:
        steps = [{"action": {"type": "tag", "name": "seen"}}]
        buy = service.create_journey(
            s,
            "buy",
            {
                "trigger": {"type": "event", "event": "signup"},
                "steps": steps,
                "holdout_pct": 0,
                "goal": {"event": "order_paid", "within_days": 7},
            },
        )
        check = service.create_journey(
            s,
            "check",
            {
                "trigger": {"type": "event", "event": "signup"},
                "steps": steps,
                "holdout_pct": 0,
                "goal": {"event": "checkin", "within_days": 1},
            },
        )
    for jid in (buy.id, check.id):
        service.run(jid, NOON)
    p0, p1, p2, p3, p4, _ = people
    add_events([(p0, "order_paid", NOON + timedelta(days=2)),  # buy: yes
                (p1, "checkin", NOON + timedelta(hours=3)),  # check: yes
                (p2, "checkin", NOON + timedelta(days=3)),  # check: too late (1 day)
                (p4, "order_paid", NOON + timedelta(days=8))])  # buy: too late (7 days)  # fmt: skip
    _paid_order(p3, NOON + timedelta(days=1))  # buy: a paid order counts for order_paid
    with session_scope() as s:
        both = service.stats_many(s, [buy.id, check.id], NOON + timedelta(days=20))
        alone = service.stats(s, check.id, NOON + timedelta(days=20))
        with pytest.raises(service.AutomationError, match="does not exist"):
            service.stats_many(s, [buy.id, 999])
        assert service.stats_many(s, []) == {}
    b, c = both[buy.id]["arms"]["treatment"], both[check.id]["arms"]["treatment"]
    assert (b["entered"], b["actioned"], b["converted"]) == (6, 6, 2)
    assert (c["entered"], c["actioned"], c["converted"]) == (6, 6, 1)
    assert b["conversion_rate"] == pytest.approx(2 / 6) and both[buy.id]["lift"] is None  # no control arm
    assert alone == both[check.id]
