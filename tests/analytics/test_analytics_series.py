"""KPI series per local day and hour: each bucket equals the KPI sheet of that bucket."""

from __future__ import annotations

from collections import defaultdict
from datetime import date, timedelta

import pytest

from liebian.analytics import service
from liebian.analytics.common import AnalyticsError
from liebian.analytics.kpis import RATES, SERIES_COUNTS

# counts a person or order adds to exactly one hour: the hours of a day sum to the day
ADDITIVE = ("invites_sent", "invite_clicks", "shares", "events", "paid_orders", "revenue_fen", "new_users",
            "new_referred_users")  # fmt: skip


@pytest.mark.parametrize("filters", [{}, {"channels": ["douyin"]}, {"campaigns": ["c1"]}])
def test_daily_series_equals_the_sheet_of_each_day(scenario, random_data, load, engine, filters) -> None:
    on_spark = engine == "spark"
    engine = load(engine)
    start, end = date(2026, 2, 26), date(2026, 3, 9)
    rows = service.run_kpi_series(service.make_filters(start, end, **filters), "day", engine=engine)
    assert [r["start"] for r in rows] == [(start + timedelta(days=i)).isoformat() for i in range(12)]
    compared = [
        k for k in (*SERIES_COUNTS, *RATES) if k != "events"
    ]  # the sheet does not show a raw event count
    # every day on DuckDB; on Spark (a job per sheet, the suite's time) every fourth day
    for r in rows[::4] if on_spark else rows:
        sheet = service.run_kpis(service.make_filters(r["start"], r["start"], **filters), engine=engine,
                                 reward_cost_fen=0)  # fmt: skip
        assert {k: r[k] for k in compared} == {k: sheet[k] for k in compared}, r["start"]
    assert sum(r["participants"] for r in rows) > 0 and any(r["new_referred_users"] for r in rows)


def test_hourly_series_split_the_day_at_local_hours(scenario, load) -> None:
    load()
    day = date(2026, 3, 2)
    hours = service.run_kpi_series(service.make_filters(day - timedelta(days=1), day), "hour")
    assert len(hours) == 48 and hours[0]["start"] == "2026-03-01T00:00:00"
    by = {r["start"]: r for r in hours}
    # person 2: exposure at 23:59:59 (03-01 23:00, seen, not active, no campaign so not reached), page
    # view + join at 00:00:00
    h23 = by["2026-03-01T23:00:00"]
    assert (h23["seen_users"], h23["reached"], h23["active_users"]) == (1, 0, 0)
    assert by["2026-03-02T00:00:00"]["participants"] == 1
    assert by["2026-03-02T00:00:00"]["participation_rate"] == 1.0
    assert by["2026-03-01T03:00:00"]["participation_rate"] is None  # an empty hour: no base, no rate
    days = service.run_kpi_series(service.make_filters(day - timedelta(days=1), day), "day")
    summed = defaultdict(lambda: defaultdict(int))
    for r in hours:
        for k in ADDITIVE:
            summed[r["start"][:10]][k] += r[k]
    for d in days:
        assert {k: d[k] for k in ADDITIVE} == dict(summed[d["start"]])
    assert service.run_kpi_series_by_channel(service.make_filters(day, day), "hour").keys() == {
        "wecom", "miniprogram"
    }  # fmt: skip


def test_series_input_is_checked(data_dir) -> None:
    with pytest.raises(AnalyticsError, match="grain"):
        service.run_kpi_series(service.make_filters("2026-03-01", "2026-03-02"), "week")
    with pytest.raises(AnalyticsError, match="start, end"):
        service.run_kpi_series(service.make_filters("2026-03-01"), "day")
