"""Data-quality report over the warehouse: completeness, consistency, timeliness, volume, quarantine.

Every figure is one DuckDB query over the warehouse tables (the daily volume series is then scored
in pandas: it has one row per channel and day). The error rate follows 001 §2.1.3: rows that were
rejected at import or loaded with an out-of-range value or as a duplicate, over all rows received;
the target is `settings.quality_error_target` (0.3 %).

Windows: `start`/`end` bound the rows' own `ts` (naive UTC, end exclusive); quarantined rows have
no trustworthy ts and are bounded by `rejected_at`. Days of the volume series are local days in
`settings.timezone`, the brand's business day.
"""

from __future__ import annotations

import math
import statistics
import threading
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from liebian import calendar as holiday_calendar
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.identity import service as identity_service
from liebian.lazy import lazy_import
from liebian.quality.schemas import (
    ChannelTimeliness,
    Completeness,
    Consistency,
    ErrorRate,
    FieldFill,
    Finding,
    QualityReport,
    Quarantine,
    RejectGroup,
    Scores,
    Timeliness,
    VolumeAnomaly,
)

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    pd = lazy_import("pandas")

# Fields that must be filled (they make the completeness score) and optional ones (reported only).
REQUIRED_FIELDS = {
    "events": ("ts", "user_id", "event", "channel"),
    "orders": ("ts", "user_id", "amount_fen", "currency", "status", "channel"),
    "messages": ("ts", "group_id", "user_id", "channel"),
}
OPTIONAL_FIELDS = {
    "events": ("device_id", "ip", "campaign_id"),
    "orders": ("campaign_id",),
    "messages": ("text",),
}
TEXT_FIELDS = {
    "user_id",
    "event",
    "channel",
    "currency",
    "status",
    "group_id",
    "device_id",
    "ip",
    "campaign_id",
    "text",
}
# Reject reasons carry the offending value after these prefixes; the value is dropped for grouping.
REASON_PREFIXES = (
    "unknown channel",
    "unreadable timestamp",
    "unknown id_type",
    "unknown order status",
    "not an integer number of fen",
    "not an amount in yuan",
    "not an ISO currency code",
)


@dataclass(frozen=True)
class QualityConfig:
    late_hours: float = 24.0
    # ¥100,000 for one consumer order is out of range for the brands liebian serves.
    max_amount_fen: int = 10_000_000
    # Amounts two orders of magnitude from the median order are typos or test orders (¥0.01, a
    # price keyed in fen as yuan), whatever the brand's price level; 0 switches the check off.
    amount_outlier_factor: float = 100.0
    min_ts: datetime = datetime(2015, 1, 1)
    duplicate_seconds: float = 1.0
    z_threshold: float = 3.5  # Iglewicz & Hoaglin's cut-off for the robust z-score
    weeks: int = 3  # same weekday this many weeks before and after
    min_reference_days: int = 3
    min_daily_volume: int = 5  # a channel with fewer rows a day is too small to judge


def _ts(value: datetime) -> str:
    return f"TIMESTAMP '{value.isoformat(sep=' ')}'"


def _window(column: str, start: datetime | None, end: datetime | None) -> str:
    parts = ["TRUE"]
    if start is not None:
        parts.append(f"{column} >= {_ts(start)}")
    if end is not None:
        parts.append(f"{column} < {_ts(end)}")
    return " AND ".join(parts)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    cursor = con.execute(sql)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> dict[str, Any]:
    return _rows(con, sql)[0]


def _score(bad: int, total: int) -> float:
    return 100.0 if total == 0 else max(0.0, 100.0 * (1 - bad / total))


def _as_datetime(value: datetime | date | None) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime(value.year, value.month, value.day)


# ---------------------------------------------------------------------------------- completeness


