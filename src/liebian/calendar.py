"""One holiday calendar for monitoring, data quality and reports: "what is this day?".

Public holidays and adjusted working days (调休: a weekend day worked to make a holiday longer)
come from `chinesecalendar`, which carries the State Council's yearly arrangements (2004 to the
year its release covers: 2026 for 1.11.0). For a year it does not cover (the arrangement is
published each November for the next year), the holidays are computed by `holidays` (CN, lunar
dates included) and no adjusted working day is known: `DayInfo.official` says which.

On top, the windows set in settings `calendar` (config.CalendarSettings): 春节 counted from 初一
(days before: the 春运 travel week; after: 元宵 and the recovery), 国庆 around its public
holiday, yearly promotions (618, 双11, 双12 by default) and the brand's own dates. A day inside
one of them, on a public holiday or on an adjusted working day is *explained*: monitoring reports
a deviation there without alerting, data quality labels it instead of flagging it, reports name it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from datetime import date, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING, Literal

import chinese_calendar  # type: ignore[import-untyped]  # the package ships no type information

from liebian.config import CalendarSettings, get_settings
from liebian.errors import Invalid
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import holidays as holidays_pkg
else:  # deferred for start-up time (0.2 s and more): imported on first use (liebian/lazy.py)
    holidays_pkg = lazy_import("holidays")

# brand date | promotion | season (the 春节 / 国庆 windows) | holiday (a public day off) |
# workday (an adjusted working day); monitoring adds campaign_launch
Kind = str
Source = Literal["chinesecalendar", "holidays"]

FIRST_YEAR, LAST_YEAR = 2000, 2100  # years a question may name (the edges refuse others)

# chinesecalendar's English holiday names → the names shown (zh-CN; codes stay English in JSON)
ZH_NAMES = {
    "New Year's Day": "元旦",
    "Spring Festival": "春节",
    "Tomb-sweeping Day": "清明节",
    "Labour Day": "劳动节",
    "Dragon Boat Festival": "端午节",
    "National Day": "国庆节",
    "Mid-autumn Festival": "中秋节",
    "Anti-Fascist 70th Day": "抗战胜利纪念日",
}
# `holidays` (zh_CN) names of the fallback years, by the part that identifies the holiday; a day of two
# holidays (国庆 and 中秋 on 1 October 2031) is named by the first listed
FALLBACK_NAMES = (("国庆", "国庆节"), ("除夕", "春节"), ("春节", "春节"), ("元旦", "元旦"), ("清明", "清明节"),
                  ("劳动", "劳动节"), ("端午", "端午节"), ("中秋", "中秋节"))  # fmt: skip
LUNAR_NEW_YEAR = "Chinese New Year (Spring Festival)"  # `holidays`' name of 初一 (en_US)
SPRING_FESTIVAL, NATIONAL_DAY = "春节", "国庆节"
LANTERN_OFFSET = 14  # 元宵 is the 15th day of the first lunar month


class CalendarError(Invalid, ValueError):
    """A question the calendar cannot answer (a year out of range); the message is "field: reason"."""

    def __init__(self, message: str):
        super().__init__("invalid", message)


@dataclass(frozen=True)
class Window:
    """A named run of days [start, end] (inclusive) that explains unusual values."""

    name: str
    start: date
    end: date
    kind: Kind = "holiday"

    def covers(self, day: date) -> bool:
        return self.start <= day <= self.end

    def as_dict(self) -> dict[str, str]:
        return {
            "name": self.name,
            "kind": self.kind,
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
        }


@dataclass(frozen=True)
class DayInfo:
    """What a day is: public holiday, adjusted working day, inside windows (most specific first)."""

    day: date
    holiday: str | None  # the public holiday it is a day off for
    workday_for: str | None  # an adjusted working day (调休上班): the holiday it makes up for
    windows: tuple[Window, ...]
    official: bool  # True: the State Council's arrangement; False: computed (no 调休 known)
    explains: bool  # settings say public holidays and adjusted working days explain deviations

    @property
    def names(self) -> list[str]:
        """Everything the day is, most specific first (brand date, promotion, window, holiday)."""
        out = [w.name for w in self.windows]
        if self.holiday:
            out.append(self.holiday)
        if self.workday_for:
            out.append(f"调休上班（{self.workday_for}）")
        return list(dict.fromkeys(out))

    @property
    def explained_by(self) -> str | None:
        """The name that explains an unusual value on this day, or None for an ordinary day."""
        if self.windows:
            return self.windows[0].name
        if self.explains and (self.holiday or self.workday_for):
            return self.names[0]
        return None

    def as_dict(self) -> dict[str, object]:
        out = asdict(self)
        out["day"] = self.day.isoformat()
        out["windows"] = [w.as_dict() for w in self.windows]
        out["names"] = self.names
        out["explained_by"] = self.explained_by
        return out


def _check_year(year: int) -> None:
    if not FIRST_YEAR <= year <= LAST_YEAR:
        raise CalendarError(f"year: must lie in {FIRST_YEAR}–{LAST_YEAR}, got {year}")


def _days(year: int) -> Iterator[date]:
    day = date(year, 1, 1)
    while day.year == year:
        yield day
        day += timedelta(days=1)


@lru_cache(maxsize=64)
def public_days(year: int) -> tuple[dict[date, str], dict[date, str], Source]:
    """(days off → holiday, adjusted working days → holiday, source) of one year."""
    _check_year(year)
    off: dict[date, str] = {}
    worked: dict[date, str] = {}
    try:
        for day in _days(year):
            on_holiday, name = chinese_calendar.get_holiday_detail(day)
            if name:  # None: an ordinary weekday or weekend
                (off if on_holiday else worked)[day] = ZH_NAMES.get(name, name)
        return off, worked, "chinesecalendar"
    except NotImplementedError:  # a year chinesecalendar does not cover yet
        pass
    for day, name in holidays_pkg.country_holidays("CN", years=year, language="zh_CN").items():
        off[day] = next((zh for part, zh in FALLBACK_NAMES if part in name), name)
    # "休息日" (a substituted day off) of the fallback: only in years chinesecalendar covers anyway
    return off, {}, "holidays"


@lru_cache(maxsize=64)
def lunar_new_year(year: int) -> date:
    """初一 of the lunar year starting in `year` (computed by `holidays`, any year)."""
    _check_year(year)
    cn = holidays_pkg.country_holidays("CN", years=year, language="en_US")
    return min(cn.get_named(LUNAR_NEW_YEAR, lookup="exact"))


def _run_of(off: dict[date, str], name: str, near: date) -> tuple[date, date] | None:
    """The first and last day off named `name` within 30 days of `near`."""
    days = [d for d, n in off.items() if n == name and abs((d - near).days) <= 30]
    return (min(days), max(days)) if days else None


class HolidayCalendar:
    """The calendar of one set of settings; `current()` gives the one of the running settings."""

    def __init__(self, settings: CalendarSettings | None = None):
        self.settings = settings or CalendarSettings()

    def _festivals(self, year: int) -> list[Window]:
        """春节 (from 初一, widened to cover its public holiday) and 国庆 (its public holiday ± days)."""
        s = self.settings
        off, _, _ = public_days(year)
        first = lunar_new_year(year)
        start, end = first - timedelta(days=s.spring_festival_before_days), first + timedelta(days=s.spring_festival_after_days)  # fmt: skip
        if run := _run_of(off, SPRING_FESTIVAL, first):
            start, end = min(start, run[0]), max(end, run[1])
        out = [Window(SPRING_FESTIVAL, start, end, "season")]
        if run := _run_of(off, NATIONAL_DAY, date(year, 10, 1)):
            out.append(Window("国庆", run[0] - timedelta(days=s.national_day_before_days),
                              run[1] + timedelta(days=s.national_day_after_days), "season"))  # fmt: skip
        return out

    def _yearly(self, year: int) -> list[Window]:
        out = []
        for p in self.settings.promotions:
            try:
                out.append(Window(p.name, date.fromisoformat(f"{year}-{p.start}"), date.fromisoformat(f"{year}-{p.end}"), p.kind))  # fmt: skip
            except ValueError:  # 02-29 outside a leap year
                continue
        return out

    def windows(self, start: date, end: date) -> list[Window]:
        """Every window overlapping [start, end]: brand dates, promotions, 春节 and 国庆 — the most
        specific first (a brand's anniversary on 双11 is named as the anniversary)."""
        if end < start:
            raise CalendarError(f"end: {end} is before start {start}")
        brand = [Window(b.name, b.start, b.end, "brand") for b in self.settings.brand_dates]
        promotions: list[Window] = []
        festivals: list[Window] = []
        for year in range(start.year - 1, end.year + 1):  # 春节 of the year before may reach into this one
            if FIRST_YEAR <= year <= LAST_YEAR:
                promotions += self._yearly(year)
                festivals += self._festivals(year)
        return [w for w in brand + promotions + festivals if w.start <= end and w.end >= start]

    def day(self, day: date) -> DayInfo:
        """What this day is (see DayInfo)."""
        off, worked, source = public_days(day.year)
        return DayInfo(
            day=day,
            holiday=off.get(day),
            workday_for=worked.get(day),
            windows=tuple(w for w in self.windows(day, day) if w.covers(day)),
            official=source == "chinesecalendar",
            explains=self.settings.other_holidays,
        )

    def effects(self, start: date, end: date) -> list[Window]:
        """Windows plus public-holiday runs and adjusted working days of [start, end]: the days that
        explain unusual values (the latter two only when settings `other_holidays` is on)."""
        out = self.windows(start, end)
        if self.settings.other_holidays:
            for year in range(max(start.year, FIRST_YEAR), min(end.year, LAST_YEAR) + 1):
                off, worked, _ = public_days(year)
                out += [Window(name, a, b, "holiday") for name, a, b in _runs(off) if a <= end and b >= start]
                out += [Window(f"调休上班（{n}）", d, d, "workday") for d, n in sorted(worked.items()) if start <= d <= end]  # fmt: skip
        return out

    def explained(self, start: date, end: date) -> dict[date, str]:
        """Day → the name that explains it (as `DayInfo.explained_by`), for the days of [start, end]
        that have one: one pass for a whole series."""
        out: dict[date, str] = {}
        for w in self.effects(start, end):
            day = max(w.start, start)
            while day <= min(w.end, end):
                out.setdefault(day, w.name)
                day += timedelta(days=1)
        return out

    def year(self, year: int) -> list[Window]:
        """The calendar of one year, by first day (what `liebian calendar show` prints)."""
        _check_year(year)
        first, last = date(year, 1, 1), date(year, 12, 31)
        off, worked, _ = public_days(year)
        rows = [w for w in self.windows(first, last) if w.start.year == year or w.end.year == year]
        rows += [Window(name, a, b, "holiday") for name, a, b in _runs(off)]
        rows += [Window(n, d, d, "workday") for d, n in sorted(worked.items())]
        return sorted(rows, key=lambda w: (w.start, w.end, w.name))


def _runs(off: dict[date, str]) -> list[tuple[str, date, date]]:
    """Consecutive days off with the same holiday name as (name, first, last)."""
    out: list[tuple[str, date, date]] = []
    for day in sorted(off):
        name = off[day]
        if out and out[-1][0] == name and (day - out[-1][2]).days == 1:
            out[-1] = (name, out[-1][1], day)
        else:
            out.append((name, day, day))
    return out


@lru_cache(maxsize=8)
def _calendar_of(settings_json: str) -> HolidayCalendar:
    return HolidayCalendar(CalendarSettings.model_validate(json.loads(settings_json)))


def current() -> HolidayCalendar:
    """The calendar of the running settings (`calendar` in liebian.toml or LIEBIAN_CALENDAR)."""
    return _calendar_of(get_settings().calendar.model_dump_json())


def what_is(day: date) -> DayInfo:
    """What this day is under the running settings: public holiday, adjusted working day, 春节 /
    国庆 window, promotion or brand date — with names (`DayInfo.names`, `.explained_by`)."""
    return current().day(day)
