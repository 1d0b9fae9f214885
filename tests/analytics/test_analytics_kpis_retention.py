"""The KPI sheet's D1/D7/D30 (kpi_retention.py) against a plain-Python count on random data.

The sheet answers day N of a new user from per-person bit sets of active days (without filters) and
looks up in the events what they cannot hold (days N more than 121 days before the top day, or after
it) and everything under a channel filter. The data spans 200 days so that both paths count, with
hand-made persons at the edges: the first day is the last data day, back on day N only, back every
day, a passive event on day N (not a return), midnight in the display zone, a first order.
Times are written in local (Asia/Shanghai) time and stored as naive UTC, as the importers do.
"""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta

import pytest
from warehouse_helpers import backend

from liebian.analytics.common import Filters, Frame, MetricConfig
from liebian.analytics.kpis import kpis

OFFSET = timedelta(hours=8)
BASE = datetime(2026, 1, 1)
SPAN = 200  # days of data: more than the bit sets' 121
PASSIVE = {"exposure"}
NAMES = ["exposure", "page_view", "app_open", "signup"]
CHANNELS = ["wecom", "douyin", "store"]


def at(day: int, hh: int = 12, mm: int = 0, ss: int = 0) -> datetime:
    return BASE + timedelta(days=day, hours=hh, minutes=mm, seconds=ss)


def data(seed: int) -> tuple[list, list]:
    """events (person, local time, name, channel) and orders (person, local time, channel)."""
    rng = random.Random(seed)
    events: list = []
    orders: list = []
    for p in range(1, 41):  # random persons: some on many days, some on few
        first = rng.randrange(SPAN)
        for _ in range(rng.choice([1, 3, 10, 40])):
            day = min(SPAN - 1, first + rng.choice([0, 1, 1, 7, 7, 30, 30, rng.randrange(60)]))
            when = at(day, rng.randrange(24), rng.choice([0, 59]))
            events.append((p, when, rng.choice(NAMES[:3]), rng.choice(CHANNELS)))
        if rng.random() < 0.3:
            orders.append((p, at(max(0, first - rng.randrange(3)), rng.randrange(24)), rng.choice(CHANNELS)))
    last = SPAN - 1
    events += [
        (101, at(last, 9), "app_open", "douyin"),  # first day = last data day: in no base
        (101, at(last, 10), "page_view", "douyin"),
        (102, at(150), "page_view", "douyin"),  # back on day 7 only; day 1 has a passive event only
        (102, at(151), "exposure", "douyin"),
        (102, at(157), "app_open", "wecom"),
        *((103, at(d, 8), "app_open", "douyin") for d in range(120, SPAN)),  # back every day
        (104, at(170, 23, 59, 59), "page_view", "douyin"),  # midnight: 00:00:00 is the next local day
        (104, at(171, 0, 0, 0), "app_open", "douyin"),
        (104, at(200 - 30, 0, 0, 0) + timedelta(days=30) - timedelta(seconds=1), "app_open", "wecom"),
        (105, at(20), "app_open", "store"),  # day N long before the top day: looked up
        (105, at(21), "app_open", "store"),
        (105, at(50), "app_open", "store"),
        (106, at(175, 3), "app_open", "douyin"),  # first registered by an order the day before
        (107, at(0, 0, 0, 0), "signup", "wecom"),  # a sign-up: WeCom has registration events
        (107, at(1, 0, 0, 0), "page_view", "wecom"),
        (109, at(135), "app_open", "douyin"),  # back on day 45 (with retention_days (0, 1, 45))
        (109, at(180), "app_open", "douyin"),
    ]
    orders += [(106, at(174, 23, 30), "douyin"), (108, at(180), "douyin")]  # 108: an order only
    return events, orders


