"""Retention matrix and revenue per cohort against a plain-Python calculation; referral cohorts."""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import pytest

from liebian.analytics import service

PASSIVE = {"exposure"}


def unit_of(day: date, unit: str) -> date:
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def step(start: date, unit: str, k: int) -> date:
    if unit == "day":
        return start + timedelta(days=k)
    if unit == "week":
        return start + timedelta(weeks=k)
    m = start.month - 1 + k
    return date(start.year + m // 12, m % 12 + 1, 1)


def label(d: date, unit: str) -> str:
    return d.strftime("%Y-%m") if unit == "month" else d.isoformat()


def ref_retention(rows, unit, start, end, periods, cohorts=12, channels=()):
    first = {}
    for e in rows.events:
        if channels and e["channel"] not in channels:
            continue
        first[e["person_id"]] = min(first.get(e["person_id"], e["local"]), e["local"])
    members = {p: unit_of(t.date(), unit) for p, t in first.items() if start <= t.date() <= end}
    as_of = unit_of(max(e["local"] for e in rows.events).date(), unit)
    act = {
        (e["person_id"], unit_of(e["local"].date(), unit)) for e in rows.events if e["event"] not in PASSIVE
    }
    paid = [o for o in rows.orders if o["status"] == "paid"]
    keys = sorted(set(members.values()))[-cohorts:]
    out, money = {}, {}
    for c in keys:
        people = [p for p, cc in members.items() if cc == c]
        total = 0
        for k in range(periods):
            period = step(c, unit, k)
            if period > as_of:
                out[(label(c, unit), k)] = None
                money[(label(c, unit), k)] = None
                continue
            back = len(people) if k == 0 else sum(1 for p in people if (p, period) in act)
            out[(label(c, unit), k)] = back / len(people)
            total += sum(
                o["amount_fen"] for o in paid
                if o["person_id"] in people and unit_of(o["local"].date(), unit) == period and o["local"] >= first[o["person_id"]]
            )  # fmt: skip
            money[(label(c, unit), k)] = total / len(people)
    return out, money


def test_retention_and_ltv_match_reference(random_data, load, engine):
    load(engine)
    f = service.make_filters("2026-02-27", "2026-03-09")
    # (Spark is slow to plan these: the day matrix is compared across engines in test_analytics_interfaces)
    for unit, periods in (("day", 6), ("week", 3)) if engine == "duckdb" else (("week", 3),):
        got = service.run_retention(f, unit=unit, periods=periods, engine=engine)
        want, _ = ref_retention(random_data, unit, date(2026, 2, 27), date(2026, 3, 9), periods)
        assert {(c["cohort"], c["offset"]): c["rate"] for c in got["cells"]} == pytest.approx(want)
    got = service.run_revenue(f, unit="week", periods=3, engine=engine)
    _, money = ref_retention(random_data, "week", date(2026, 2, 27), date(2026, 3, 9), 3)
    assert {(c["cohort"], c["offset"]): c["ltv_fen"] for c in got["cells"]} == pytest.approx(money)


def test_channel_filter_chooses_the_cohort_and_returns_count_anywhere(random_data, load):
    load()
    f = service.make_filters("2026-02-27", "2026-03-09", channels=["douyin"])
    got = service.run_retention(f, unit="day", periods=5)
    want, _ = ref_retention(random_data, "day", date(2026, 2, 27), date(2026, 3, 9), 5, channels=("douyin",))
    assert {(c["cohort"], c["offset"]): c["rate"] for c in got["cells"]} == pytest.approx(want)


def test_day_cohorts_split_at_shanghai_midnight_and_future_cells_are_none(rows, load):
    rows.event(1, "2026-03-01 23:59:59", "app_open")  # cohort 03-01
    rows.event(2, "2026-03-02 00:00:00", "app_open")  # cohort 03-02
    rows.event(1, "2026-03-02 00:00:00", "login")  # 1 back on day 1
    rows.event(2, "2026-03-03 07:59:59", "exposure")  # passive: not a return (still 2026-03-03 local)
    load()
    got = service.run_retention(service.make_filters("2026-03-01", "2026-03-03"), unit="day", periods=3)
    assert got["matrix"] == [
        {"cohort": "2026-03-01", "size": 1, "d0": 1.0, "d1": 1.0, "d2": 0.0},
        {"cohort": "2026-03-02", "size": 1, "d0": 1.0, "d1": 0.0, "d2": None},
    ]


def test_referral_cohorts_and_month_units(rows, load):
    rows.event(1, "2026-01-05 10:00:00", "app_open")
    rows.event(2, "2026-01-20 10:00:00", "app_open")  # seen before being referred
    rows.event(2, "2026-02-03 10:00:00", "app_open")
    rows.event(3, "2026-02-10 10:00:00", "app_open")
    rows.event(3, "2026-03-10 10:00:00", "app_open")
    rows.edge(1, 2, "2026-02-01 00:00:00")  # local midnight: February
    rows.edge(1, 3, "2026-02-10 10:00:00")
    rows.order(2, "2026-01-25 10:00:00", 9999)  # before the referral: not in the cohort's revenue
    rows.order(2, "2026-02-05 10:00:00", 1000)
    rows.order(3, "2026-03-11 10:00:00", 3000)
    load()
    f = service.make_filters("2026-01-01", "2026-03-31")
    got = service.run_retention(f, unit="month", cohort_by="referral", periods=3)
    assert got["matrix"] == [{"cohort": "2026-02", "size": 2, "m0": 1.0, "m1": 0.5, "m2": None}]
    money = service.run_revenue(f, unit="month", cohort_by="referral", periods=2)
    assert money["ltv_curves"] == [{"cohort": "2026-02", "size": 2, "m0": 500.0, "m1": 2000.0}]
    with pytest.raises(ValueError, match="unit must be one of day, week, month"):
        service.run_retention(f, unit="year")


def test_cohort_without_any_return_shows_zeros(rows, load):
    rows.event(1, "2026-03-01 10:00:00", "app_open")
    rows.event(2, "2026-03-02 10:00:00", "app_open")
    rows.event(2, "2026-03-03 10:00:00", "app_open")
    load()
    got = service.run_retention(service.make_filters("2026-03-01", "2026-03-02"), unit="day", periods=3)
    assert got["matrix"] == [
        {"cohort": "2026-03-01", "size": 1, "d0": 1.0, "d1": 0.0, "d2": 0.0},
        {"cohort": "2026-03-02", "size": 1, "d0": 1.0, "d1": 1.0, "d2": None},
    ]


def _long_rows(rows, seed: int) -> None:
    """200 persons over 80 days (more than the one-pass mask's 29 day units), two channels and campaigns."""
    import random

    rng = random.Random(seed)
    base = date(2026, 1, 1)
    for p in range(1, 201):
        first = rng.randrange(70)
        for _ in range(rng.randint(2, 9)):
            day = base + timedelta(days=first + rng.randrange(0, 6) * rng.randrange(0, 3))
            rows.event(
                p, f"{day.isoformat()} {rng.randrange(24):02d}:30:00",
                rng.choice(["exposure", "page_view", "app_open"]),
                channel=rng.choice(["wecom", "douyin"]), campaign=rng.choice(["c1", "c2", None]),
            )  # fmt: skip


@pytest.mark.parametrize(
    "start, end, unit, periods, cohorts, channels, campaigns, segment",
    [
        ("2026-01-01", "2026-03-20", "day", 8, 12, (), (), None),  # all cohorts inside the mask's window
        ("2026-01-01", "2026-03-20", "day", 8, 60, (), (), None),  # older cohorts wanted: the joined path
        ("2026-02-10", "2026-03-05", "day", 35, 40, ("douyin",), (), None),  # more periods than the mask
        ("2026-01-05", None, "week", 6, 12, (), ("c2",), None),
        (None, "2026-03-01", "day", 5, 10, ("wecom",), ("c1",), range(1, 201, 2)),
        ("2026-01-01", "2026-03-31", "month", 3, 12, (), (), range(10, 40)),
    ],
)
def test_one_pass_retention_equals_the_joined_calculation(
    rows, load, start, end, unit, periods, cohorts, channels, campaigns, segment
):
    from liebian.analytics import cohorts as cohorts_mod

    _long_rows(rows, seed=7)
    load()
    f = service.make_filters(start, end, channels=channels, campaigns=campaigns, segment=segment)
    with service.frame(f) as fr:
        unit_of = cohorts_mod._unit_fn(fr, unit)
        one_pass = cohorts_mod._retention_one_pass(fr, unit, periods, cohorts)
        joined = cohorts_mod._retention_joined(fr, unit_of, "first_event", periods, cohorts)
        public = cohorts_mod.retention(fr, unit, "first_event", periods, cohorts).table
    want = cohorts_mod._cells(unit, "first_event", periods, *joined).table
    assert len(want) > 0
    pd.testing.assert_frame_equal(public, want)
    rows_joined, as_of = joined
    if min(c for c, _, _ in rows_joined) < as_of - (cohorts_mod.MASK_UNITS - 1):
        assert one_pass is None  # a cohort older than the mask's window is wanted
    else:
        assert one_pass is not None
        pd.testing.assert_frame_equal(cohorts_mod._cells(unit, "first_event", periods, *one_pass).table, want)
    if not campaigns and segment is None and start and end:
        got = {
            (c["cohort"], c["offset"]): None if pd.isna(c["rate"]) else c["rate"]
            for c in public.to_dict(orient="records")
        }
        ref, _ = ref_retention(
            rows, unit, date.fromisoformat(start), date.fromisoformat(end), periods, cohorts, channels
        )
        assert got == pytest.approx(ref)