def completeness(
    con: duckdb.DuckDBPyConnection, start: datetime | None, end: datetime | None
) -> Completeness:
    fields: list[FieldFill] = []
    for table, required in REQUIRED_FIELDS.items():
        columns = [(f, True) for f in required] + [(f, False) for f in OPTIONAL_FIELDS[table]]
        missing = ", ".join(
            f"count(*) FILTER (WHERE {f} IS NULL"
            + (f" OR trim({f}) = ''" if f in TEXT_FIELDS else "")
            + f') AS "{f}"'
            for f, _ in columns
        )
        row = _one(
            con, f"SELECT count(*) AS n_rows, {missing} FROM {table} WHERE {_window('ts', start, end)}"
        )
        for f, is_required in columns:
            n, gap = row["n_rows"], row[f]
            fields.append(
                FieldFill(
                    table=table,
                    field=f,
                    required=is_required,
                    rows=n,
                    missing=gap,
                    null_rate=gap / n if n else 0.0,
                )
            )
    required_cells = sum(f.rows for f in fields if f.required)
    missing_cells = sum(f.missing for f in fields if f.required)
    return Completeness(
        score=_score(missing_cells, required_cells),
        required_cells=required_cells,
        missing_cells=missing_cells,
        fields=fields,
    )


# ----------------------------------------------------------------------------------- consistency


@dataclass
class _Checked:
    consistency: Consistency
    loaded_rows: int  # events + orders + messages in the window
    error_rows: int  # loaded rows with an out-of-range value or a duplicate


def _event_checks(con: duckdb.DuckDBPyConnection, start: datetime | None, end: datetime | None, cfg: QualityConfig,
                  future: str, old: str) -> dict[str, Any]:  # fmt: skip
    """Events in the window: content duplicates (same person, event, channel within the duplicate
    window), future and too old timestamps."""
    return _one(
        con,
        f"""
        WITH e AS (
            SELECT ts, ts - lag(ts) OVER (PARTITION BY person_id, event, channel ORDER BY ts, event_id) AS gap
            FROM events WHERE {_window("ts", start, end)}
        ), f AS (
            SELECT coalesce(gap <= INTERVAL {cfg.duplicate_seconds * 1_000_000:.0f} MICROSECONDS, FALSE) AS dup,
                   {future} AS future, {old} AS old
            FROM e
        )
        SELECT count(*) AS n, count(*) FILTER (WHERE dup) AS dup, count(*) FILTER (WHERE future) AS future,
               count(*) FILTER (WHERE old) AS old, count(*) FILTER (WHERE dup OR future OR old) AS error_rows
        FROM f
        """,
    )


def _order_checks(con: duckdb.DuckDBPyConnection, start: datetime | None, end: datetime | None, cfg: QualityConfig,
                  future: str, old: str) -> dict[str, Any]:  # fmt: skip
    """Orders in the window: repeated order ids, amounts out of range or far from the median, future
    and too old timestamps, refunds before their payment, buyers without any event."""
    factor = float(cfg.amount_outlier_factor)
    return _one(
        con,
        f"""
        WITH o AS (
            SELECT *, row_number() OVER (PARTITION BY order_id ORDER BY ts, status_ts, batch_id) > 1 AS dup_id
            FROM orders WHERE {_window("ts", start, end)}
        ), active AS (SELECT DISTINCT person_id FROM events),
        typical AS (SELECT coalesce(median(amount_fen) FILTER (WHERE amount_fen > 0), 0) AS m FROM o),
        f AS (
            SELECT dup_id,
                   amount_fen <= 0 OR amount_fen > {int(cfg.max_amount_fen)}
                   OR ({factor} > 0 AND (amount_fen * {factor} < m OR amount_fen > m * {factor})) AS amount_bad,
                   {future} AS future, {old} AS old,
                   status = 'refunded' AND status_ts < ts AS refund_first,
                   active.person_id IS NULL AS orphan
            FROM o LEFT JOIN active USING (person_id) CROSS JOIN typical
        )
        SELECT count(*) AS n, count(*) FILTER (WHERE dup_id) AS dup_id,
               count(*) FILTER (WHERE amount_bad) AS amount_bad, count(*) FILTER (WHERE future) AS future,
               count(*) FILTER (WHERE old) AS old, count(*) FILTER (WHERE refund_first) AS refund_first,
               count(*) FILTER (WHERE orphan) AS orphan,
               count(*) FILTER (WHERE dup_id OR amount_bad OR future OR old) AS error_rows,
               count(*) FILTER (WHERE dup_id OR amount_bad OR future OR old OR refund_first OR orphan)
                   AS problem_rows
        FROM f
        """,
    )


