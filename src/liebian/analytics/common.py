"""What every analysis shares: filters, the metric configuration, day arithmetic in the display zone.

Every analysis is an Ibis expression over the warehouse tables, executed on whichever backend it
is given (DuckDB embedded, PySpark scale-out). To keep one code path that gives identical answers
on both, times are turned into integer day numbers with `epoch_seconds` arithmetic (both backends
floor it the same way) instead of backend-specific time-zone functions, and only exact aggregates
are used. On DuckDB the same numbers come from integer microseconds (`Frame.bucket_of`), which
costs less per event.
"""

from __future__ import annotations

import functools
import math
import sys
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from liebian.config import get_settings
from liebian.errors import Invalid
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.datatypes as dt
    import ibis.expr.types as ir
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    dt = lazy_import("ibis.expr.datatypes")
    ir = lazy_import("ibis.expr.types")
    pd = lazy_import("pandas")

EPOCH = date(1970, 1, 1)
DAY = 86400
MIN_DAY_NUMBER, MAX_DAY_NUMBER = (date.min - EPOCH).days, (date.max - EPOCH).days
# Times an analysis reads: a row stored outside them (year 1 from a broken clock, written before
# the edges checked times, or straight into the warehouse) is left out, so that day arithmetic in
# any zone stays within what both backends and Python's dates can hold.
ANALYSABLE = (datetime(1970, 1, 2), datetime(2200, 1, 1))
TIMED_TABLES = ("events", "orders", "referral_edges", "messages")


@functools.cache
def duckdb_fn() -> Any:
    """DuckDB's EPOCH_US (microseconds since the epoch, BIGINT) and DIVIDE (integer division,
    truncating) as Ibis builtins, made on first use (declaring them would import Ibis at start-up)."""

    @ibis.udf.scalar.builtin
    def epoch_us(ts: dt.timestamp) -> dt.int64:
        """Microseconds since 1970-01-01 (DuckDB)."""

    @ibis.udf.scalar.builtin
    def divide(a: dt.int64, b: dt.int64) -> dt.int64:
        """a // b on integers (DuckDB), truncated towards zero."""

    return SimpleNamespace(epoch_us=epoch_us, divide=divide)


def analysable_views(con: Any) -> None:
    """On one DuckDB connection, shadow the timed tables with temp views of their analysable rows
    (for analyses written in SQL; a temp view dies with the connection)."""
    db = con.execute("SELECT current_database()").fetchone()[0]
    low, high = (f"{t:%Y-%m-%d %H:%M:%S}" for t in ANALYSABLE)
    for name in TIMED_TABLES:
        cny = " AND currency = 'CNY'" if name == "orders" else ""  # as in `Frame.table`
        con.execute(
            f'CREATE OR REPLACE TEMP VIEW {name} AS SELECT * FROM "{db}".main.{name}'
            f" WHERE ts >= TIMESTAMP '{low}' AND ts < TIMESTAMP '{high}'{cny}"
        )


def analysable(t: ir.Table, column: str = "ts") -> ir.Table:
    """`t` without the rows whose `column` lies outside `ANALYSABLE`."""
    low, high = ANALYSABLE
    return t.filter((t[column] >= low) & (t[column] < high))


def one_of(value: ir.Value, options: Sequence[Any]) -> ir.BooleanValue:
    """Whether `value` is one of `options`: an equality when there is one (DuckDB tests a one-element
    IN list about 4× slower than `=`, which counts over every event), else IN."""
    options = list(options)
    return value == options[0] if len(options) == 1 else value.isin(options)


def passive(fr: Frame, event: ir.StringValue) -> ir.BooleanValue:
    """Whether `event` is one of the passive events (`EventNames.passive`)."""
    return one_of(event, fr.ev.passive) if fr.ev.passive else ibis.literal(False)


