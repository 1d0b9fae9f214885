"""The holiday calendar (liebian/calendar.py): the State Council's 2026 arrangement, the 春节 window
from settings, adjusted working days, brand dates, validation of the settings and the CLI.

Expected dates are the published arrangement (国务院办公厅关于2026年部分节假日安排的通知), written
here by hand, not read from the package the module uses."""

from __future__ import annotations

import json
from datetime import date, timedelta

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from liebian import calendar as holiday_calendar
from liebian.cli import app as cli_app
from liebian.config import CalendarSettings, Settings, reset_settings_cache

# 2026: 春节 15–23 February (初一 = 17 February), worked Saturdays 14 and 28 February
SPRING_2026 = (date(2026, 2, 15), date(2026, 2, 23))
FIRST_DAY_2026 = date(2026, 2, 17)


def days(a: date, b: date) -> list[date]:
    return [a + timedelta(days=i) for i in range((b - a).days + 1)]


def test_2026_spring_festival_window_covers_travel_week_holiday_and_recovery() -> None:
    cal = holiday_calendar.HolidayCalendar()
    for day in days(*SPRING_2026):
        info = cal.day(day)
        assert info.holiday == "春节" and info.official
    (season,) = [
        w
        for w in cal.windows(date(2026, 1, 1), date(2026, 12, 31))
        if w.kind == "season" and w.name == "春节"
    ]
    # defaults: 10 days before 初一 (the 春运 travel week), 21 after (元宵 on 3 March, then a week)
    assert season.start == FIRST_DAY_2026 - timedelta(days=10) == date(2026, 2, 7)
    assert season.end == FIRST_DAY_2026 + timedelta(days=21) == date(2026, 3, 10)
    lantern = FIRST_DAY_2026 + timedelta(days=14)
    assert lantern == date(2026, 3, 3) and cal.day(lantern).explained_by == "春节"
    assert cal.day(date(2026, 2, 9)).explained_by == "春节"  # a travel-week Monday
    assert cal.day(date(2026, 3, 11)).explained_by is None  # back to ordinary days
    assert cal.day(date(2026, 3, 11)).names == []


def test_adjusted_working_days_are_known() -> None:
    cal = holiday_calendar.HolidayCalendar()
    for worked, holiday in [(date(2026, 2, 28), "春节"), (date(2026, 9, 20), "国庆节"), (date(2026, 10, 10), "国庆节"),
                            (date(2026, 5, 9), "劳动节"), (date(2026, 1, 4), "元旦")]:  # fmt: skip
        info = cal.day(worked)
        assert worked.weekday() >= 5  # a weekend day …
        assert info.holiday is None and info.workday_for == holiday  # … worked for the holiday
        assert f"调休上班（{holiday}）" in info.names
    assert cal.day(date(2026, 9, 20)).explained_by == "调休上班（国庆节）"
    # an ordinary Saturday is neither
    plain = cal.day(date(2026, 3, 14))
    assert (plain.holiday, plain.workday_for, plain.explained_by) == (None, None, None)


def test_promotions_and_brand_dates_most_specific_first() -> None:
    cal = holiday_calendar.HolidayCalendar(
        CalendarSettings(brand_dates=[{"name": "品牌周年庆", "start": "2026-11-11", "end": "2026-11-13"}])
    )
    assert cal.day(date(2026, 11, 11)).names == ["品牌周年庆", "双11"]
    assert cal.day(date(2026, 11, 11)).explained_by == "品牌周年庆"
    assert cal.day(date(2026, 11, 13)).explained_by == "品牌周年庆"
    assert cal.day(date(2026, 11, 10)).explained_by == "双11"
    assert cal.day(date(2026, 6, 18)).explained_by == "618"
    assert cal.day(date(2026, 12, 12)).explained_by == "双12"
    assert cal.day(date(2027, 11, 11)).explained_by == "双11"  # yearly; the brand date is not


