"""Community days and weeks are calendar days of the display zone (settings `timezone`,
Asia/Shanghai by default), as every KPI's period: a message at 23:30 UTC belongs to the next
Shanghai day. The warehouse keeps naive UTC; a local day [d, d+1) is the UTC window
[d − offset, d + 1 − offset). The zone's one fixed offset is used (`analytics.common.
zone_offset_seconds`, which refuses zones with daylight saving), so SQL needs no time-zone functions.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

from liebian.analytics.common import zone_offset_seconds
from liebian.config import get_settings
from liebian.db.base import utcnow


def offset_seconds() -> int:
    return zone_offset_seconds(get_settings().timezone)


def start_of(day: date) -> datetime:
    """The naive UTC instant at which the local `day` begins."""
    return datetime.combine(day, datetime.min.time()) - timedelta(seconds=offset_seconds())


def local_day(ts: datetime) -> date:
    """The local day of a naive UTC instant."""
    return (ts + timedelta(seconds=offset_seconds())).date()


def today() -> date:
    return local_day(utcnow())


def day_sql(column: str = "ts") -> str:
    """DuckDB expression of the local day of a naive UTC timestamp column."""
    return f"CAST({column} + INTERVAL {int(offset_seconds())} SECOND AS DATE)"