class AnalyticsError(Invalid, ValueError):
    """Bad analysis input; the message names the parameter and the reason.
    The router names the parameter at fault (`errors.blame`); `detail` is "invalid request"."""

    summary = "invalid request"

    def __init__(self, message: str, *, field: str | None = None):
        super().__init__("invalid", message, field=field)


@dataclass(frozen=True)
class Filters:
    """The filters every analysis takes. Dates are calendar days in the display zone, inclusive."""

    start: date | None = None
    end: date | None = None
    channels: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    # A segment is a set of person ids (None = everyone). The tags domain will name segments.
    segment: frozenset[int] | None = None

    def __post_init__(self) -> None:
        if self.start and self.end and self.start > self.end:
            raise AnalyticsError(f"start {self.start} is after end {self.end}")
        low, high = (t.date() for t in ANALYSABLE)
        for name in ("start", "end"):
            day = getattr(self, name)
            if day is not None and not low <= day < high:
                raise AnalyticsError(f"{name} {day} lies outside {low} … {high}", field=name)
        object.__setattr__(self, "channels", tuple(self.channels))
        object.__setattr__(self, "campaigns", tuple(self.campaigns))
        if self.segment is not None:
            ids = frozenset(int(p) for p in self.segment)
            if any(not -(2**63) <= p < 2**63 for p in ids):
                raise AnalyticsError("segment: a person id lies outside 64 bits", field="segment")
            object.__setattr__(self, "segment", ids)

    def describe(self) -> dict[str, Any]:
        return {
            "start": self.start.isoformat() if self.start else None,
            "end": self.end.isoformat() if self.end else None,
            "channels": list(self.channels),
            "campaigns": list(self.campaigns),
            "segment_size": None if self.segment is None else len(self.segment),
        }


@dataclass(frozen=True)
class EventNames:
    """Which event names mean what (the demo brand's names are the defaults)."""

    exposure: str = "exposure"
    page_view: str = "page_view"
    join: str = "join_campaign"
    invite_share: str = "invite_share"
    invite_click: str = "invite_click"
    signup: str = "signup"
    invite_accept: str = "invite_accept"
    share: str = "share"
    # Events that register a person (a sign-up, a follow of the official account). In a channel that
    # has none of them, a person's first order or first activity there is their registration.
    registration: tuple[str, ...] = ("signup", "follow")
    # Events a person does not choose (an ad or feed impression): they reach but do not make active.
    passive: tuple[str, ...] = ("exposure",)


@dataclass(frozen=True)
class MetricConfig:
    events: EventNames = field(default_factory=EventNames)
    timezone: str = ""
    silent_days: int = 30  # no activity for this many days before the period = silent
    retention_days: tuple[int, ...] = (1, 7, 30)
    # Persons active (an event or an order) before this local day are existing members, never new
    # users (None: only those known from their events; see docs/metrics.md "New users").
    baseline: date | None = None

    @property
    def zone(self) -> str:
        return self.timezone or get_settings().timezone


def zone_offset_seconds(zone: str) -> int:
    """The zone's fixed UTC offset. Zones with daylight saving are refused: day numbers are computed
    with one offset so that DuckDB and Spark agree without time-zone functions (Asia/Shanghai has
    had no DST since 1991)."""
    try:
        tz = ZoneInfo(zone)
    except Exception as exc:  # ZoneInfoNotFoundError, ValueError
        raise AnalyticsError(f"timezone {zone!r} is not a known IANA zone") from exc
    year = datetime.now(UTC).year
    offsets = {datetime(y, m, 15, tzinfo=tz).utcoffset() for y in (year - 1, year) for m in (1, 7)}
    if len(offsets) != 1:
        raise AnalyticsError(
            f"timezone {zone!r} has daylight saving time; analytics needs a fixed-offset zone"
        )
    offset = offsets.pop()
    if offset is None:  # unreachable: an aware datetime always has an offset
        raise AnalyticsError(f"timezone {zone!r} gives no UTC offset")
    return int(offset.total_seconds())