def reference(events: list, orders: list, f: Filters, days: tuple[int, ...]) -> dict[str, float | None]:
    """retention_dN and dau_mau as docs/metrics.md defines them, in plain Python over local times."""

    def dims(channel: str) -> bool:
        return not f.channels or channel in f.channels

    reg_channels = {c for _, _, name, c in events if name in ("signup", "follow")}
    reg_rows = [(p, t, c) for p, t, name, c in events if name in ("signup", "follow")]
    reg_rows += [(p, t, c) for p, t, _, c in events if c not in reg_channels]
    reg_rows += [(p, t, c) for p, t, c in orders if c not in reg_channels]
    first: dict[int, datetime] = {}
    for p, t, _ in reg_rows:
        first[p] = min(first.get(p, t), t)
    new = {
        p for p, t in first.items()
        if (f.start is None or t.date() >= f.start) and (f.end is None or t.date() <= f.end)
        and any(q == p and u == t and dims(c) for q, u, c in reg_rows)
    }  # fmt: skip
    as_of = max(t.date() for _, t, _, c in events if dims(c))
    active_days = {(p, t.date()) for p, t, name, _ in events if name not in PASSIVE}  # any channel
    out: dict[str, float | None] = {}
    for n in days:
        due = [p for p in new if first[p].date() + timedelta(days=n) <= as_of]
        back = [p for p in due if (p, first[p].date() + timedelta(days=n)) in active_days]
        out[f"retention_d{n}"] = len(back) / len(due) if due else None
    # Stickiness, which the same bit sets hold: active person-days of the 30 days to the period end
    # (else the last data day), in the filtered events.
    ref = f.end or as_of
    window = {(p, t.date()) for p, t, name, c in events if name not in PASSIVE and dims(c)}
    window = {(p, d) for p, d in window if ref - timedelta(days=29) <= d <= ref}
    out["dau_mau"] = len(window) / 30 / len({p for p, _ in window}) if window else None
    return out


FILTERS = [
    Filters(),
    Filters(start=date(2026, 1, 1), end=date(2026, 7, 31)),
    Filters(start=date(2026, 6, 1)),
    # the top day is the period end + the largest N, at most + 33: 109's day 45 lies after it
    Filters(end=date(2026, 5, 21)),
    Filters(start=date(2026, 2, 1), end=date(2026, 5, 31), channels=("douyin",)),  # every day N looked up
]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("days", [(1, 7, 30), (0, 1, 45)])
def test_day_n_retention_matches_a_plain_count(seed: int, days: tuple[int, ...]) -> None:
    events, orders = data(seed)
    con = backend(
        [(p, t - OFFSET, name, c, None) for p, t, name, c in events],
        [(p, t - OFFSET, 1000, "paid", c, None) for p, t, c in orders],
        [],
    )
    config = MetricConfig(timezone="Asia/Shanghai", retention_days=days)
    for f in FILTERS:
        got = kpis(Frame(con, f, config))
        want = reference(events, orders, f, days)
        for key, value in want.items():
            assert got[key] == (None if value is None else pytest.approx(value)), (key, f)


def test_the_edge_persons_count_as_meant() -> None:
    """Known answers for the hand-made persons alone (no random ones)."""
    events, orders = data(0)
    events = [e for e in events if e[0] > 100]
    orders = [o for o in orders if o[0] > 100]
    con = backend(
        [(p, t - OFFSET, name, c, None) for p, t, name, c in events],
        [(p, t - OFFSET, 1000, "paid", c, None) for p, t, c in orders],
        [],
    )
    got = kpis(Frame(con, Filters(), MetricConfig(timezone="Asia/Shanghai")))
    # New: 102 (day 150), 103 (120), 104 (170), 105 (20), 106 (174, its order), 107 (0), 108 (180), 101 (199),
    # 109 (135). D1 base: all but 101. Back on day 1: 103 (every day), 104 (00:00:00 local), 105 (day 21),
    # 106 (its order at 23:30, then an event the next day), 107 (day 1); not 102 (an exposure only).
    assert got["new_users"] == 9
    assert got["retention_d1"] == pytest.approx(5 / 8)
    # D7 base: first day + 7 <= 199: all but 101; back: 102 (day 157) and 103
    assert got["retention_d7"] == pytest.approx(2 / 8)
    # D30 base: 102 (180), 103 (150), 104 (200 > 199: no), 105 (50), 107 (30), 109 (165): back 103, 105
    assert got["retention_d30"] == pytest.approx(2 / 5)
    assert got == {**got, **reference(events, orders, Filters(), (1, 7, 30))}


def test_without_day_n_retention_the_new_users_still_count() -> None:
    """The new users' counts share one aggregation with their day-N retention (retention_counts'
    `also`): with no day N configured they are still counted, the same as with them."""
    events, orders = data(0)
    con = backend(
        [(p, t - OFFSET, name, c, None) for p, t, name, c in events],
        [(p, t - OFFSET, 1000, "paid", c, None) for p, t, c in orders],
        [(101, 102, at(150), "douyin", None)],
    )
    for f in (Filters(), FILTERS[4]):
        with_days = kpis(Frame(con, f, MetricConfig(timezone="Asia/Shanghai")))
        without = kpis(Frame(con, f, MetricConfig(timezone="Asia/Shanghai", retention_days=())))
        assert "retention_d1" not in without
        for key in ("new_users", "new_referred_users", "referred_share_of_new", "ltv_fen"):
            assert without[key] == with_days[key], (key, f)
        assert with_days["new_users"] > 0
    assert with_days["new_referred_users"] == 1  # 102 (in douyin), invited by 101
