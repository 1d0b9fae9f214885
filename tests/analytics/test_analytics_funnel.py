"""Funnel semantics (docs/metrics.md "Funnel") and a plain-Python reference on random data."""

from __future__ import annotations

import statistics
from datetime import date, datetime, timedelta

import pytest

from liebian.analytics import service
from liebian.analytics.funnel import DEFAULT_STEPS, ORDER_PAID, parse_steps

P = service.make_filters("2026-03-01", "2026-03-07")
STEPS = "exposure,page_view,join_campaign,order_paid"


def persons(result) -> list[int]:
    return [s["persons"] for s in result["steps"]]


def test_default_steps_are_the_four_fission_nodes():
    assert [s.event for s in DEFAULT_STEPS] == ["exposure", "page_view", "join_campaign", ORDER_PAID]
    assert [s.name for s in parse_steps("看=page_view,buy=order_paid")] == ["看", "buy"]
    with pytest.raises(ValueError, match="at least 2 steps"):
        parse_steps("exposure")


def test_order_matters_and_equal_timestamps_count_as_in_order(rows, load):
    rows.event(1, "2026-03-01 10:00:00", "page_view")  # interest BEFORE reach: does not count
    rows.event(1, "2026-03-01 11:00:00", "exposure")
    rows.event(2, "2026-03-01 10:00:00", "exposure")
    rows.event(2, "2026-03-01 10:00:00", "page_view")  # same instant: in order
    load()
    assert persons(service.run_funnel(P, "exposure,page_view")) == [2, 1]


def test_conversion_window_is_measured_from_entry(rows, load):
    rows.event(1, "2026-03-01 10:00:00", "exposure")
    rows.event(1, "2026-03-02 10:00:00", "page_view")
    rows.event(1, "2026-03-03 10:00:01", "join_campaign")  # 2 days + 1 s after entry
    rows.event(2, "2026-03-01 10:00:00", "exposure")
    rows.event(2, "2026-03-03 10:00:00", "page_view")  # exactly at the window edge: inside
    load()
    assert persons(service.run_funnel(P, "exposure,page_view,join_campaign", window_days=2)) == [2, 2, 0]


def test_repeated_events_count_once_and_entry_is_the_first_step_one(rows, load):
    for minute in range(5):
        rows.event(1, f"2026-03-01 10:0{minute}:00", "exposure")
        rows.event(1, f"2026-03-01 11:0{minute}:00", "page_view")
    rows.event(2, "2026-03-01 09:00:00", "exposure")
    rows.event(2, "2026-03-06 09:00:00", "exposure")  # a second try, 5 days later …
    rows.event(2, "2026-03-06 09:10:00", "page_view")  # … converts, but outside 1 day from the FIRST entry
    load()
    result = service.run_funnel(P, "exposure,page_view", window_days=1)
    assert persons(result) == [2, 1]
    assert result["steps"][1]["median_seconds_from_prev"] == 3600  # first exposure 10:00 → first view 11:00


def test_same_event_twice_needs_two_events(rows, load):
    rows.event(1, "2026-03-01 10:00:00", "invite_share")
    rows.event(2, "2026-03-01 10:00:00", "invite_share")
    rows.event(2, "2026-03-01 10:00:00", "invite_share")  # equal time: not strictly later
    rows.event(3, "2026-03-01 10:00:00", "invite_share")
    rows.event(3, "2026-03-01 10:00:05", "invite_share")
    load()
    assert persons(service.run_funnel(P, "invite_share,invite_share")) == [3, 1]


def test_conversion_is_a_paid_order_in_any_channel(rows, load):
    rows.event(1, "2026-03-01 10:00:00", "join_campaign", channel="douyin")
    rows.order(1, "2026-03-01 12:00:00", 5000, status="refunded", channel="miniprogram")
    rows.event(2, "2026-03-01 10:00:00", "join_campaign", channel="douyin")
    rows.order(2, "2026-03-02 12:00:00", 5000, channel="miniprogram")  # OneID: same person, other channel
    rows.event(3, "2026-03-01 10:00:00", "join_campaign", channel="wecom")
    rows.order(3, "2026-03-01 11:00:00", 7000, status="cancelled")
    load()
    douyin = service.make_filters("2026-03-01", "2026-03-07", channels=["douyin"])
    result = service.run_funnel(douyin, "join_campaign,order_paid")
    assert persons(result) == [2, 1]
    assert result["median_seconds_to_convert"] == {"all": 26 * 3600}


