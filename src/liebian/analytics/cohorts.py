"""Cohorts: the retention matrix and revenue per cohort (observed LTV curves).

A cohort is the people who started in the same day/week/month (display zone): by their first event
(filtered by channel/campaign/segment), or by their acquisition through referral (first referral
edge naming them as invitee). Coming back = any non-passive event in any channel in a later
period; spending = paid orders in any channel. Period 0 is the cohort itself (100 %). Periods that
have not fully happened yet (after the last data period) are None, not 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis.expr.types as ir
import pandas as pd

from liebian.analytics.common import AnalyticsError, Frame, clean

UNITS = ("day", "week", "month")
COHORT_BY = ("first_event", "referral")


@dataclass
class CohortResult:
    unit: str
    cohort_by: str
    table: pd.DataFrame  # long form: cohort, size, offset, value(s)

    def rows(self) -> list[dict]:
        return [{k: clean(v) for k, v in r.items()} for r in self.table.to_dict(orient="records")]

    def matrix(self, value: str) -> list[dict]:
        """Wide form for display: one row per cohort, one column per period offset."""
        out = []
        for (label, size), sub in self.table.groupby(["cohort", "size"], sort=True):
            row = {"cohort": label, "size": int(size)}
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


def _person_periods(fr: Frame, unit_of) -> ir.Table:
    """One pass over all events: person_id, p (period), first_ts in it, active (a non-passive event)."""
    ev = fr.table("events")
    return ev.group_by("person_id", p=unit_of(ev.ts)).aggregate(
        first_ts=ev.ts.min(), active=(~ev.event.isin(list(fr.ev.passive))).any()
    )


def _cohorts(fr: Frame, g: ir.Table, unit_of, cohort_by: str, periods: int, cohorts: int):
    if periods < 1 or cohorts < 1:
        raise AnalyticsError("periods and cohorts must be at least 1")
    f = fr.filters
    if cohort_by == "first_event" and not (f.channels or f.campaigns):
        # Same answer as cohort_members(), read from the one pass instead of a second scan.
        start = g.group_by("person_id").aggregate(start_ts=g.first_ts.min())
        members = fr.in_segment(fr.in_period(start, "start_ts"))
    else:
        members = cohort_members(fr, cohort_by)
    members = members.mutate(cohort=unit_of(members.start_ts))
    sizes = members.group_by("cohort").aggregate(size=members.person_id.count())
    sizes = sizes.order_by(sizes.cohort.desc()).limit(cohorts)  # the most recent cohorts
    members = members.semi_join(sizes, "cohort")
    as_of = g.aggregate(as_of=g.p.max())
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


def _finish(
    df: pd.DataFrame, sizes: pd.DataFrame, as_of: int, unit: str, periods: int, value_cols
) -> pd.DataFrame:
    rows = []
    lookup = {(int(r.cohort), int(r.offset)): r for r in df.itertuples()}
    for s in sizes.sort_values("cohort").itertuples():
        cohort, size = int(s.cohort), int(s.size)
        for k in range(periods):
            complete = cohort + k <= as_of
            r = lookup.get((cohort, k))
            row = {"cohort": label(unit, cohort), "size": size, "offset": k}
            for col, fn in value_cols.items():
                row[col] = fn(r, size, k) if complete else None
            rows.append(row)
    return pd.DataFrame(rows, columns=["cohort", "size", "offset", *value_cols])


def retention(
    fr: Frame, unit: str = "week", cohort_by: str = "first_event", periods: int = 12, cohorts: int = 12
) -> CohortResult:
    """Retention matrix: for each cohort and offset k, persons active in period cohort+k / cohort size."""
    unit_of = _unit_fn(fr, unit)
    g = _person_periods(fr, unit_of)
    members, sizes, as_of = _cohorts(fr, g, unit_of, cohort_by, periods, cohorts)
    act = g.filter(g.active)
    j = members.join(
        act, [members.person_id == act.person_id, act.p > members.cohort, act.p < members.cohort + periods]
    )
    counts = j.group_by(j.cohort, offset=j.p - j.cohort).aggregate(persons=j.person_id.count())
    df, size_df, asof = _fetch(fr, sizes, counts, as_of)

    def persons(r, size, k):
        return size if k == 0 else (int(r.persons) if r is not None else 0)

    table = _finish(
        df, size_df, asof, unit, periods,
        {"persons": persons, "rate": lambda r, size, k: persons(r, size, k) / size},
    )  # fmt: skip
    return CohortResult(unit, cohort_by, table)


def revenue(
    fr: Frame, unit: str = "month", cohort_by: str = "first_event", periods: int = 12, cohorts: int = 12
) -> CohortResult:
    """Revenue per cohort: paid revenue (fen) in period cohort+k, cumulative, and per cohort member
    (the observed LTV curve). Orders before a person's cohort start are not counted."""
    unit_of = _unit_fn(fr, unit)
    g = _person_periods(fr, unit_of)
    members, sizes, as_of = _cohorts(fr, g, unit_of, cohort_by, periods, cohorts)
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
    lookup = {(int(r.cohort), int(r.offset)): r for r in df.itertuples()}
    for s in size_df.sort_values("cohort").itertuples():
        cohort, size = int(s.cohort), int(s.size)
        total = 0
        for k in range(periods):
            complete = cohort + k <= asof
            r = lookup.get((cohort, k))
            rev = int(r.revenue_fen) if r is not None else 0
            total += rev
            rows.append(
                {
                    "cohort": label(unit, cohort),
                    "size": size,
                    "offset": k,
                    "revenue_fen": rev if complete else None,
                    "buyers": (int(r.buyers) if r is not None else 0) if complete else None,
                    "cumulative_revenue_fen": total if complete else None,
                    "ltv_fen": total / size if complete else None,
                }
            )
    return CohortResult(unit, cohort_by, pd.DataFrame(rows))
