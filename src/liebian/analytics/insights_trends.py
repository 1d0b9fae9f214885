"""Trends: how often chosen events happen per day/week/month (display zone), optionally by channel or
campaign — the insight builder's third kind, beside the funnel and retention.

Semantics: an event counts in the bucket of its local time when it lies inside the period and the
channel/campaign/segment filters; `order_paid` counts paid orders (refunded or cancelled ones do not,
as in the funnel). `count` is the number of events, `persons` the distinct persons who did it in the
bucket. Buckets without any event are listed with zeros between the first and the last bucket
(the period's, when it has both ends), so a chart's gaps are real zeros.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from liebian.analytics import cohorts
from liebian.analytics.common import AnalyticsError, Frame
from liebian.analytics.funnel import NONE_LABEL, ORDER_PAID
from liebian.lazy import lazy_import
from liebian.scalars import as_int

if TYPE_CHECKING:
    import ibis
else:
    ibis = lazy_import("ibis")

INTERVALS = cohorts.UNITS
MAX_BUCKETS = 1000


def _bucket_number(day: date, interval: str) -> int:
    """The bucket number of a local day, as Frame.day_of / week_of / month_of number them."""
    if interval == "month":
        return day.year * 12 + day.month - 1
    number = Frame.day_number(day)
    return number if interval == "day" else (number + 3) // 7


def trends(
    fr: Frame, events: Sequence[str], interval: str = "day", breakdown: str | None = None
) -> dict[str, Any]:
    """{"interval", "breakdown", "buckets": [label…], "series": [{event, breakdown, counts, persons}],
    "rows": long form}."""
    events = list(dict.fromkeys(events))
    if not events:
        raise AnalyticsError("events: choose at least one event", field="events")
    if interval not in INTERVALS:
        raise AnalyticsError(
            f"interval must be one of {', '.join(INTERVALS)}; got {interval!r}", field="interval"
        )
    if breakdown not in (None, "channel", "campaign"):
        raise AnalyticsError(f"breakdown must be channel or campaign; got {breakdown!r}", field="breakdown")
    unit_of = cohorts._unit_fn(fr, interval)
    parts = []
    for name in events:
        if name == ORDER_PAID:
            t = fr.orders()
        else:
            t = fr.events()
            t = t.filter(t.event == name)
        col = {"channel": t.channel, "campaign": t.campaign_id}.get(breakdown or "")
        bd = col.fill_null(NONE_LABEL) if col is not None else ibis.literal(NONE_LABEL)
        parts.append(t.select(event=ibis.literal(name), bd=bd, bucket=unit_of(t.ts), person_id=t.person_id))
    rows = ibis.union(*parts)
    agg = rows.group_by(["event", "bd", "bucket"]).aggregate(
        count=rows.person_id.count(), persons=rows.person_id.nunique()
    )
    df = fr.execute(agg)
    f = fr.filters
    if f.start and f.end:
        first, last = _bucket_number(f.start, interval), _bucket_number(f.end, interval)
    elif not df.empty:
        first, last = as_int(df.bucket.min()), as_int(df.bucket.max())
    else:
        first, last = 0, -1
    if last - first + 1 > MAX_BUCKETS:
        raise AnalyticsError(
            f"interval: {last - first + 1} {interval}s is more than {MAX_BUCKETS}; choose a longer interval or a shorter period",
            field="interval",
        )
    numbers = list(range(first, last + 1))
    found: dict[tuple[str, str, int], tuple[int, int]] = {
        (str(r.event), str(r.bd), as_int(r.bucket)): (as_int(r.count), as_int(r.persons))
        for r in df.itertuples()
    }
    groups = sorted({(e, b) for e, b, _ in found}, key=lambda g: (events.index(g[0]), str(g[1])))
    if not breakdown:
        groups = [(e, NONE_LABEL) for e in events]
    series: list[dict[str, Any]] = [
        {
            "event": e,
            "breakdown": b if breakdown else None,
            "counts": [found.get((e, b, n), (0, 0))[0] for n in numbers],
            "persons": [found.get((e, b, n), (0, 0))[1] for n in numbers],
        }
        for e, b in groups
    ]
    labels = [cohorts.label(interval, n) for n in numbers]
    long = [
        {"bucket": labels[i], "event": s["event"], "breakdown": s["breakdown"], "count": s["counts"][i],
         "persons": s["persons"][i]}
        for s in series for i in range(len(numbers))
    ]  # fmt: skip
    return {"interval": interval, "breakdown": breakdown, "buckets": labels, "series": series, "rows": long}