def consistency(
    con: duckdb.DuckDBPyConnection,
    start: datetime | None,
    end: datetime | None,
    cfg: QualityConfig,
    now: datetime,
    identity_conflicts: int | None,
) -> _Checked:
    future, old = f"ts > {_ts(now)}", f"ts < {_ts(cfg.min_ts)}"
    events = _event_checks(con, start, end, cfg, future, old)
    orders = _order_checks(con, start, end, cfg, future, old)
    messages = _one(
        con,
        f"""
        SELECT count(*) AS n, count(*) FILTER (WHERE {future}) AS future, count(*) FILTER (WHERE {old}) AS old,
               count(*) FILTER (WHERE {future} OR {old}) AS error_rows
        FROM messages WHERE {_window("ts", start, end)}
        """,
    )
    # A person is known when the registry replica, an event or an order mentions them.
    edges = _one(
        con,
        f"""
        WITH known AS (
            SELECT person_id FROM identity_map UNION SELECT person_id FROM events
            UNION SELECT person_id FROM orders
        )
        SELECT count(*) AS n,
               count(*) FILTER (WHERE inviter_person_id NOT IN (SELECT person_id FROM known)
                                   OR invitee_person_id NOT IN (SELECT person_id FROM known)) AS unknown
        FROM referral_edges WHERE {_window("ts", start, end)}
        """,
    )
    conflicts = identity_conflicts or 0
    rows_checked = events["n"] + orders["n"] + messages["n"] + edges["n"] + conflicts
    rows_with_problems = (
        events["error_rows"] + orders["problem_rows"] + messages["error_rows"] + edges["unknown"] + conflicts
    )
    result = Consistency(
        score=_score(rows_with_problems, rows_checked),
        rows_checked=rows_checked,
        rows_with_problems=rows_with_problems,
        duplicate_content_events=events["dup"],
        duplicate_order_ids=orders["dup_id"],
        out_of_range_amounts=orders["amount_bad"],
        future_timestamps=events["future"] + orders["future"] + messages["future"],
        too_old_timestamps=events["old"] + orders["old"] + messages["old"],
        refunds_without_payment=orders["refund_first"],
        orders_without_events=orders["orphan"],
        edges_to_unknown_persons=edges["unknown"],
        identity_conflicts=identity_conflicts,
    )
    return _Checked(
        consistency=result,
        loaded_rows=events["n"] + orders["n"] + messages["n"],
        error_rows=events["error_rows"] + orders["error_rows"] + messages["error_rows"],
    )


# ------------------------------------------------------------------------------------ timeliness


def timeliness(
    con: duckdb.DuckDBPyConnection, start: datetime | None, end: datetime | None, cfg: QualityConfig
) -> Timeliness:
    """Delay from the row's own time to its arrival (received_at, else ingested_at), per channel.

    Messages carry no received_at, and history loaded later would all look late: they are left out.
    """
    limit = cfg.late_hours * 3600
    rows = _rows(
        con,
        f"""
        WITH d AS (
            SELECT 'events' AS tbl, channel, epoch(coalesce(received_at, ingested_at) - ts) AS delay
            FROM events WHERE {_window("ts", start, end)}
            UNION ALL
            SELECT 'orders', channel, epoch(coalesce(received_at, ingested_at) - ts)
            FROM orders WHERE {_window("ts", start, end)}
        )
        SELECT tbl, channel, count(*) AS n, count(*) FILTER (WHERE delay > {limit}) AS late,
               median(delay) / 3600 AS p50, quantile_cont(delay, 0.95) / 3600 AS p95
        FROM d GROUP BY ALL ORDER BY tbl, channel
        """,
    )
    channels = [
        ChannelTimeliness(
            table=r["tbl"],
            channel=r["channel"],
            rows=r["n"],
            late_rows=r["late"],
            late_rate=r["late"] / r["n"],
            median_delay_hours=r["p50"],
            p95_delay_hours=r["p95"],
        )
        for r in rows
    ]
    total = sum(c.rows for c in channels)
    late = sum(c.late_rows for c in channels)
    return Timeliness(
        score=_score(late, total),
        late_hours=cfg.late_hours,
        rows=total,
        late_rows=late,
        late_events=sum(c.late_rows for c in channels if c.table == "events"),
        late_orders=sum(c.late_rows for c in channels if c.table == "orders"),
        channels=channels,
    )


