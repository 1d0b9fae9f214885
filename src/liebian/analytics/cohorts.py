"""Cohorts: the retention matrix and revenue per cohort (observed LTV curves).

A cohort is the people who started in the same day/week/month (display zone): by their first event
(filtered by channel/campaign/segment), or by their acquisition through referral (first referral
edge naming them as invitee). Coming back = any non-passive event in any channel in a later
period; spending = paid orders in any channel. Period 0 is the cohort itself (100 %). Periods that
have not fully happened yet (after the last data period) are None, not 0.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING

from liebian.analytics.common import AnalyticsError, Frame, clean, passive
from liebian.lazy import lazy_import
from liebian.scalars import as_int

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

UNITS = ("day", "week", "month")
COHORT_BY = ("first_event", "referral")


@functools.cache
def bit_or():
    """Ibis's BIT_OR aggregate, made on first use (declaring it would import Ibis at start-up)."""

    @ibis.udf.agg.builtin
    def bit_or(x: dt.int64) -> dt.int64:
        """Bitwise OR of the group's values (BIT_OR on DuckDB and Spark)."""

    return bit_or


@functools.cache
def bit_count():
    """The BIT_COUNT scalar function (set bits of an integer; DuckDB and Spark), made on first use."""

    @ibis.udf.scalar.builtin
    def bit_count(x: dt.int64) -> dt.int64:
        """Number of set bits of `x`."""

    return bit_count


# The one-pass retention keeps, per person, one 64-bit mask (see _retention_one_pass): bit 0 = a
# first-event candidate before the period, bit 1 = a start in the period but before the mask's
# window, then two bits per period unit of the window (start, active): bits 2..59.
MASK_UNITS = 29
TOP_BIT = 2**62  # a BIGINT literal on both engines (a small 1 would be a 32-bit INT on Spark)


