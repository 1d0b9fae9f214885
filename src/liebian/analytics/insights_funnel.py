"""Funnel order modes and exclusion steps for the insight builder, over the ordered funnel (funnel.py).

Semantics (PostHog's funnel modes, on this project's funnel rules):
- `ordered` (default): funnel.py's funnel — each step at or after the previous one, within the window.
- `strict`: as ordered, and the person did no other event (events table, any name or channel) strictly
  between two consecutive steps; events at the same instant as a step do not interrupt it. A person
  enters at their first step-1 event, as in the ordered funnel; a later restart does not count.
- `unordered` (any order): a person enters at their first event of ANY step inside the period (and
  the filters); step k counts persons who did at least k different steps within entry + window; the
  times from the previous step are between the (k-1)-th and k-th different steps they reached.
  Each step must be a different event.
- Exclusion steps (ordered and strict only): a person who did the exclusion event after reaching
  step `from_step` and before reaching step `to_step` (or before entry + window, if they never did)
  leaves the funnel entirely, step 1 included.

Each mode is a `ChainBuilder` that funnel.funnel / funnel.dropped_persons take as `build`: the same
aggregation, breakdowns and drill-down serve every mode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from liebian.analytics import funnel as funnel_mod
from liebian.analytics.common import AnalyticsError, Frame
from liebian.analytics.funnel import NONE_LABEL, ChainBuilder, Step
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import ibis
    import ibis.expr.types as ir
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    ibis = lazy_import("ibis")
    ir = lazy_import("ibis.expr.types")

MODES = ("ordered", "strict", "unordered")
MAX_EXCLUSIONS = 10


@dataclass(frozen=True)
class Exclusion:
    """Persons who did `event` between reaching step `from_step` and step `to_step` (1-based) leave."""

    event: str
    from_step: int
    to_step: int


def parse_exclusions(items: Sequence[str]) -> tuple[Exclusion, ...]:
    """Exclusions from `event:from_step:to_step` texts (the API's query form)."""
    out = []
    for i, item in enumerate(items, 1):
        event, _, rest = item.rpartition(":")
        event, _, first = event.rpartition(":")
        try:
            out.append(Exclusion(event.strip(), int(first), int(rest)))
        except ValueError:
            raise AnalyticsError(
                f"exclusion: item {i} ({item[:80]!r}) is not event:from_step:to_step", field="exclusion"
            ) from None
        if not event.strip():
            raise AnalyticsError(f"exclusion: item {i} names no event", field="exclusion")
    return tuple(out)


def check(steps: Sequence[Step], mode: str, exclusions: Sequence[Exclusion]) -> None:
    """The builder's rules on a mode and its exclusions, each with the field at fault."""
    if mode not in MODES:
        raise AnalyticsError(f"mode must be one of {', '.join(MODES)}; got {mode!r}", field="mode")
    if mode == "unordered" and len({s.event for s in steps}) < len(steps):
        raise AnalyticsError("steps: in any order, each step must be a different event", field="steps")
    if exclusions and mode == "unordered":
        raise AnalyticsError(
            "exclusions: exclusion steps need an ordered or strict funnel", field="exclusions"
        )
    if len(exclusions) > MAX_EXCLUSIONS:
        raise AnalyticsError(
            f"exclusions: at most {MAX_EXCLUSIONS}; got {len(exclusions)}", field="exclusions"
        )
    for i, x in enumerate(exclusions, 1):
        if not 1 <= x.from_step < x.to_step <= len(steps):
            raise AnalyticsError(
                f"exclusions: item {i} must run from a step to a later one within 1…{len(steps)}; "
                f"got {x.from_step}→{x.to_step}",
                field="exclusions",
            )
        if x.event in (steps[x.from_step - 1].event, steps[x.to_step - 1].event):
            raise AnalyticsError(
                f"exclusions: item {i} ({x.event}) is one of the steps it lies between", field="exclusions"
            )


def builder(
    steps: Sequence[Step], mode: str = "ordered", exclusions: Sequence[Exclusion] = ()
) -> ChainBuilder | None:
    """The chain builder of a mode with exclusions (None: the plain ordered funnel)."""
    check(steps, mode, exclusions)
    if mode == "ordered" and not exclusions:
        return None
    if mode == "unordered":
        return _unordered

    def build(fr: Frame, steps: Sequence[Step], window: timedelta, breakdown: str | None) -> list[ir.Table]:
        out = funnel_mod._chain(fr, steps, window, breakdown)
        if mode == "strict":
            out = _strict(fr, out)
        return _exclude(fr, out, exclusions, window) if exclusions else out

    return build


def _all_events(fr: Frame) -> ir.Table:
    t = fr.table("events")
    return t.select("person_id", "ts")


def _strict(fr: Frame, out: list[ir.Table]) -> list[ir.Table]:
    """Ordered levels without the persons interrupted by another event between two steps: the ordered
    chain already took each step's earliest event, and a later one would have the same interruption."""
    events = _all_events(fr)
    broken = None
    for k in range(1, len(out)):
        lv = out[k]
        hit = lv.join(
            events,
            [lv.person_id == events.person_id, events.ts > lv.prev_t, events.ts < lv.cur_t],
        ).select(person_id=lv.person_id)
        broken = hit if broken is None else ibis.union(broken, hit, distinct=True)
        out[k] = lv.anti_join(broken, "person_id")
    return out


def _exclude(
    fr: Frame, out: list[ir.Table], exclusions: Sequence[Exclusion], window: timedelta
) -> list[ir.Table]:
    span = ibis.interval(seconds=int(window.total_seconds()))
    gone = None
    for x in exclusions:
        rows = funnel_mod._step_rows(fr, Step(x.event, x.event), first=False).view()
        start = out[x.from_step - 1]
        start_t = start.t0 if x.from_step == 1 else start.cur_t
        reached = out[x.to_step - 1].select(person_id="person_id", to_t="cur_t")
        base = start.select(person_id=start.person_id, from_t=start_t, t0=start.t0)
        base = (
            base.left_join(reached, "person_id")
            .select("person_id", "from_t", until=lambda t: t.to_t.fill_null(t.t0 + span))
            .view()
        )  # a table of its own: the join below adds a relation, not a link to this join
        hit = base.join(
            rows, [base.person_id == rows.person_id, rows.ts > base.from_t, rows.ts < base.until]
        ).select(person_id=base.person_id)
        gone = hit if gone is None else ibis.union(gone, hit, distinct=True)
    return [lv.anti_join(gone, "person_id") for lv in out]


def _unordered(fr: Frame, steps: Sequence[Step], window: timedelta, breakdown: str | None) -> list[ir.Table]:
    if breakdown not in (None, "channel", "campaign"):
        raise AnalyticsError(f"breakdown must be channel or campaign; got {breakdown!r}", field="breakdown")
    entries = ibis.union(*(funnel_mod._step_rows(fr, s, first=True) for s in steps))
    people = entries.group_by("person_id").aggregate(t0=entries.ts.min())
    if breakdown:
        col = "channel" if breakdown == "channel" else "campaign_id"
        hit = entries.join(people, [entries.person_id == people.person_id, entries.ts == people.t0])
        label = hit.group_by(hit.person_id).aggregate(bd=hit[col].min())
        people = people.join(label, "person_id").mutate(bd=lambda t: t.bd.fill_null(NONE_LABEL))
    span = ibis.interval(seconds=int(window.total_seconds()))
    start = fr.utc_bound(fr.filters.start) if fr.filters.start else None
    firsts = []
    for j, step in enumerate(steps):
        x = funnel_mod._step_rows(fr, step, first=False)
        if start is not None:
            x = x.filter(x.ts >= start)
        j_rows = people.join(
            x, [people.person_id == x.person_id, x.ts >= people.t0, x.ts <= people.t0 + span]
        )
        firsts.append(
            j_rows.group_by(person_id=j_rows.person_id).aggregate(ts=j_rows.ts.min(), step=ibis.literal(j))
        )
    done = ibis.union(*firsts)
    # the k-th different step a person reached, by time (ties in any order: their times are equal)
    rank = ibis.row_number().over(group_by=done.person_id, order_by=[done.ts, done.step])
    ranked = done.mutate(rank=rank)
    out: list[ir.Table] = [people]
    for k in range(1, len(steps)):
        cur = ranked.filter(ranked.rank == k).select(person_id="person_id", cur_t="ts")
        prev = ranked.filter(ranked.rank == k - 1).select(person_id="person_id", prev_t="ts")
        lv = people.join(cur, "person_id").join(prev, "person_id")
        out.append(lv.select("person_id", *(["bd"] if breakdown else []), "t0", "prev_t", "cur_t"))
    return out