# ------------------------------------------------------------------------------- volume anomalies


def daily_volume(
    con: duckdb.DuckDBPyConnection,
    start: datetime | None,
    end: datetime | None,
    cfg: QualityConfig,
    tz: str,
    now: datetime,
) -> pd.DataFrame:
    """Rows per table, channel and local day, over the window widened by the reference weeks."""
    pad = timedelta(weeks=cfg.weeks, days=1)
    wide = _window("ts", start - pad if start else None, end + pad if end else None)
    # out-of-range times are counted by the consistency check; here they would stretch the series
    wide += f" AND ts >= {_ts(cfg.min_ts)} AND ts <= {_ts(now)}"
    # Rows are counted per quarter hour first and only those buckets are moved to the local zone:
    # every zone's offset is a multiple of 15 minutes, so a bucket lies in one local day, and the
    # zone conversion (the costly part) runs on thousands of buckets instead of millions of rows.
    bucket = "time_bucket(INTERVAL 15 MINUTE, ts)"
    cursor = con.execute(
        f"""
        WITH b AS (
            SELECT 'events' AS tbl, channel, {bucket} AS b, count(*) AS n FROM events WHERE {wide} GROUP BY ALL
            UNION ALL
            SELECT 'orders', channel, {bucket}, count(*) FROM orders WHERE {wide} GROUP BY ALL
        )
        SELECT tbl, channel, CAST(timezone('{tz}', timezone('UTC', b)) AS DATE) AS day, sum(n)::BIGINT AS n
        FROM b GROUP BY ALL
        """
    )
    return pd.DataFrame(cursor.fetchall(), columns=["tbl", "channel", "day", "n"])


def volume_anomalies(
    daily: pd.DataFrame, cfg: QualityConfig, first_day: date | None = None, last_day: date | None = None
) -> list[VolumeAnomaly]:
    """Days whose volume departs from the same weekday of the surrounding weeks (robust z > cut-off).

    Each (table, channel) series is completed with zero days between its first and last day (a
    silent day is the strongest anomaly); those two edge days are not judged, being usually partial.
    A day's expectation is the median of the same weekday up to `weeks` weeks before and after; at
    least one must lie before (a growing channel's first weeks are not judged against its later
    level), the latest days are judged on history alone. The residual is
    log((observed + 1) / (expected + 1)): outages and spikes are multiplicative. Its scale is the
    channel's own 1.4826·MAD of residuals over the whole series, not the spread of the few reference
    days, which a trend inflates (a growing channel hid an 85 % outage that way); it is floored at
    1/√expected, the Poisson noise of a count, so a perfectly regular history stays quiet.
    A day the holiday calendar explains (双11, 春节, a brand date…) is labelled, not an error, and is
    no reference for other days (a 双11 spike would raise the expectation of the weeks around it).
    """
    days_all = [pd.Timestamp(d).date() for d in daily["day"]]
    explained = holiday_calendar.current().explained(min(days_all), max(days_all)) if days_all else {}
    found: list[VolumeAnomaly] = []
    for (table, channel), group in daily.groupby(["tbl", "channel"], sort=True):
        counts = {pd.Timestamp(d).date(): int(n) for d, n in zip(group["day"], group["n"], strict=True)}
        days = sorted(counts)
        first, last = days[0], days[-1]
        series = {first + timedelta(days=i): 0 for i in range((last - first).days + 1)} | counts
        judged: list[tuple[date, int, float, float]] = []
        for day, observed in series.items():
            if day in (first, last):
                continue
            before, after = (
                [
                    series[other]
                    for k in range(1, cfg.weeks + 1)
                    if (other := day + sign * timedelta(weeks=k)) in series
                    and other not in (first, last)
                    and other not in explained
                ]
                for sign in (-1, 1)
            )
            if not before or len(before) + len(after) < cfg.min_reference_days:
                continue
            expected = statistics.median(before + after)
            if max(expected, observed) < cfg.min_daily_volume:
                continue
            judged.append((day, observed, expected, math.log((observed + 1) / (expected + 1))))
        if len(judged) < cfg.min_reference_days:
            continue
        centre = statistics.median(r for *_, r in judged)
        spread = 1.4826 * statistics.median(abs(r - centre) for *_, r in judged)
        for day, observed, expected, residual in judged:
            if (first_day and day < first_day) or (last_day and day > last_day):
                continue
            z = residual / max(spread, 1 / math.sqrt(expected + 1))
            if abs(z) > cfg.z_threshold:
                found.append(
                    VolumeAnomaly(
                        table=table,
                        channel=channel,
                        date=day,
                        observed=observed,
                        expected=float(expected),
                        z=z,
                        ratio=observed / expected if expected else None,
                        explained_by=explained.get(day),
                    )
                )
    return sorted(found, key=lambda a: (a.date, a.table, a.channel))


