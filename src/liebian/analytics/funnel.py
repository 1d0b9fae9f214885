"""The fission funnel (裂变漏斗): ordered steps within a conversion window, written join-style.

Semantics (docs/metrics.md, "Funnel"):
- A person enters at their FIRST step-1 event inside the period (and matching the channel/campaign
  filters); the conversion window starts there.
- Each later step is the earliest matching event at or after the previous step's time and no later
  than entry + window; later steps may fall after the period end and in any channel/campaign (OneID
  joins the journey across channels). Equal timestamps count as in order; when two consecutive steps
  are the same event name the later one must be strictly later, so one event never fills two steps.
- Repeating a step does not count twice: each person counts once per step.
- A breakdown takes the value of the entry event (first step-1 event); several entry events at the
  same instant resolve to the smallest value.
- Conversion (the virtual step `order_paid`) is a paid order; refunded or cancelled orders do not count.

Written join-style (faster than window functions on DuckDB): level k = the persons who reached step
k, built from level k-1 by an inner join with step k's rows and a group-by on the person, so each
join only carries the persons still in the funnel. Every level is aggregated and the per-step rows
are one UNION, executed as one query (DuckDB computes each shared level once).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from liebian.analytics.common import AnalyticsError, Frame, clean, ratio, records
from liebian.lazy import lazy_import
from liebian.scalars import as_int

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ir = lazy_import("ibis.expr.types")
    pd = lazy_import("pandas")

ORDER_PAID = "order_paid"
NONE_LABEL = "(none)"
BREAKDOWNS = ("channel", "campaign", "segment")
# Builds the per-step levels (fr, steps, window, breakdown) → tables; `_chain` is the ordered funnel.
ChainBuilder = Callable[["Frame", Sequence["Step"], timedelta, "str | None"], list["ir.Table"]]


@dataclass(frozen=True)
class Step:
    name: str
    event: str


DEFAULT_STEPS: tuple[Step, ...] = (
    Step("触达 reach", "exposure"),
    Step("兴趣 interest", "page_view"),
    Step("参与 participate", "join_campaign"),
    Step("转化 convert", ORDER_PAID),
)


def parse_steps(spec: str | Sequence[str] | None) -> tuple[Step, ...]:
    """Steps from 'exposure,page_view,...' or 'name=event,...'; None gives the default four."""
    if spec is None or spec == "" or spec == []:
        return DEFAULT_STEPS
    items = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    steps = []
    for i, item in enumerate(items, 1):
        if not item:
            raise AnalyticsError(f"steps: step {i} is empty")
        name, _, event = item.rpartition("=")
        steps.append(Step(name.strip() or event.strip(), event.strip()))
    if len(steps) < 2:
        raise AnalyticsError("steps: a funnel needs at least 2 steps")
    return tuple(steps)


@dataclass
class FunnelResult:
    table: list[dict[str, Any]]  # one row per (breakdown value,) step
    median_seconds_to_convert: dict[str, float | None]
    window_days: float
    breakdown: str | None

    def rows(self) -> list[dict]:
        return [{k: clean(v) for k, v in r.items()} for r in self.table]

    @property
    def steps(self) -> pd.DataFrame:
        """The rows as a frame (pandas is imported for it: the CLI and the API use `rows()`)."""
        return pd.DataFrame(self.table)


def _step_rows(fr: Frame, step: Step, first: bool) -> ir.Table:
    """person_id, ts (and channel, campaign_id for the entry step) of one step's rows."""
    if step.event == ORDER_PAID:
        t = fr.table("orders")
        t = t.filter(t.status == "paid")
    else:
        t = fr.table("events")
        t = t.filter(t.event == step.event)
    if first:
        return fr.in_period(fr.with_dims(t)).select("person_id", "ts", "channel", "campaign_id")
    return fr.in_segment(t).select("person_id", "ts")


