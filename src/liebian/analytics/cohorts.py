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
        out: list[dict] = []
        if self.table.empty:  # no cohort in the period (an empty frame may lack the columns)
            return out
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
    members, sizes, as_of = _cohorts(fr, unit_of, cohort_by, periods, cohorts)
    ev = fr.table("events")
    act = ev.filter(~ev.event.isin(list(fr.ev.passive)))
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
    cells = []
    for r in df.sort_values("cohort").to_dict(orient="records"):
        cohort, size = int(r["cohort"]), int(r["size"])
        for k in range(periods):
            n = size if k == 0 else int(clean(r.get(f"k{k}")) or 0)
            complete = cohort + k <= asof
            cells.append(
                {"cohort": label(unit, cohort), "size": size, "offset": k,
                 "persons": n if complete else None, "rate": n / size if complete else None}
            )  # fmt: skip
    return CohortResult(
        unit, cohort_by, pd.DataFrame(cells, columns=["cohort", "size", "offset", "persons", "rate"])
    )


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