# ------------------------------------------------------------------------------------ quarantine

_CATEGORY_SQL = """
    CASE
        WHEN field IN ('ts', 'received_at', 'status_ts') OR reason ILIKE '%timestamp%' THEN 'bad_timestamp'
        WHEN reason ILIKE 'missing %' AND (field ILIKE '%id' OR field ILIKE 'id\\_%' ESCAPE '\\')
            THEN 'missing_id'
        WHEN reason ILIKE '%negative amount%' THEN 'negative_amount'
        WHEN field = 'channel' THEN 'unknown_channel'
        WHEN reason ILIKE '%phone%' OR reason ILIKE '%id_type%' OR field ILIKE '%id' THEN 'bad_identifier'
        WHEN field IN ('amount', 'amount_fen', 'currency') THEN 'bad_amount'
        ELSE 'other'
    END
"""


def quarantine(con: duckdb.DuckDBPyConnection, start: datetime | None, end: datetime | None) -> Quarantine:
    """Rejected rows by reason. One rejected line may carry several reasons: rows are counted once."""
    prefixes = "|".join(REASON_PREFIXES)
    base = f"""
        SELECT kind, field, reason,
               batch_id || '/' || kind || '/' || source || '/' || coalesce(line::VARCHAR, '#' || rowid::VARCHAR)
                   AS row_key,
               regexp_replace(split_part(regexp_replace(reason, '^({prefixes}).*$', '\\1'), ':', 1), '\\s+$', '')
                   AS reason_group,
               {_CATEGORY_SQL} AS category
        FROM rejects WHERE {_window("rejected_at", start, end)}
    """
    total = _one(con, f"SELECT count(DISTINCT row_key) AS n FROM ({base})")["n"]
    groups = _rows(
        con,
        f"""SELECT kind, field, reason_group, category, count(DISTINCT row_key) AS n FROM ({base})
            GROUP BY ALL ORDER BY n DESC, kind, field, reason_group""",
    )
    categories = _rows(con, f"SELECT category, count(DISTINCT row_key) AS n FROM ({base}) GROUP BY ALL")
    return Quarantine(
        rejected_rows=total,
        by_category={r["category"]: r["n"] for r in sorted(categories, key=lambda r: r["category"])},
        by_reason=[
            RejectGroup(
                kind=g["kind"],
                field=g["field"],
                reason=g["reason_group"],
                category=g["category"],
                rows=g["n"],
            )
            for g in groups
        ],
    )


# -------------------------------------------------------------------------------------- report


