"""The KPI sheet's day-N retention (D1/D7/D30…): of the period's new users whose day N is in the data,
those with an active event (any channel or campaign) on the local day first day + N.

The sheet's aggregation of every event by person folds each person's active days of the DAYS days
to a top day into two BIGINT bit sets (`day_words`). Without channel, campaign or segment filters,
those are every event's, so day N of a new user is a bit test (`retention_counts`), and only new
users whose day N lies outside the bit sets are looked up in the events (a semi-join of (person,
day N) with the active events' (person, day)); under filters the aggregation reads the filtered
events while a return counts in any channel, so every day N is looked up. (At 10M events the bit
sets cost the sheet about a tenth less CPU than the semi-join of every new user: docs/benchmarks.md.)
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING

from liebian.analytics.cohorts import TOP_BIT, bit_or
from liebian.analytics.common import Frame, passive
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ir = lazy_import("ibis.expr.types")

# The sheet's aggregation by person keeps two BIGINT bit sets per person (`day_words`): bit i of
# `days_0` is an active day top - i (i < 63), bit i of `days_1` the day top - 63 - i (i < 58); bits
# FLAG_BASE.. of `days_1` carry the sheet's flags (kpis.FLAG_BIT). The sign bits stay unused.
WORD_DAYS = (63, 58)
DAYS = sum(WORD_DAYS)  # 121 days back from the top day: a quarter's new users and their D30
FLAG_BASE = WORD_DAYS[1]
WORD_COLUMNS = ("days_0", "days_1")
STICKY_DAYS = 30  # the stickiness window, which `days_0` holds too (kpis._unpacked)


def top_shift(fr: Frame) -> int:
    """Days from the reference day (the period end, else the last data day) to the top day (bit 0):
    the last day a new user's day N can fall on (the period end + the largest N; without an end, the
    last data day itself, after which nothing is known), so that `days_0` still holds the stickiness
    window (its bits shift .. shift + 29); a day N after the top day is looked up."""
    days = fr.config.retention_days
    if not (fr.filters.end and days):
        return 0
    return min(max(0, *days), WORD_DAYS[0] - STICKY_DAYS)


BACK = "day_back"  # the column `with_day_back` adds: days from an event's local day to the top day


def with_day_back(fr: Frame, t: ir.Table, ref_day: ir.IntegerValue) -> ir.Table:
    """`t` with BACK, the days from each row's local day back to the top day (`ref_day` + `top_shift`):
    computed once per row in a projection, which `day_words` reads in each of its bit tests (inlined,
    the engine would compute the day of every event once per test)."""
    return t.mutate(**{BACK: ref_day + top_shift(fr) - fr.day_of(t.ts)})


def day_words(fr: Frame, t: ir.Table, flags: ir.IntegerValue) -> dict[str, ir.Value]:
    """Per person (aggregates over their events `t`, with BACK: `with_day_back`): the active days as the
    bits of WORD_COLUMNS, relative to the top day, and `flags` (a BIGINT per event) in `days_1`."""
    back = t[BACK]
    active = ~passive(fr, t.event)
    # 1 << k as TOP_BIT >> (62 - k): a literal 1 would be a 32-bit INT on Spark, whose shift wraps at 32
    top_bit, zero = ibis.literal(TOP_BIT, "int64"), ibis.literal(0, "int64")
    out: dict[str, ir.Value] = {}
    low = 0
    for name, width in zip(WORD_COLUMNS, WORD_DAYS, strict=True):
        inside = active & (back >= low) & (back < low + width)
        bits = ibis.ifelse(inside, top_bit >> (62 - (back - low)), zero)
        if name == WORD_COLUMNS[1]:
            bits += flags
        out[name] = bit_or()(bits.cast("int64"))
        low += width
    return out


def retention_counts(fr: Frame, cohort: ir.Table, also: dict[str, ir.Value] | None = None) -> list[ir.Table]:
    """d{N}_base and d{N}_back of the new users (`cohort`: person_id, first_day, as_of, ref_day and,
    when the sheet folded them in, WORD_COLUMNS), with `also` (other aggregates over `cohort`) in the
    same aggregation: one pass over the new users instead of one per count."""
    also = also or {}
    days = fr.config.retention_days
    if not days:
        return [cohort.aggregate(**also)] if also else []
    # Only new users whose day N is already in the data count.
    due = {n: cohort.first_day + n <= cohort.as_of for n in days}
    base = {f"d{n}_base": cohort.person_id.count(where=due[n]) for n in days}
    if WORD_COLUMNS[0] not in cohort.columns:
        return [cohort.aggregate(**also, **base), _looked_up(fr, cohort, days, bitmaps=False)]
    top = cohort.ref_day + top_shift(fr)
    found: dict[str, ir.Value] = {}
    for n in days:
        back = top - (cohort.first_day + n)  # the bit of day N, counted over the words
        hit = ibis.literal(False)
        low = 0
        for name, width in zip(WORD_COLUMNS, WORD_DAYS, strict=True):
            inside = (back >= low) & (back < low + width)
            hit |= ibis.ifelse(inside, (cohort[name] >> (back - low)) & 1, 0).fill_null(0) == 1
            low += width
        found[f"d{n}_bits"] = cohort.person_id.count(where=due[n] & hit)
    counts = cohort.aggregate(**also, **base, **found)
    # Days N outside the bit sets are looked up (none when every new user is recent enough).
    since = top - cohort.first_day
    looked = _looked_up(fr, cohort.filter((since - min(days) >= DAYS) | (since - max(days) < 0)), days, True)
    both = counts.cross_join(looked)
    return [
        both.select(*also, *base, **{f"d{n}_back": both[f"d{n}_bits"] + both[f"d{n}_back"] for n in days})
    ]


def _looked_up(fr: Frame, cohort: ir.Table, days: tuple[int, ...], bitmaps: bool) -> ir.Table:
    """d{N}_back of `cohort` from the events: a semi-join of (person, first day + N) with the active
    events' (person, day); with `bitmaps`, only for the days N outside those of `day_words`."""
    # Coming back counts in any channel or campaign (the filters chose who was acquired): no distinct
    # over all person-days. (Measured at 10M events: cheaper than joining the events with the cohort
    # on the person and keeping the days N after, which carries every event of the cohort out of the
    # join.)
    ev = fr.in_segment(fr.table("events"))
    back_ev = ev.filter(~passive(fr, ev.event))
    # The cohort started in the period: only the days N after it can match (a filter in the scan).
    f = fr.filters
    if f.start:
        back_ev = back_ev.filter(back_ev.ts >= fr.utc_bound(f.start + timedelta(days=min(days))))
    if f.end:
        back_ev = back_ev.filter(back_ev.ts < fr.utc_bound(f.end + timedelta(days=max(days) + 1)))
    back_days = back_ev.select("person_id", day=fr.day_of(back_ev.ts))
    targets = ibis.union(*(cohort.mutate(n=ibis.literal(n, "int64")) for n in days))
    due = targets.first_day + targets.n <= targets.as_of
    if bitmaps:
        back = targets.ref_day + top_shift(fr) - (targets.first_day + targets.n)
        due &= (back < 0) | (back >= DAYS)
    targets = targets.filter(due)
    came = targets.semi_join(
        back_days,
        [targets.person_id == back_days.person_id, targets.first_day + targets.n == back_days.day],
    )
    return came.aggregate(**{f"d{n}_back": came.person_id.count(where=came.n == n) for n in days})
