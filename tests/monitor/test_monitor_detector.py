"""The detector on synthetic series: injected spikes, drops and level shifts over weekly seasonality."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from liebian.calendar import HolidayCalendar
from liebian.config import CalendarSettings
from liebian.monitor.detector import CalendarEffect, DetectorError, default_calendar, detect, launch_effects

START = date(2026, 7, 1)
DAYS = 140
WEEKLY = np.array([1.0, 0.95, 0.97, 1.0, 1.1, 1.3, 1.3])  # Mon … Sun


def base_series(rng: np.random.Generator, level: float = 1000.0, noise: float = 0.03) -> pd.Series:
    idx = pd.date_range(START, periods=DAYS, freq="D")
    trend = level * (1 + 0.002 * np.arange(DAYS))
    season = WEEKLY[idx.dayofweek.to_numpy()]
    return pd.Series(trend * season * (1 + rng.normal(0, noise, DAYS)), index=idx)


def inject(rng: np.random.Generator, s: pd.Series) -> tuple[pd.Series, list[tuple[str, int, int]]]:
    """3 events per series at random well-separated days: (kind, first day, last day accepted)."""
    s = s.copy()
    positions = sorted(rng.choice(np.arange(35, DAYS - 10, 12), 3, replace=False))
    truth = []
    for pos in positions:
        kind = rng.choice(["spike", "drop", "shift"])
        size = rng.uniform(0.35, 0.6)
        if kind == "spike":
            s.iloc[pos] *= 1 + size
            truth.append(("spike", pos, pos))
        elif kind == "drop":
            s.iloc[pos] *= 1 - size
            truth.append(("drop", pos, pos))
        else:
            s.iloc[pos:] *= 1 + size * rng.choice([-1, 1]) * 0.8
            truth.append(("shift", pos, pos + 2))  # found if flagged within its first 3 days
    return s, truth


def test_precision_and_recall_on_injected_anomalies() -> None:
    tp_alerts = alerts = found = injected = 0
    for seed in range(60):
        rng = np.random.default_rng(seed)
        s, truth = inject(rng, base_series(rng))
        flagged = [s.index.get_loc(a.ts) for a in detect(s) if a.alert]
        alerts += len(flagged)
        tp_alerts += sum(any(lo <= p <= hi for _, lo, hi in truth) for p in flagged)
        injected += len(truth)
        found += sum(any(lo <= p <= hi for p in flagged) for _, lo, hi in truth)
    precision, recall = tp_alerts / alerts, found / injected
    print(f"detector precision={precision:.3f} recall={recall:.3f} alerts={alerts} injected={injected}")
    assert precision >= 0.9
    assert recall >= 0.9


def test_no_alert_on_a_normal_weekly_cycle() -> None:
    for seed in range(30):
        s = base_series(np.random.default_rng(1000 + seed))
        assert [a for a in detect(s) if a.alert] == []


def test_calendar_effects_explain_instead_of_alert() -> None:
    rng = np.random.default_rng(5)
    idx_s = base_series(rng)
    s = idx_s.copy()
    peak = pd.Timestamp(2026, 11, 11)
    s[pd.Timestamp(2026, 11, 10)] *= 1.5
    s[peak] *= 2.6
    s[pd.Timestamp(2026, 11, 12)] *= 1.5
    launch = pd.Timestamp(2026, 9, 14)
    s[launch] *= 1.8
    cal = default_calendar([2026]) + launch_effects([("c1", launch.date())])
    found = detect(s, calendar=cal)
    assert [a for a in found if a.alert] == []
    explained = {a.ts: a.explained_by for a in found}
    assert explained[peak] == "双11"
    assert explained[launch] == "活动上线 c1"
    # without the calendar the same days are alerts: the calendar is what suppresses them
    assert {peak, launch} <= {a.ts for a in detect(s) if a.explained_by is None}


def test_alert_states_expected_against_observed() -> None:
    rng = np.random.default_rng(9)
    s = base_series(rng, noise=0.01)
    day = s.index[70]
    clean = s[day]
    s[day] = clean * 0.3
    (a,) = [a for a in detect(s) if a.alert]
    assert a.ts == day and a.direction == "drop"
    assert a.observed == pytest.approx(clean * 0.3)
    assert a.expected == pytest.approx(clean, rel=0.05)  # the fit recovers the true value
    assert a.score < -3


def test_sensitivity_is_configurable() -> None:
    rng = np.random.default_rng(3)
    s = base_series(rng)
    s.iloc[60] *= 1.3  # a +30% bump: about 9σ at 3% noise
    assert s.index[60] in {a.ts for a in detect(s)}
    assert s.index[60] not in {a.ts for a in detect(s, sensitivity=20)}
    assert s.index[60] not in {a.ts for a in detect(s, min_change=0.5)}  # materiality threshold


def test_cold_start_catches_a_collapse_in_a_young_campaign() -> None:
    """A campaign 3 weeks old: too short for a weekly fit, a collapse to 15% is still an alert."""
    rng = np.random.default_rng(21)
    s = base_series(rng, level=0.45, noise=0.05)[:20]
    assert [a for a in detect(s) if a.alert] == []  # its own weekly cycle is not an alert
    s.iloc[11] *= 0.15
    (a,) = [a for a in detect(s) if a.alert]
    assert a.ts == s.index[11] and a.direction == "drop" and a.expected > 0.4


def test_bad_input_is_named() -> None:
    with pytest.raises(DetectorError, match="need at least 8"):
        detect(pd.Series([1.0] * 5, index=pd.date_range(START, periods=5)))
    with pytest.raises(DetectorError, match="sensitivity"):
        detect(base_series(np.random.default_rng(0)), sensitivity=0)
    with pytest.raises(DetectorError, match="duplicate"):
        detect([(START, 1.0), (START, 2.0)] + [(START + timedelta(days=i), 1.0) for i in range(1, 40)])


def test_spring_festival_travel_week_and_recovery_no_longer_alert() -> None:
    """2026: the 春运 travel week (7–14 Feb) runs at 65 %, the holiday (15–23 Feb) at 40 %; after it
    60 % up to 元宵 (3 March), 80 % the week after, then back to normal."""
    rng = np.random.default_rng(26)
    idx = pd.date_range(date(2025, 11, 20), date(2026, 4, 30), freq="D")
    s = pd.Series(
        1000.0 * WEEKLY[idx.day_of_week.to_numpy()] * (1 + rng.normal(0, 0.03, len(idx))), index=idx
    )
    for first, last, level in [((2, 7), (2, 14), 0.65), ((2, 15), (2, 23), 0.4), ((2, 24), (3, 3), 0.6),
                               ((3, 4), (3, 10), 0.8)]:  # fmt: skip
        s[pd.Timestamp(2026, *first) : pd.Timestamp(2026, *last)] *= level
    found = detect(s, calendar=default_calendar([2025, 2026]))
    assert [a for a in found if a.alert] == []
    travel = [a for a in found if date(2026, 2, 7) <= a.ts.date() <= date(2026, 2, 14)]
    assert travel and {a.explained_by for a in travel} == {"春节"}  # seen, and named
    # the old fixed window (eve − 1 … 初六, i.e. 15–23 Feb) alerts on the travel week and the recovery
    old = [CalendarEffect("春节", date(2026, 2, 15), date(2026, 2, 23))]
    old_alerts = {a.ts.date() for a in detect(s, calendar=old) if a.alert}
    assert any(date(2026, 2, 7) <= d <= date(2026, 2, 14) for d in old_alerts)
    assert any(date(2026, 3, 3) <= d <= date(2026, 3, 12) for d in old_alerts)  # the recovery after 元宵
    # the window comes from the settings: no margin around the holiday gives the old behaviour back
    narrow = HolidayCalendar(CalendarSettings(spring_festival_before_days=0, spring_festival_after_days=0))
    assert {
        a.ts.date() for a in detect(s, calendar=default_calendar([2025, 2026], narrow)) if a.alert
    } == old_alerts


def test_a_calendar_day_inside_an_episode_neither_ends_nor_extends_it() -> None:
    rng = np.random.default_rng(11)
    s = base_series(rng, noise=0.01)
    first = s.index[70]
    s[first:] *= 1.6  # a level shift …
    worked = s.index[71].date()  # … with an adjusted working day on its second day
    cal = [CalendarEffect("调休上班（国庆节）", worked, worked, "workday")]
    found = detect(s, calendar=cal)
    assert [a.ts for a in found if a.alert] == [first]  # one alert for the whole shift
    assert next(a for a in found if a.ts.date() == worked).explained_by == "调休上班（国庆节）"
    shift = [a for a in found if a.explained_by is None]
    assert {a.episode_start for a in shift} == {first} and shift[-1].kind == "level_shift"