def levels(
    fr: Frame,
    steps: Sequence[Step],
    window: timedelta,
    breakdown: str | None = None,
    build: ChainBuilder | None = None,
) -> list[ir.Table]:
    """One table per step: person_id, [bd], t0 (entry), prev_t (step k-1), cur_t (step k).
    `build` replaces the ordered chain (analytics/insights_funnel.py: strict, any order, exclusions)."""
    out = (build or _chain)(fr, steps, window, breakdown)
    out[0] = out[0].mutate(prev_t=out[0].t0, cur_t=out[0].t0)
    return out


def _chain(
    fr: Frame, steps: Sequence[Step], window: timedelta, breakdown: str | None = None
) -> list[ir.Table]:
    """levels(), with the entry level as person_id, [bd], t0 only (its join carries less)."""
    if breakdown not in (None, "channel", "campaign"):
        raise AnalyticsError(f"breakdown must be one of {', '.join(BREAKDOWNS)}; got {breakdown!r}")
    entry = _step_rows(fr, steps[0], first=True)
    people = entry.group_by("person_id").aggregate(t0=entry.ts.min())
    if breakdown:
        col = "channel" if breakdown == "channel" else "campaign_id"
        hit = entry.join(people, [entry.person_id == people.person_id, entry.ts == people.t0])
        label = hit.group_by(hit.person_id).aggregate(bd=hit[col].min())
        people = people.join(label, "person_id").mutate(bd=lambda t: t.bd.fill_null(NONE_LABEL))
    out = [people]
    f = fr.filters
    end_bound = fr.utc_bound(f.end + timedelta(days=1)) + window if f.end else None
    span = ibis.interval(seconds=int(window.total_seconds()))
    for k in range(1, len(steps)):
        x = _step_rows(fr, steps[k], first=False)
        if f.start:  # later steps cannot precede the period
            x = x.filter(x.ts >= fr.utc_bound(f.start))
        if end_bound:
            x = x.filter(x.ts <= end_bound)
        cur = people.t0 if k == 1 else people.cur_t
        after = x.ts > cur if steps[k].event == steps[k - 1].event else x.ts >= cur
        j = people.join(x, [people.person_id == x.person_id, after, x.ts <= people.t0 + span])
        carried = {"bd": j.bd.max()} if breakdown else {}
        # prev_t/t0 are one value per person: max() carries them without widening the group key.
        people = j.group_by(person_id=j.person_id).aggregate(
            **carried, t0=j.t0.max(), prev_t=(j.t0 if k == 1 else j.cur_t).max(), cur_t=j.ts.min()
        )
        out.append(people)
    return out


def funnel(
    fr: Frame,
    steps: Sequence[Step] = DEFAULT_STEPS,
    window: timedelta = timedelta(days=14),
    breakdown: str | None = None,
    segments: Mapping[str, Sequence[int]] | None = None,
    build: ChainBuilder | None = None,
) -> FunnelResult:
    """Per step: persons, conversion from the previous step and from the start, drop-off, and the
    median seconds from the previous step and from entry. `breakdown="segment"` needs `segments`
    (name → person ids) and runs the funnel once per segment."""
    steps = tuple(steps)
    if len(steps) < 2:
        raise AnalyticsError("steps: a funnel needs at least 2 steps")
    if window <= timedelta(0):
        raise AnalyticsError("window: the conversion window must be positive")
    if breakdown == "segment":
        if not segments:
            raise AnalyticsError("breakdown=segment needs segments (name → person ids)")
        table = []
        for name, ids in segments.items():
            sub = Frame(fr.backend, replace(fr.filters, segment=frozenset(ids)), fr.config)
            table += [{"breakdown": name, **row} for row in _aggregate(sub, steps, window, None, build)]
    else:
        table = _aggregate(fr, steps, window, breakdown, build)
    last = [row for row in table if row["step"] == len(steps)]
    if not last:  # a breakdown over no entries
        medians = {}
    elif "breakdown" in last[0]:
        medians = {str(row["breakdown"]): clean(row["median_seconds_from_start"]) for row in last}
    else:
        medians = {"all": clean(last[0]["median_seconds_from_start"])}
    return FunnelResult(table, medians, window.total_seconds() / 86400, breakdown)