def quality_report(
    con: duckdb.DuckDBPyConnection,
    *,
    start: datetime | date | None = None,
    end: datetime | date | None = None,
    session: Session | None = None,
    config: QualityConfig | None = None,
    now: datetime | None = None,
    error_target: float | None = None,
    timezone: str | None = None,
    volume: pd.DataFrame | None = None,
) -> QualityReport:
    """The data-quality report of the warehouse rows whose ts lies in [start, end). `volume` is
    `daily_volume` of the same window and settings when the caller has it already."""
    settings = get_settings()
    cfg = config or QualityConfig()
    start, end = _as_datetime(start), _as_datetime(end)
    if start is not None and end is not None and start >= end:
        raise ValueError(f"start {start.isoformat()} is not before end {end.isoformat()}")
    now = now or utcnow()
    target = settings.quality_error_target if error_target is None else error_target
    tz = timezone or settings.timezone

    # identity conflicts live in the operational store: counted only when a session is given
    conflicts = identity_service.conflict_count(session, start, end) if session is not None else None
    filled = completeness(con, start, end)
    checked = consistency(con, start, end, cfg, now, conflicts)
    timely = timeliness(con, start, end, cfg)
    first_day = start.date() if start else None
    last_day = (end - timedelta(microseconds=1)).date() if end else None
    daily = daily_volume(con, start, end, cfg, tz, now) if volume is None else volume
    anomalies = volume_anomalies(daily, cfg, first_day, last_day)
    held = quarantine(con, start, end)

    received = checked.loaded_rows + held.rejected_rows
    bad = held.rejected_rows + checked.error_rows
    rate = bad / received if received else 0.0
    errors = ErrorRate(
        rows_received=received,
        rejected_rows=held.rejected_rows,
        problem_rows=checked.error_rows,
        error_rate=rate,
        target=target,
        passed=rate <= target,
    )
    c = checked.consistency
    scores = Scores(
        completeness=filled.score,
        consistency=c.score,
        timeliness=timely.score,
        overall=(filled.score + c.score + timely.score) / 3,
    )
    return QualityReport(
        generated_at=now,
        start=start,
        end=end,
        scores=scores,
        error_rate=errors,
        completeness=filled,
        consistency=c,
        timeliness=timely,
        volume_anomalies=anomalies,
        quarantine=held,
        findings=_findings(filled, c, timely, anomalies, held, errors, cfg),
    )


def _consistency_findings(c: Consistency, cfg: QualityConfig) -> list[Finding]:
    """One finding per consistency check that found rows (params: the numbers in its detail)."""
    problems: list[tuple[str, str | None, int, str, dict[str, float | int | str]]] = [
        ("duplicate_content_events", "events", c.duplicate_content_events,
         f"same person, event and channel within {cfg.duplicate_seconds:g} s", {"seconds": cfg.duplicate_seconds}),
        ("duplicate_order_ids", "orders", c.duplicate_order_ids, "order_id loaded more than once", {}),
        ("out_of_range_amounts", "orders", c.out_of_range_amounts,
         f"amount ≤ 0, above {cfg.max_amount_fen:,} fen or {cfg.amount_outlier_factor:g}× off the median order",
         {"max_amount_fen": cfg.max_amount_fen, "outlier_factor": cfg.amount_outlier_factor}),
        ("future_timestamps", None, c.future_timestamps, "ts later than now", {}),
        ("too_old_timestamps", None, c.too_old_timestamps, f"ts before {cfg.min_ts.date()}",
         {"day": cfg.min_ts.date().isoformat()}),
        ("refunds_without_payment", "orders", c.refunds_without_payment, "refund time before the payment time", {}),
        ("orders_without_events", "orders", c.orders_without_events, "the buyer has no behaviour event", {}),
        ("edges_to_unknown_persons", "referral_edges", c.edges_to_unknown_persons,
         "inviter or invitee unknown to the warehouse", {}),
        ("identity_conflicts", None, c.identity_conflicts or 0, "contradicting OneID evidence kept apart", {}),
    ]  # fmt: skip
    return [Finding(check=k, table=t, count=n, detail=d, params=p) for k, t, n, d, p in problems if n]