class Frame:
    """One analysis run: the backend's tables, the filters and the zone, with the helpers to use them."""

    def __init__(
        self, backend: ibis.BaseBackend, filters: Filters | None = None, config: MetricConfig | None = None
    ):
        self.backend = backend
        self.filters = filters or Filters()
        self.config = config or MetricConfig()
        self.ev = self.config.events
        self.offset = zone_offset_seconds(self.config.zone)
        # integer time arithmetic with DuckDB's own functions (the same numbers; Spark: portable)
        self.integer_time = getattr(backend, "name", "") == "duckdb"

    # --- time ---------------------------------------------------------------------------------
    # The day, week and bucket numbers are for analysable times (`ANALYSABLE`: every time read
    # through `table`, and what is computed from them); `day_of_any` takes any time.
    def day_of(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        """Local calendar day as an integer (days since 1970-01-01 in the display zone)."""
        return self.bucket_of(ts, DAY)

    def day_of_any(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        """`day_of` for a time that may lie before ANALYSABLE (e.g. an imported `member_since`)."""
        return self.bucket_of(ts, DAY, portable=True)

    def bucket_of(
        self, ts: ir.TimestampValue, seconds: int, shift: int = 0, portable: bool = False
    ) -> ir.IntegerValue:
        """Local time bucket of `seconds` (a day, an hour) as an integer since 1970-01-01 local
        (`shift`: seconds added first, e.g. to start weeks on a Monday)."""
        if self.integer_time and not portable:
            # DuckDB: integer microseconds and integer division, the same numbers as the portable
            # double EPOCH, FLOOR and CAST, which cost about a tenth of a one-pass aggregation of
            # every event (retention, 10M events). DIVIDE truncates, the floor for the times at
            # or after ANALYSABLE's start, whose local microseconds are positive in every zone.
            n = duckdb_fn().epoch_us(ts) + (self.offset + shift) * 10**6
            return duckdb_fn().divide(n, seconds * 10**6)
        return ((ts.epoch_seconds() + self.offset + shift) // seconds).cast("int64")

    @staticmethod
    def bucket_start(number: int, seconds: int) -> datetime:
        """Naive local time at which bucket `number` of `seconds` begins."""
        return datetime(EPOCH.year, EPOCH.month, EPOCH.day) + timedelta(seconds=int(number) * seconds)

    @staticmethod
    def seconds(ts: ir.TimestampValue) -> ir.IntegerValue:
        """Whole epoch seconds (floored the same way on both backends)."""
        return ts.epoch_seconds().floor().cast("int64")

    def week_of(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        # 1970-01-01 was a Thursday: +3 days makes weeks start on Monday.
        if self.integer_time:  # floor((day + 3) / 7) in one division
            return self.bucket_of(ts, 7 * DAY, shift=3 * DAY)
        return ((self.day_of(ts) + 3) // 7).cast("int64")

    def month_of(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        local = ts + ibis.interval(seconds=self.offset)
        return (local.year() * 12 + local.month() - 1).cast("int64")

    def utc_bound(self, day: date) -> datetime:
        """Naive UTC instant at which local `day` begins."""
        return datetime(day.year, day.month, day.day) - timedelta(seconds=self.offset)

    @staticmethod
    def day_number(day: date) -> int:
        return (day - EPOCH).days

    @staticmethod
    def day_date(number: int) -> date:
        """The date of a day number, clamped to the dates Python can hold."""
        return EPOCH + timedelta(days=min(max(int(number), MIN_DAY_NUMBER), MAX_DAY_NUMBER))

    # --- tables ---------------------------------------------------------------------------------
    def table(self, name: str) -> ir.Table:
        """A warehouse table; rows of the timed tables outside `ANALYSABLE` are left out."""
        try:
            t = self.backend.table(name)
        except Exception as exc:
            raise AnalyticsError(f"the analytics backend has no table {name!r}: {exc}") from exc
        if (
            name == "orders"
        ):  # amounts in CNY only: older warehouses may hold unconverted ones (liebian/fx.py)
            t = t.filter(t.currency == "CNY")
        return analysable(t) if name in TIMED_TABLES else t

    def in_period(self, t: ir.Table, column: str = "ts") -> ir.Table:
        if self.filters.start or self.filters.end:
            t = t.filter(self.period_mask(t[column]))
        return t

    def period_mask(self, ts: ir.TimestampValue) -> ir.BooleanValue:
        """Whether `ts` falls in the period (any time when the period is open on both sides)."""
        f = self.filters
        mask = ts.notnull()
        if f.start:
            mask &= ts >= self.utc_bound(f.start)
        if f.end:
            mask &= ts < self.utc_bound(f.end + timedelta(days=1))
        return mask

    def in_segment(self, t: ir.Table, column: str = "person_id") -> ir.Table:
        seg = self.filters.segment
        if seg is None:
            return t
        if len(seg) <= 1000:
            return t.filter(t[column].isin(sorted(seg)) if seg else ibis.literal(False))
        ids = ibis.memtable(pd.DataFrame({"segment_person_id": sorted(seg)}, dtype="int64"))
        return t.semi_join(ids, t[column] == ids.segment_person_id)

    def with_dims(self, t: ir.Table, person: str = "person_id") -> ir.Table:
        f = self.filters
        if f.channels:
            t = t.filter(t.channel.isin(list(f.channels)))
        if f.campaigns:
            t = t.filter(t.campaign_id.isin(list(f.campaigns)))
        return self.in_segment(t, person)

    def events(self, period: bool = True, dims: bool = True) -> ir.Table:
        t = self.table("events")
        if dims:
            t = self.with_dims(t)
        return self.in_period(t) if period else t

    def orders(self, period: bool = True, dims: bool = True, paid: bool = True) -> ir.Table:
        t = self.table("orders")
        if paid:
            t = t.filter(t.status == "paid")
        if dims:
            t = self.with_dims(t)
        return self.in_period(t) if period else t

    def edges(self, period: bool = True, dims: bool = True) -> ir.Table:
        t = self.table("referral_edges")
        if dims:
            t = self.with_dims(t, person="inviter_person_id")
        return self.in_period(t) if period else t

    def execute(self, expr: ir.Expr) -> pd.DataFrame:
        return self.backend.execute(expr)

    def execute_cached(self, key: Hashable, build: Callable[[], ir.Expr]) -> pd.DataFrame:
        """`execute(build())`, with the SQL kept per `key` (the analysis's own parameters), the
        filters and the configuration, so that a repeated analysis skips Ibis (analytics/compiled.py)."""
        from liebian.analytics import compiled

        return compiled.execute(self.backend, self._shape(key), build)

    def execute_cached_rows(self, key: Hashable, build: Callable[[], ir.Expr]) -> list[dict[str, Any]]:
        """`execute_cached` as rows (dicts of plain values, to read through `clean`/`as_int`), the SQL
        also kept on disk: a new process (a CLI command) runs it without Ibis or pandas."""
        from liebian.analytics import compiled

        return compiled.rows(self.backend, self._shape(key), build)

    def _shape(self, key: Hashable) -> Hashable:
        """What shapes an analysis's SQL: its own parameters, the filters and the configuration."""
        return (key, self.filters, self.config, self.offset)


def ratio(num: float | None, den: float | None) -> float | None:
    """num/den, or None when the base is empty (shown as n/a, never as 0)."""
    if num is None or den is None or den == 0 or _nan(num) or _nan(den):
        return None
    return float(num) / float(den)


def _nan(value: Any) -> bool:
    try:
        return math.isnan(value)
    except TypeError:
        return False


def clean(value: Any) -> Any:
    """Plain Python values (numpy scalars, NaN → None) so JSON and comparisons behave."""
    if value is None:
        return None
    if "pandas" in sys.modules and (value is pd.NA or value is pd.NaT):  # only pandas makes them
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    return [{str(k): clean(v) for k, v in row.items()} for row in df.to_dict(orient="records")]