def _step_counts(
    fr: Frame,
    steps: Sequence[Step],
    window: timedelta,
    breakdown: str | None,
    build: ChainBuilder | None,
    group: list[str],
) -> ir.Table:
    """One row per step (and breakdown value): persons and the median seconds from the previous step
    and from entry, every level aggregated in one UNION (executed as one query)."""
    parts = []
    for k, t in enumerate((build or _chain)(fr, steps, window, breakdown)):
        metrics = {"persons": t.person_id.count()}
        if k:
            metrics["median_seconds_from_prev"] = (
                (fr.seconds(t.cur_t) - fr.seconds(t.prev_t)).median().cast("float64")
            )
            metrics["median_seconds_from_start"] = (
                (fr.seconds(t.cur_t) - fr.seconds(t.t0)).median().cast("float64")
            )
        else:
            metrics["median_seconds_from_prev"] = ibis.literal(None, "float64")
            metrics["median_seconds_from_start"] = ibis.literal(None, "float64")
        agg = t.group_by(group).aggregate(**metrics) if group else t.aggregate(**metrics)
        parts.append(agg.mutate(step=ibis.literal(k + 1, "int64")))
    return ibis.union(*parts)


def _aggregate(
    fr: Frame,
    steps: Sequence[Step],
    window: timedelta,
    breakdown: str | None,
    build: ChainBuilder | None = None,
) -> list[dict[str, Any]]:
    group = ["bd"] if breakdown else []

    def query() -> ir.Table:
        return _step_counts(fr, steps, window, breakdown, build, group)

    # the plain ordered funnel's SQL is kept per shape (on disk too: a CLI command runs it without
    # Ibis or pandas); a mode's builder is a new closure per call
    counts = (
        fr.execute_cached_rows(("funnel", steps, window, breakdown), query)
        if build is None
        else records(fr.execute(query()))
    )
    labels = sorted({r["bd"] for r in counts}) if breakdown else [None]
    out: list[dict[str, Any]] = []
    for label in labels:
        by_step = {as_int(r["step"]): r for r in counts if not breakdown or r["bd"] == label}
        first = as_int(by_step[1]["persons"]) if 1 in by_step else 0
        prev = first  # read from step 2 on, after each step sets it
        for k, step in enumerate(steps, 1):
            r = by_step.get(k)
            persons = as_int(r["persons"]) if r is not None else 0
            row = {"breakdown": label} if breakdown else {}
            row.update(
                step=k,
                name=step.name,
                event=step.event,
                persons=persons,
                conversion_from_prev=None if k == 1 else ratio(persons, prev),
                conversion_from_start=ratio(persons, first),
                dropped=0 if k == 1 else prev - persons,
                drop_off_rate=None if k == 1 else ratio(prev - persons, prev),
                median_seconds_from_prev=clean(r["median_seconds_from_prev"])
                if r is not None and k > 1
                else None,
                median_seconds_from_start=clean(r["median_seconds_from_start"])
                if r is not None and k > 1
                else None,
            )
            out.append(row)
            prev = persons
    return out


def dropped_persons(
    fr: Frame,
    at_step: int,
    steps: Sequence[Step] = DEFAULT_STEPS,
    window: timedelta = timedelta(days=14),
    build: ChainBuilder | None = None,
) -> pd.DataFrame:
    """Persons who reached step `at_step - 1` but not step `at_step` (1-based): person_id, the time
    they reached the last step they made, and their entry channel and campaign (for follow-up)."""
    steps = tuple(steps)
    if not 2 <= at_step <= len(steps):
        raise AnalyticsError(f"at_step must be between 2 and {len(steps)}; got {at_step}")
    lv = levels(fr, steps, window, build=build)
    before, after = lv[at_step - 2], lv[at_step - 1]
    lost = before.anti_join(after, "person_id")
    lost = lost.select("person_id", "t0", last_step_ts=lost.cur_t)
    df = fr.execute(lost.order_by("person_id"))
    return df.rename(columns={"t0": "entered_at"}).reset_index(drop=True)