def test_breakdown_takes_the_entry_event_and_ties_take_the_smallest(rows, load):
    rows.event(1, "2026-03-01 10:00:00", "exposure", channel="douyin")
    rows.event(1, "2026-03-01 12:00:00", "exposure", channel="xiaohongshu")  # later: ignored
    rows.event(1, "2026-03-01 13:00:00", "page_view", channel="xiaohongshu")
    rows.event(2, "2026-03-01 10:00:00", "exposure", channel="wecom")
    rows.event(2, "2026-03-01 10:00:00", "exposure", channel="app")  # same instant: "app" < "wecom"
    rows.event(3, "2026-03-01 10:00:00", "exposure", channel="wecom", campaign=None)
    load()
    by_channel = service.run_funnel(P, "exposure,page_view", breakdown="channel")
    got = {(s["breakdown"], s["step"]): s["persons"] for s in by_channel["steps"]}
    assert got == {
        ("app", 1): 1,
        ("app", 2): 0,
        ("douyin", 1): 1,
        ("douyin", 2): 1,
        ("wecom", 1): 1,
        ("wecom", 2): 0,
    }
    by_campaign = service.run_funnel(P, "exposure,page_view", breakdown="campaign")
    labels = {s["breakdown"] for s in by_campaign["steps"]}
    assert labels == {"c1", "(none)"}


def test_breakdown_by_segment_and_dropped_export(rows, load):
    for p in (1, 2, 3, 4):
        rows.event(p, "2026-03-01 10:00:00", "exposure")
    rows.event(1, "2026-03-01 10:30:00", "page_view")
    rows.event(3, "2026-03-01 10:30:00", "page_view")
    load()
    from liebian.analytics.common import Filters
    from liebian.analytics.funnel import Step, funnel
    from liebian.analytics.service import frame

    with frame(Filters(date(2026, 3, 1), date(2026, 3, 7))) as fr:
        result = funnel(fr, (Step("a", "exposure"), Step("b", "page_view")), breakdown="segment",
                        segments={"odd": [1, 3], "even": [2, 4]})  # fmt: skip
    got = {(r["breakdown"], r["step"]): r["persons"] for r in result.rows()}
    assert got == {("odd", 1): 2, ("odd", 2): 2, ("even", 1): 2, ("even", 2): 0}
    dropped = service.run_dropped(P, 2, "exposure,page_view")
    assert [d["person_id"] for d in dropped] == [2, 4]
    assert dropped[0]["last_step_ts"] == datetime(2026, 3, 1, 2, 0)  # naive UTC
    with pytest.raises(ValueError, match="at_step must be between 2 and 2"):
        service.run_dropped(P, 5, "exposure,page_view")


# --- reference: plain Python over random data -------------------------------------------------


def ref_funnel(rows, steps, start, end, window, channels=()):
    def step_rows(event):
        if event == ORDER_PAID:
            return [(o["person_id"], o["local"], o["channel"]) for o in rows.orders if o["status"] == "paid"]
        return [(e["person_id"], e["local"], e["channel"]) for e in rows.events if e["event"] == event]

    entry = [
        r for r in step_rows(steps[0]) if start <= r[1].date() <= end and (not channels or r[2] in channels)
    ]
    t0 = {}
    for p, t, _ in entry:
        t0[p] = min(t0.get(p, t), t)
    reached = [dict(t0)]
    prev = dict(t0)
    durations = []
    for k in range(1, len(steps)):
        cur = {}
        for p, t, _ in step_rows(steps[k]):
            if (
                p in prev
                and t <= t0[p] + window
                and (t > prev[p] if steps[k] == steps[k - 1] else t >= prev[p])
            ):
                cur[p] = min(cur.get(p, t), t)
        durations.append([(cur[p] - prev[p]).total_seconds() for p in cur])
        reached.append(cur)
        prev = cur
    total = [(prev[p] - t0[p]).total_seconds() for p in prev]
    return [len(r) for r in reached], durations, statistics.median(total) if total else None


def test_funnel_matches_reference_on_random_data(random_data, load, engine):
    rows = random_data
    load(engine)
    steps = STEPS.split(",")
    for window_days, channels in ((6, ()), (2, ("douyin",))):
        f = service.make_filters("2026-03-01", "2026-03-07", channels=channels)
        got = service.run_funnel(f, STEPS, window_days=window_days, engine=engine)
        counts, durations, median_total = ref_funnel(
            rows, steps, date(2026, 3, 1), date(2026, 3, 7), timedelta(days=window_days), channels
        )
        assert persons(got) == counts
        for k in range(1, len(steps)):
            want = statistics.median(durations[k - 1]) if durations[k - 1] else None
            assert got["steps"][k]["median_seconds_from_prev"] == want
            assert got["steps"][k]["dropped"] == counts[k - 1] - counts[k]
        assert got["median_seconds_to_convert"]["all"] == median_total
        if not channels:
            assert counts[0] > 20 and counts[-1] >= 2, counts  # the data exercise every step


def test_empty_warehouse_gives_zero_counts_not_errors(sqlite_store):  # an empty store: no reward cost
    plain = service.run_funnel(P)
    assert persons(plain) == [0, 0, 0, 0] and plain["median_seconds_to_convert"] == {"all": None}
    assert plain["steps"][1]["conversion_from_prev"] is None
    assert service.run_funnel(P, breakdown="channel")["steps"] == []
    assert service.run_kpis(P)["reached"] == 0
    assert service.run_retention(P)["matrix"] == []
    assert service.run_referral_tree(P)["summary"]["edges"] == 0
