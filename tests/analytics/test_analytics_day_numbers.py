"""Day, week and hour numbers on DuckDB (integer arithmetic) are the calendar's, as on Spark.

DuckDB computes them with integer microseconds and a truncating division (`Frame.bucket_of`), the
portable expression with EPOCH and FLOOR; both must give the local calendar's numbers at the edges
of days and weeks, in zones east and west of UTC, and `day_of_any` also before 1970.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

import duckdb
import ibis
import pandas as pd
import pytest

from liebian.analytics.common import ANALYSABLE, Frame, MetricConfig, zone_offset_seconds

ZONES = ("Asia/Shanghai", "America/Bogota", "UTC", "Pacific/Kiritimati", "Etc/GMT+12")
EPOCH = date(1970, 1, 1)


def _times(zone: str) -> list[datetime]:
    """Naive UTC times around local midnights and a Monday (2026-03-02), from ANALYSABLE's start."""
    tz = ZoneInfo(zone)
    out = [ANALYSABLE[0], ANALYSABLE[1] - timedelta(microseconds=1)]
    for day in (date(1970, 1, 2), date(1970, 1, 5), date(2026, 3, 1), date(2026, 3, 2), date(2199, 12, 30)):
        midnight = datetime(day.year, day.month, day.day, tzinfo=tz).astimezone(ZoneInfo("UTC"))
        for delta in (timedelta(microseconds=-1), timedelta(0), timedelta(hours=13, seconds=1)):
            out.append((midnight + delta).replace(tzinfo=None))
    return [t for t in out if ANALYSABLE[0] <= t < ANALYSABLE[1]]


def _calendar(t: datetime, zone: str) -> tuple[int, int, int]:
    # the zone's one fixed offset, as analytics uses it (Pacific/Kiritimati's of today also in 1970)
    local = t + timedelta(seconds=zone_offset_seconds(zone))
    day = (local.date() - EPOCH).days
    hour = day * 24 + local.hour
    return day, (day + 3) // 7, hour  # weeks start on Monday; 1970-01-01 was a Thursday


@pytest.mark.parametrize("zone", ZONES)
def test_day_week_and_hour_numbers_are_the_local_calendars(zone):
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    times = _times(zone)
    con.register("t_df", pd.DataFrame({"ts": pd.Series(times, dtype="datetime64[us]")}))
    con.execute("CREATE TABLE t AS SELECT ts FROM t_df")
    backend = ibis.duckdb.from_connection(con)
    t = backend.table("t")
    fr = Frame(backend, config=MetricConfig(timezone=zone))
    assert fr.integer_time  # the DuckDB path is the one under test
    portable = Frame(backend, config=MetricConfig(timezone=zone))
    portable.integer_time = False
    expected = [_calendar(ts, zone) for ts in times]
    for frame in (fr, portable):
        got = backend.execute(
            t.select("ts", d=frame.day_of(t.ts), w=frame.week_of(t.ts), h=frame.bucket_of(t.ts, 3600))
        ).sort_values("ts")
        order = sorted(range(len(times)), key=lambda i: times[i])
        assert list(zip(got.d, got.w, got.h, strict=True)) == [expected[i] for i in order]


def test_day_of_any_counts_days_before_1970():
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    times = [datetime(1969, 12, 31, 15, 59, 59), datetime(1969, 12, 31, 16), datetime(1900, 5, 5, 12)]
    con.register("t_df", pd.DataFrame({"ts": pd.Series(times, dtype="datetime64[us]")}))
    backend = ibis.duckdb.from_connection(con)
    t = backend.table("t_df")
    fr = Frame(backend, config=MetricConfig(timezone="Asia/Shanghai"))
    got = backend.execute(t.select("ts", d=fr.day_of_any(t.ts)).order_by("ts")).d.tolist()
    assert got == sorted(_calendar(ts, "Asia/Shanghai")[0] for ts in times)