def _findings(
    filled: Completeness,
    c: Consistency,
    timely: Timeliness,
    anomalies: list[VolumeAnomaly],
    held: Quarantine,
    errors: ErrorRate,
    cfg: QualityConfig,
) -> list[Finding]:
    """Everything that is not clean, one line each, most actionable first."""
    out: list[Finding] = []
    if not errors.passed:
        out.append(
            Finding(
                check="error_rate",
                count=errors.rejected_rows + errors.problem_rows,
                detail=f"error rate {errors.error_rate:.3%} above the target {errors.target:.3%}",
                params={"error_rate": errors.error_rate, "target_rate": errors.target},
            )
        )
    for category, n in held.by_category.items():
        out.append(
            Finding(
                check=f"rejected:{category}",
                count=n,
                detail=f"{n} rows quarantined ({category})",
                params={"category": category},
            )  # fmt: skip
        )
    out.extend(_consistency_findings(c, cfg))
    for f in filled.fields:
        if f.required and f.missing:
            out.append(
                Finding(
                    check="missing_values",
                    table=f.table,
                    count=f.missing,
                    detail=f"{f.field} empty in {f.null_rate:.2%} of rows",
                    params={"field": f.field, "null_rate": f.null_rate},
                )
            )
    for ch in timely.channels:
        if ch.late_rows:
            out.append(
                Finding(
                    check="late_data",
                    table=ch.table,
                    channel=ch.channel,
                    count=ch.late_rows,
                    detail=f"{ch.late_rate:.2%} of rows arrived more than {timely.late_hours:g} h late",
                    params={"late_rate": ch.late_rate, "hours": timely.late_hours},
                )
            )
    for a in (a for a in anomalies if a.explained_by is None):  # calendar days are labelled, not findings
        out.append(
            Finding(
                check="volume_anomaly",
                table=a.table,
                channel=a.channel,
                count=a.observed,
                detail=f"{a.date}: {a.observed} rows, expected about {a.expected:g} (z {a.z:+.1f})",
                params={"day": str(a.date), "observed": a.observed, "expected": a.expected, "z": a.z},
            )
        )
    return out


def metric_rows(report: QualityReport) -> list[dict[str, Any]]:
    """The report flattened to (section, name, table, channel, value) rows for CSV and tables."""
    rows: list[dict[str, Any]] = []

    def add(
        section: str, name: str, value: object, table: str | None = None, channel: str | None = None
    ) -> None:
        rows.append(
            {"section": section, "name": name, "table": table or "", "channel": channel or "", "value": value}
        )

    for name, value in report.scores.model_dump().items():
        add("score", name, round(value, 3))
    for name, value in report.error_rate.model_dump().items():
        add("error_rate", name, value)
    for f in report.completeness.fields:
        add("null_rate" if f.required else "null_rate_optional", f.field, round(f.null_rate, 6), f.table)
    for name, value in report.consistency.model_dump(exclude={"score"}).items():
        add("consistency", name, value)
    for ch in report.timeliness.channels:
        add("late_rows", "late_rows", ch.late_rows, ch.table, ch.channel)
    for a in report.volume_anomalies:
        label = f" ({a.explained_by})" if a.explained_by else ""
        add("volume_anomaly", str(a.date), f"{a.observed} vs {a.expected:g}{label}", a.table, a.channel)
    for category, n in report.quarantine.by_category.items():
        add("rejected", category, n)
    return rows