@dataclass
class CohortResult:
    unit: str
    cohort_by: str
    table: pd.DataFrame  # long form: cohort, size, offset, value(s)

    def rows(self) -> list[dict]:
        return [{k: clean(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]

    def matrix(self, value: str) -> list[dict]:
        """Wide form for display: one row per cohort, one column per period offset."""
        out: list[dict] = []
        if self.table.empty:  # no cohort in the period (an empty frame may lack the columns)
            return out
        for (label, size), sub in self.table.groupby(["cohort", "size"], sort=True):
            row = {"cohort": label, "size": as_int(size)}
            for r in sub.sort_values("offset").itertuples():
                v = getattr(r, value)
                row[f"{self.unit[0]}{r.offset}"] = None if pd.isna(v) else round(float(v), 4)
            out.append(row)
        return out


def _unit_fn(fr: Frame, unit: str):
    if unit not in UNITS:
        raise AnalyticsError(f"unit must be one of {', '.join(UNITS)}; got {unit!r}")
    return {"day": fr.day_of, "week": fr.week_of, "month": fr.month_of}[unit]


def label(unit: str, number: int) -> str:
    if unit == "day":
        return Frame.day_date(number).isoformat()
    if unit == "week":
        return Frame.day_date(number * 7 - 3).isoformat()  # the Monday
    return f"{number // 12:04d}-{number % 12 + 1:02d}"


def cohort_members(fr: Frame, cohort_by: str = "first_event") -> ir.Table:
    """person_id, start_ts: when each person joined their cohort (only starts inside the period)."""
    if cohort_by == "first_event":
        e = fr.events(period=False)
        start = e.group_by("person_id").aggregate(start_ts=e.ts.min())
    elif cohort_by == "referral":
        edges = fr.table("referral_edges")
        f = fr.filters
        if f.channels:
            edges = edges.filter(edges.channel.isin(list(f.channels)))
        if f.campaigns:
            edges = edges.filter(edges.campaign_id.isin(list(f.campaigns)))
        edges = fr.in_segment(edges, "invitee_person_id")
        start = edges.group_by(person_id=edges.invitee_person_id).aggregate(start_ts=edges.ts.min())
    else:
        raise AnalyticsError(f"cohort_by must be one of {', '.join(COHORT_BY)}; got {cohort_by!r}")
    return fr.in_period(start, "start_ts")


def _cohorts(fr: Frame, unit_of, cohort_by: str, periods: int, cohorts: int):
    """members (person_id, start_ts, cohort) of the most recent cohorts, their sizes, and as_of
    (the last period with any data)."""
    if periods < 1 or cohorts < 1:
        raise AnalyticsError("periods and cohorts must be at least 1")
    members = cohort_members(fr, cohort_by)
    members = members.mutate(cohort=unit_of(members.start_ts))
    sizes = members.group_by("cohort").aggregate(size=members.person_id.count())
    sizes = sizes.order_by(sizes.cohort.desc()).limit(cohorts)
    members = members.semi_join(sizes, "cohort")
    ev = fr.table("events")
    as_of = ev.aggregate(as_of=unit_of(ev.ts.max()))
    return members, sizes, as_of


def _fetch(
    fr: Frame, sizes: ir.Table, values: ir.Table, as_of: ir.Table
) -> tuple[pd.DataFrame, pd.DataFrame, int]:
    """One query: every cohort's size (also cohorts without any value) with its values and as_of."""
    joined = sizes.left_join(values, sizes.cohort == values.cohort).cross_join(as_of)
    df = fr.execute(joined.drop("cohort_right"))
    if df.empty:
        return df, df, 0
    size_df = df[["cohort", "size"]].drop_duplicates()
    return df[df.offset.notna()].astype({"offset": "int64"}), size_df, int(df.as_of.iloc[0])


def retention(
    fr: Frame, unit: str = "week", cohort_by: str = "first_event", periods: int = 12, cohorts: int = 12
) -> CohortResult:
    """Retention matrix: for each cohort and offset k, persons active in period cohort+k / cohort size."""
    unit_of = _unit_fn(fr, unit)
    if cohort_by == "first_event" and periods >= 1 and cohorts >= 1:
        found = _retention_one_pass(fr, unit, periods, cohorts)
        if found is not None:
            return _cells(unit, cohort_by, periods, *found)
    rows, asof = _retention_joined(fr, unit_of, cohort_by, periods, cohorts)
    return _cells(unit, cohort_by, periods, rows, asof)


def _cells(
    unit: str, cohort_by: str, periods: int, rows: list[tuple[int, int, dict[int, int]]], asof: int
) -> CohortResult:
    """rows: (cohort, size, {offset: persons back}); cells after `asof` are None (not yet observable)."""
    cells = []
    for cohort, size, back in sorted(rows):
        for k in range(periods):
            n = size if k == 0 else back.get(k, 0)
            complete = cohort + k <= asof
            cells.append(
                {"cohort": label(unit, cohort), "size": size, "offset": k,
                 "persons": n if complete else None, "rate": n / size if complete else None}
            )  # fmt: skip
    return CohortResult(
        unit, cohort_by, pd.DataFrame(cells, columns=["cohort", "size", "offset", "persons", "rate"])
    )


def _retention_one_pass(
    fr: Frame, unit: str, periods: int, cohorts: int
) -> tuple[list[tuple[int, int, dict[int, int]]], int] | None:
    """First-event retention in one group-by on the person over the events, with one aggregate.

    Each event row contributes bits to its person's mask (BIT_OR), relative to the window of the
    MASK_UNITS units that end at as_of (the last period with any data): a candidate start (an event
    passing the channel/campaign filters) inside the period sets the unit's start bit, or bit 1 if
    its unit is before the window; one before the period sets bit 0; an active event in the window
    sets the unit's active bit. The lowest set bit among bit 0, bit 1 and the start bits is then
    the person's cohort (bit 0: not a member, as the first event is before the period; bit 1: a
    cohort older than the window), and cell (c, k) counts the members of c whose mask has the active
    bit of unit c + k. Every cell that can be observed (c + k <= as_of) lies in the window when
    c does. Returns None when a cohort older than the window may be among the most recent
    `cohorts` ones: the caller then joins the events with the members (_retention_joined)."""
    unit_of = _unit_fn(fr, unit)

    def last_unit() -> ir.Table:
        ev = fr.table("events")
        return ev.aggregate(as_of=unit_of(ev.ts.max()))

    found = fr.execute_cached(("as_of", unit), last_unit)
    if found.empty or pd.isna(found.as_of.iloc[0]):
        return [], 0
    asof = int(found.as_of.iloc[0])
    base = asof - (MASK_UNITS - 1)
    df = fr.execute_cached(("retention", unit, periods, base), lambda: _mask_counts(fr, unit, periods, base))
    rows = []
    older = 0
    for r in df.to_dict(orient="records"):
        low, size = int(r["low"]), int(r["size"])
        if low == 2:
            older = size
            continue
        cohort = base + (low.bit_length() - 3) // 2
        back = {k: int(r[f"k{k}"]) for k in range(1, min(periods, MASK_UNITS)) if cohort + k <= asof}
        rows.append((cohort, size, back))
    rows.sort(reverse=True)
    if older and len(rows) < cohorts:
        return None  # an older cohort may be among the most recent ones
    return rows[:cohorts], asof


def _mask_counts(fr: Frame, unit: str, periods: int, base: int) -> ir.Table:
    """Per lowest start bit (`low`, the cohort): its size and the members back at each offset k
    (`k1`…), from one aggregation of the events by person (see `_retention_one_pass`)."""
    unit_of = _unit_fn(fr, unit)
    f = fr.filters
    t = fr.in_segment(
        fr.table("events")
    )  # the segment selects the persons; return events count in any channel
    start_ok = ibis.literal(True)
    if f.channels:
        start_ok &= t.channel.isin(list(f.channels))
    if f.campaigns:
        start_ok &= t.campaign_id.isin(list(f.campaigns))
    before = (t.ts < fr.utc_bound(f.start)) if f.start else ibis.literal(False)
    t = t.select(
        "person_id",
        # a NULL channel/campaign makes the test NULL: false here, or the row's active bit is lost too
        start=(start_ok & fr.period_mask(t.ts)).fill_null(False),
        before=(start_ok & before).fill_null(False),
        active=~passive(fr, t.event),
        rel=unit_of(t.ts) - base,  # 0 .. MASK_UNITS - 1 inside the window
    )
    # bits 2 + 2·rel (start) and 3 + 2·rel (active) of the unit, from TOP_BIT (bit 62)
    flags = t.start.cast("int64") + 2 * t.active.cast("int64")
    bits = ibis.ifelse(
        t.rel >= 0, (ibis.literal(TOP_BIT, "int64") >> (60 - 2 * t.rel)) * flags, 2 * t.start.cast("int64")
    ) + t.before.cast("int64")
    per = t.group_by("person_id").aggregate(mask=bit_or()(bits.cast("int64")))
    starts = 3 | sum(1 << (2 + 2 * i) for i in range(MASK_UNITS))
    x = per.mask & starts
    per = per.mutate(low=x & -x)
    per = per.filter(per.low >= 2)  # members (low ≥ 4) and members of older cohorts (low = 2)
    offsets = range(1, min(periods, MASK_UNITS))
    # The mask from the cohort's unit on (shifted right by the position of `low`): the active bit of
    # unit c + k is then bit 2k + 1. Members are counted per (cohort, those bits) first, a few
    # thousand groups, and the offsets summed over those: per member, one shift and one AND instead
    # of a test per offset.
    back = sum(1 << (2 * k + 1) for k in offsets)
    per = per.select("low", back=(per.mask >> bit_count()(per.low - 1)) & back)
    pattern = per.group_by("low", "back").aggregate(n=per.count())
    metrics = {"size": pattern.n.sum()}
    for k in offsets:
        metrics[f"k{k}"] = ibis.ifelse((pattern.back & (1 << (2 * k + 1))) != 0, pattern.n, 0).sum()
    return pattern.group_by("low").aggregate(**metrics)


def _retention_joined(
    fr: Frame, unit_of, cohort_by: str, periods: int, cohorts: int
) -> tuple[list[tuple[int, int, dict[int, int]]], int]:
    """Retention from the members joined with their active events (any cohort definition)."""
    members, sizes, as_of = _cohorts(fr, unit_of, cohort_by, periods, cohorts)
    ev = fr.table("events")
    act = ev.filter(~passive(fr, ev.event))
    j = act.join(members, "person_id")
    j = j.mutate(offset=unit_of(j.ts) - j.cohort)
    j = j.filter((j.offset > 0) & (j.offset < periods))
    # One row per person with a flag per offset, then sums per cohort: a group-by on the person
    # (like a distinct count) instead of a distinct over (person, period) pairs, which is far larger.
    offsets = range(1, periods)
    if offsets:
        per = j.group_by("person_id").aggregate(
            cohort=j.cohort.max(), **{f"k{k}": (j.offset == k).any() for k in offsets}
        )
        counts = per.group_by("cohort").aggregate(
            **{f"k{k}": per[f"k{k}"].cast("int64").sum() for k in offsets}
        )
        joined = sizes.left_join(counts, sizes.cohort == counts.cohort).drop("cohort_right")
    else:
        joined = sizes
    df = fr.execute(joined.cross_join(as_of))
    asof = int(df.as_of.iloc[0]) if len(df) else 0
    rows = [
        (int(r["cohort"]), int(r["size"]), {k: int(clean(r.get(f"k{k}")) or 0) for k in offsets})
        for r in df.to_dict(orient="records")
    ]
    return rows, asof


def revenue(
    fr: Frame, unit: str = "month", cohort_by: str = "first_event", periods: int = 12, cohorts: int = 12
) -> CohortResult:
    """Revenue per cohort: paid revenue (fen) in period cohort+k, cumulative, and per cohort member
    (the observed LTV curve). Orders before a person's cohort start are not counted."""
    unit_of = _unit_fn(fr, unit)
    members, sizes, as_of = _cohorts(fr, unit_of, cohort_by, periods, cohorts)
    o = fr.table("orders")
    o = o.filter(o.status == "paid")
    j = members.join(o, [members.person_id == o.person_id, o.ts >= members.start_ts])
    j = j.mutate(offset=unit_of(j.ts) - j.cohort)
    j = j.filter(j.offset < periods)
    sums = j.group_by("cohort", "offset").aggregate(
        revenue_fen=j.amount_fen.sum(), buyers=j.person_id.nunique()
    )
    df, size_df, asof = _fetch(fr, sizes, sums, as_of)
    rows = []
    lookup = {(as_int(r.cohort), as_int(r.offset)): r for r in df.itertuples()}
    for s in size_df.sort_values("cohort").itertuples():
        cohort, size = as_int(s.cohort), as_int(s.size)
        total = 0
        for k in range(periods):
            complete = cohort + k <= asof
            r = lookup.get((cohort, k))
            rev = as_int(r.revenue_fen) if r is not None else 0
            total += rev
            rows.append(
                {
                    "cohort": label(unit, cohort),
                    "size": size,
                    "offset": k,
                    "revenue_fen": rev if complete else None,
                    "buyers": (as_int(r.buyers) if r is not None else 0) if complete else None,
                    "cumulative_revenue_fen": total if complete else None,
                    "ltv_fen": total / size if complete else None,
                }
            )
    return CohortResult(unit, cohort_by, pd.DataFrame(rows))