def test_settings_change_the_windows() -> None:
    narrow = holiday_calendar.HolidayCalendar(
        CalendarSettings(spring_festival_before_days=0, spring_festival_after_days=0, other_holidays=False,
                         promotions=[{"name": "双11", "start": "11-01", "end": "11-11"}])
    )  # fmt: skip
    # with no margin the window is the public holiday itself
    (season,) = [w for w in narrow.windows(date(2026, 2, 1), date(2026, 2, 28)) if w.kind == "season"]
    assert (season.start, season.end) == SPRING_2026
    assert narrow.day(date(2026, 2, 9)).explained_by is None
    assert narrow.day(date(2026, 3, 3)).explained_by is None
    assert narrow.day(date(2026, 11, 1)).explained_by == "双11"
    assert narrow.day(date(2026, 11, 12)).explained_by is None
    # other_holidays off: 清明 and an adjusted working day no longer explain anything, but are still known
    assert (
        narrow.day(date(2026, 4, 5)).holiday == "清明节" and narrow.day(date(2026, 4, 5)).explained_by is None
    )
    assert (
        narrow.day(date(2026, 2, 28)).workday_for == "春节"
        and narrow.day(date(2026, 2, 28)).explained_by is None
    )


def test_a_year_the_package_does_not_cover_falls_back_to_computed_holidays() -> None:
    off, worked, source = holiday_calendar.public_days(2031)
    assert source == "holidays" and worked == {}  # 调休 is published each November for the next year
    assert holiday_calendar.lunar_new_year(2031) == date(2031, 1, 23)  # 初一 of 辛亥年
    assert off[date(2031, 1, 23)] == "春节" and off[date(2031, 10, 1)] == "国庆节"
    info = holiday_calendar.HolidayCalendar().day(date(2031, 1, 20))
    assert not info.official and info.explained_by == "春节"
    # the 2027 window already answers (初一 = 6 February 2027)
    assert holiday_calendar.lunar_new_year(2027) == date(2027, 2, 6)


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ({"spring_festival_before_days": 99}, "spring_festival_before_days"),
        ({"promotions": [{"name": "双11", "start": "11-31", "end": "11-31"}]}, "promotions"),
        ({"promotions": [{"name": "双11", "start": "11-12", "end": "11-10"}]}, "promotions"),
        ({"brand_dates": [{"name": "店庆", "start": "2026-05-02", "end": "2026-05-01"}]}, "brand_dates"),
        ({"brand_dates": [{"name": "", "start": "2026-05-01", "end": "2026-05-01"}]}, "brand_dates"),
        ({"spring_festival_days": 3}, "spring_festival_days"),  # a typo is refused, not ignored
    ],
)
def test_bad_settings_are_refused_naming_the_field(monkeypatch, value, field) -> None:
    monkeypatch.setenv("LIEBIAN_CALENDAR", json.dumps(value))
    with pytest.raises(ValidationError) as exc:
        Settings()
    assert field in str(exc.value)


def test_years_outside_the_range_are_refused() -> None:
    with pytest.raises(holiday_calendar.CalendarError, match="year: must lie in"):
        holiday_calendar.HolidayCalendar().year(1999)


def test_cli_shows_the_year_and_answers_for_a_day(data_dir, monkeypatch) -> None:
    monkeypatch.setenv(
        "LIEBIAN_CALENDAR",
        json.dumps({"brand_dates": [{"name": "会员日", "start": "2026-08-08", "end": "2026-08-08"}]}),
    )
    reset_settings_cache()
    runner = CliRunner()
    r = runner.invoke(cli_app, ["calendar", "show", "--year", "2026", "--format", "json"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert {"name": "春节", "kind": "holiday", "start": "2026-02-15", "end": "2026-02-23", "days": 9} in rows
    assert {"name": "春节", "kind": "workday", "start": "2026-02-14", "end": "2026-02-14", "days": 1} in rows
    assert {"name": "会员日", "kind": "brand", "start": "2026-08-08", "end": "2026-08-08", "days": 1} in rows
    assert [r["start"] for r in rows] == sorted(r["start"] for r in rows)
    r = runner.invoke(cli_app, ["calendar", "day", "2026-02-28", "--format", "json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.output)
    assert out["workday_for"] == "春节" and out["explained_by"] == "春节"
    r = runner.invoke(cli_app, ["calendar", "day", "2026-02-30"])
    assert r.exit_code == 2 and "day:" in r.output
    r = runner.invoke(cli_app, ["calendar", "show", "--year", "3000"])
    assert r.exit_code == 2 and "year: must lie in" in r.output