def check_ground_truth(report: QualityReport, truth: dict[str, Any]) -> list[dict[str, Any]]:
    """Injected problems (the demo's ground_truth.json "quality" section) against what was detected."""
    rows = []

    def add(kind: str, injected: int, detected: int) -> None:
        rows.append({"kind": kind, "injected": injected, "detected": detected, "ok": injected == detected})

    for category, n in sorted(truth.get("bad_rows", {}).items()):
        add(f"bad_rows.{category}", n, report.quarantine.by_category.get(category, 0))
    if "duplicate_content_events" in truth:
        add(
            "duplicate_content_events",
            truth["duplicate_content_events"],
            report.consistency.duplicate_content_events,
        )
    if "late_events" in truth:
        add("late_events", truth["late_events"], report.timeliness.late_events)
    if "out_of_range_amounts" in truth:
        add("out_of_range_amounts", truth["out_of_range_amounts"], report.consistency.out_of_range_amounts)
    flagged = {
        (a.channel, a.date.isoformat())
        for a in report.volume_anomalies
        if a.table == "events" and not a.explained_by
    }
    for anomaly in truth.get("volume_anomalies", []):
        add(
            f"volume_anomaly.{anomaly['channel']}.{anomaly['date']}",
            1,
            int((anomaly["channel"], anomaly["date"]) in flagged),
        )
    return rows


# ------------------------------------------------------------------------ the console's report

# (window, settings, data version, hour) → (report, daily volume); a few recent windows only
_MEMO: dict[tuple[object, ...], tuple[QualityReport, pd.DataFrame]] = {}
_MEMO_LOCK = threading.Lock()
MEMO_SIZE = 8


def data_version(con: duckdb.DuckDBPyConnection) -> tuple[object, ...]:
    """A cheap summary of everything the report reads (about 0.1 s on 1.9M events): the row count
    of every table it reads, the latest arrival in events, orders and messages, the import batches
    (every file and collector batch, order-status updates included, adds one) and the person merges
    applied to the warehouse. A load, a merge or an erasure of quarantined rows changes it."""
    counts = ", ".join(
        f"(SELECT count(*) FROM {t})"
        for t in ("events", "orders", "messages", "referral_edges", "identity_map", "rejects",
                  "import_batches", "applied_merges")
    )  # fmt: skip
    latest = ", ".join(f"(SELECT max(ingested_at) FROM {t})" for t in ("events", "orders", "messages"))
    row = con.execute(f"SELECT {counts}, {latest}").fetchone()
    if row is None:  # unreachable: a SELECT of scalar subqueries has one row
        raise RuntimeError("the data version query returned no row")
    return tuple(row)


def current_report(
    con: duckdb.DuckDBPyConnection,
    *,
    start: datetime | None = None,
    end: datetime | None = None,
    session: Session | None = None,
    now: datetime | None = None,
) -> tuple[QualityReport, pd.DataFrame]:
    """The report of [start, end) and its daily volume (rows per table, channel and local day of the
    window), for the console. The full report reads every row (seconds on a large brand), so it is
    computed again only when the data changed (`data_version`, identity conflicts) or the hour
    turned (what counts as a future timestamp moves with the clock); otherwise the same numbers are
    served from memory. `generated_at` says when they were computed."""
    settings = get_settings()
    now = now or utcnow()
    conflicts = identity_service.conflict_count(session, start, end) if session is not None else None
    key = (start, end, settings.timezone, settings.quality_error_target, data_version(con), conflicts,
           now.replace(minute=0, second=0, microsecond=0), settings.calendar.model_dump_json())  # fmt: skip
    with _MEMO_LOCK:
        hit = _MEMO.get(key)
    if hit is not None:
        return hit
    cfg = QualityConfig()
    daily = daily_volume(con, start, end, cfg, settings.timezone, now)
    report = quality_report(con, start=start, end=end, session=session, config=cfg, now=now, volume=daily)
    zone = ZoneInfo(settings.timezone)  # the series' days are local days
    if start is not None:
        daily = daily[daily["day"] >= start.replace(tzinfo=UTC).astimezone(zone).date()]
    if end is not None:
        daily = daily[
            daily["day"] <= (end - timedelta(microseconds=1)).replace(tzinfo=UTC).astimezone(zone).date()
        ]
    result = (report, daily.sort_values(["tbl", "channel", "day"]).reset_index(drop=True))
    with _MEMO_LOCK:
        if len(_MEMO) >= MEMO_SIZE:
            _MEMO.pop(next(iter(_MEMO)))
        _MEMO[key] = result
    return result
