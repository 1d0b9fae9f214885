"""Funnel order modes and exclusion steps (analytics/insights_funnel.py) against plain Python."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from liebian.analytics import service
from liebian.analytics.common import AnalyticsError
from liebian.analytics.funnel import ORDER_PAID
from liebian.analytics.insights_funnel import Exclusion

P = service.make_filters("2026-03-01", "2026-03-07")
START, END = date(2026, 3, 1), date(2026, 3, 7)


def persons(result) -> list[int]:
    return [s["persons"] for s in result["steps"]]


def _step_rows(rows, event):
    if event == ORDER_PAID:
        return [(o["person_id"], o["local"], o["channel"]) for o in rows.orders if o["status"] == "paid"]
    return [(e["person_id"], e["local"], e["channel"]) for e in rows.events if e["event"] == event]


def ref_ordered(rows, steps, window, strict=False, exclusions=()):
    """Per person, the time of each step reached (ordered, optionally strict), then exclusions."""
    entry = [r for r in _step_rows(rows, steps[0]) if START <= r[1].date() <= END]
    t0: dict = {}
    for p, t, _ in entry:
        t0[p] = min(t0.get(p, t), t)
    times = {p: [t] for p, t in t0.items()}
    all_events: dict = {}
    for e in rows.events:
        all_events.setdefault(e["person_id"], []).append(e["local"])
    for k in range(1, len(steps)):
        best: dict = {}
        for p, t, _ in _step_rows(rows, steps[k]):
            if p not in times or len(times[p]) != k or t.date() < START:
                continue
            prev = times[p][-1]
            later = t > prev if steps[k] == steps[k - 1] else t >= prev
            if later and t <= t0[p] + window:
                best[p] = min(best.get(p, t), t)
        for p, t in best.items():
            prev = times[p][-1]
            if strict and any(prev < u < t for u in all_events.get(p, ())):
                continue
            times[p].append(t)
    gone = set()
    for event, a, b in exclusions:
        hits = [(p, t) for p, t, _ in _step_rows(rows, event)]
        for p, ts in times.items():
            if len(ts) < a:
                continue
            until = ts[b - 1] if len(ts) >= b else t0[p] + window
            if any(q == p and ts[a - 1] < t < until for q, t in hits):
                gone.add(p)
    return [sum(1 for p, ts in times.items() if len(ts) > k and p not in gone) for k in range(len(steps))]


def ref_unordered(rows, steps, window):
    entry = [r for s in steps for r in _step_rows(rows, s) if START <= r[1].date() <= END]
    t0: dict = {}
    for p, t, _ in entry:
        t0[p] = min(t0.get(p, t), t)
    done = {
        p: sum(
            1
            for s in steps
            if any(q == p and t0[p] <= t <= t0[p] + window for q, t, _ in _step_rows(rows, s))
        )
        for p in t0
    }
    return [sum(1 for n in done.values() if n > k) for k in range(len(steps))]


def test_modes_and_exclusions_match_plain_python_on_random_data(random_data, load, engine):
    rows = random_data
    load(engine)
    steps = ["exposure", "page_view", "join_campaign", ORDER_PAID]
    spec = ",".join(steps)
    for days in (1, 4):
        window = timedelta(days=days)
        ordered = service.run_funnel(P, spec, days, engine=engine)
        assert persons(ordered) == ref_ordered(rows, steps, window)
        strict = service.run_funnel(P, spec, days, engine=engine, mode="strict")
        assert persons(strict) == ref_ordered(rows, steps, window, strict=True)
        unordered = service.run_funnel(P, spec, days, engine=engine, mode="unordered")
        assert persons(unordered) == ref_unordered(rows, steps, window)
        excl = (Exclusion("app_open", 1, 3), Exclusion("page_view", 3, 4))
        got = service.run_funnel(P, spec, days, engine=engine, exclusions=excl)
        want = ref_ordered(rows, steps, window, exclusions=[(x.event, x.from_step, x.to_step) for x in excl])
        assert persons(got) == want
        got = service.run_funnel(P, spec, days, engine=engine, mode="strict", exclusions=excl[:1])
        assert persons(got) == ref_ordered(rows, steps, window, strict=True, exclusions=[("app_open", 1, 3)])
    # the data tell the modes apart (else the test would prove nothing)
    w = timedelta(days=4)
    assert ref_ordered(rows, steps, w, strict=True) != ref_ordered(rows, steps, w)
    assert ref_unordered(rows, steps, w) != ref_ordered(rows, steps, w)
    assert ref_ordered(rows, steps, w, exclusions=[("app_open", 1, 3)]) != ref_ordered(rows, steps, w)


def test_strict_needs_no_event_between_steps(rows, load):
    rows.event(1, "2026-03-01 10:00:00", "exposure")
    rows.event(1, "2026-03-01 10:01:00", "app_open")  # interrupts 1
    rows.event(1, "2026-03-01 10:02:00", "page_view")
    rows.event(2, "2026-03-01 10:00:00", "exposure")
    rows.event(2, "2026-03-01 10:00:00", "app_open")  # same instant as the step: no interruption
    rows.event(2, "2026-03-01 10:02:00", "page_view")
    load()
    assert persons(service.run_funnel(P, "exposure,page_view", 1)) == [2, 2]
    assert persons(service.run_funnel(P, "exposure,page_view", 1, mode="strict")) == [2, 1]
    dropped = service.run_dropped(P, 2, "exposure,page_view", 1, mode="strict")
    assert [r["person_id"] for r in dropped] == [1]


def test_unordered_counts_different_steps_in_any_order(rows, load):
    rows.event(1, "2026-03-02 10:00:00", "page_view")
    rows.event(1, "2026-03-02 11:00:00", "exposure")
    rows.order(1, "2026-03-02 12:00:00", 100)
    rows.event(2, "2026-03-02 10:00:00", "exposure")
    load()
    got = service.run_funnel(P, "exposure,page_view,order_paid", 1, mode="unordered", breakdown="channel")
    assert persons(got) == [2, 1, 1]
    assert got["steps"][1]["median_seconds_from_prev"] == 3600


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"mode": "sideways"}, "mode"),
        ({"mode": "unordered", "steps": "exposure,exposure"}, "steps"),
        ({"mode": "unordered", "exclusions": (Exclusion("x", 1, 2),)}, "exclusions"),
        ({"exclusions": (Exclusion("x", 2, 2),)}, "exclusions"),
        ({"exclusions": (Exclusion("x", 1, 9),)}, "exclusions"),
        ({"exclusions": (Exclusion("exposure", 1, 2),)}, "exclusions"),
        ({"exclusions": tuple(Exclusion("x", 1, 2) for _ in range(11))}, "exclusions"),
    ],
)
def test_bad_modes_and_exclusions_name_the_field(sqlite_store, kwargs, field):
    steps = kwargs.pop("steps", "exposure,page_view")
    with pytest.raises(AnalyticsError) as info:
        service.run_funnel(P, steps, 1, **kwargs)
    assert info.value.field == field
