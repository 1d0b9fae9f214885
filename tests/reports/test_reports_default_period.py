"""A report asked for without a period covers the last complete week that has data: after the demo
(whose data ends in the past) the first report is not an empty week after the data ends."""

from __future__ import annotations

from datetime import UTC, date, timedelta
from zoneinfo import ZoneInfo

import duckdb

from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.reports import service


def _last_local_data_day() -> date:
    """Independently of the service: the latest event or order, as a Shanghai day."""
    con = duckdb.connect(str(get_settings().warehouse_file), read_only=True)
    try:
        (last,) = con.execute(
            "SELECT greatest((SELECT max(ts) FROM events), (SELECT max(ts) FROM orders))"
        ).fetchone()
    finally:
        con.close()
    return last.replace(tzinfo=UTC).astimezone(ZoneInfo("Asia/Shanghai")).date()


def test_the_first_weekly_report_after_the_demo_covers_the_last_full_week_of_data(demo_brand):
    last = _last_local_data_day()
    assert last < date.today(), "the demo's data ends in the past"
    # the last Monday–Sunday that ends on or before the data's last day
    sunday = last - timedelta(days=(last.weekday() + 1) % 7)
    expected = (sunday - timedelta(days=6), sunday)

    report = service.generate("weekly")

    assert (report["period_start"], report["period_end"]) == tuple(d.isoformat() for d in expected)
    assert report["kpis"]["buyers"] > 0 and report["kpis"]["revenue_fen"] > 0, "a week with data"
    with session_scope() as s:
        document = service.request_document(s, "weekly", requested_by="test")
        s.rollback()  # leave the shared demo store as it was
    assert (document["period_start"], document["period_end"]) == (
        expected[0].isoformat(),
        expected[1].isoformat(),
    )


def test_a_report_of_data_that_reaches_today_still_covers_last_week(demo_brand):
    # an as_of given explicitly is kept: the scheduler and `--as-of` decide their own period
    assert service.period_of("weekly", date(2026, 11, 18)) == (date(2026, 11, 9), date(2026, 11, 15))
    last = _last_local_data_day()
    assert service.default_as_of() == min(date.today(), last + timedelta(days=1))
