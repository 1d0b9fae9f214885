"""Numbers and times as a person reads them, in zh-CN or English: shared by the console (web/format.py)
and the documents the domains render themselves (the reports' HTML).

- counts without decimals (万 in Chinese from 10,000), rates as percentages, money in yuan with ¥
  (万 in Chinese), other decimals with at most 2 places and never "-0.00"; float noise such as
  -9.992e-16 is zero;
- times in the brand's display zone (settings.timezone), labelled with its UTC offset (stored times
  are naive UTC).
"""

from __future__ import annotations

import math
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from liebian.config import get_settings

# Below this a computed decimal is float noise (e.g. an expected value of -9.992e-16), shown as 0.
NOISE = 1e-9
MISSING = "—"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def clean(value: float) -> float:
    """Float noise and negative zero as 0."""
    return 0.0 if abs(value) < NOISE else value


def decimal(value: float | int | None, digits: int = 2) -> str:
    """At most `digits` places, trailing zeros dropped (561.00 → 561, 0.50 → 0.5, -0.00 → 0)."""
    if _missing(value):
        return MISSING
    assert value is not None
    text = f"{clean(float(value)):,.{digits}f}"
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return "0" if text in ("-0", "") else text


def count(value: float | int | None, lang: str) -> str:
    """An integer; 万 in Chinese from 10,000 (12.3万), thousands separators in English."""
    if _missing(value):
        return MISSING
    assert value is not None
    n = int(round(clean(float(value))))
    if lang.startswith("zh") and abs(n) >= 10_000:
        return f"{n / 10_000:.1f}万"
    return f"{n:,}"


def percent(value: float | None, digits: int = 1) -> str:
    return MISSING if _missing(value) else f"{clean(float(value or 0)):.{digits}%}"


def money_fen(fen: float | int | None, lang: str) -> str:
    """Money kept in fen, shown in yuan: ¥1,234.50, or ¥12.35万 in Chinese from ¥10,000."""
    if _missing(fen):
        return MISSING
    assert fen is not None
    yuan = int(round(float(fen))) / 100
    if lang.startswith("zh") and abs(yuan) >= 10_000:
        return f"¥{yuan / 10_000:.2f}万"
    return f"¥{yuan:,.2f}"


def display_zone() -> ZoneInfo:
    return ZoneInfo(get_settings().timezone)


def zone_label(at: datetime | None = None) -> str:
    """The display zone as its UTC offset, e.g. UTC+8 (readable in both languages)."""
    offset = (at or datetime.now(UTC)).astimezone(display_zone()).utcoffset()
    minutes = int(offset.total_seconds() // 60) if offset is not None else 0
    sign = "+" if minutes >= 0 else "-"
    hours, rest = divmod(abs(minutes), 60)
    return f"UTC{sign}{hours}" + (f":{rest:02d}" if rest else "")


def local_time(value: datetime | date | str | None, *, label: bool = True) -> str:
    """A stored time (naive UTC, aware, or ISO text) in the display zone, with its zone label."""
    if value is None or value == "":
        return MISSING
    at = datetime.fromisoformat(value) if isinstance(value, str) else value
    if not isinstance(at, datetime):  # a date: no time of day, no zone
        return at.isoformat()
    aware = at if at.tzinfo is not None else at.replace(tzinfo=UTC)
    text = aware.astimezone(display_zone()).strftime("%Y-%m-%d %H:%M")
    return f"{text} {zone_label(aware)}" if label else text


def by_kind(value: object, kind: str, lang: str) -> str:
    """A value by its kind: count, decimal, pct, fen, time or text."""
    if _missing(value):
        return MISSING
    if kind == "count":
        return count(value, lang)  # type: ignore[arg-type]  # a number by its kind
    if kind == "pct":
        return percent(value)  # type: ignore[arg-type]  # a number by its kind
    if kind == "fen":
        return money_fen(value, lang)  # type: ignore[arg-type]  # a number by its kind
    if kind == "decimal":
        return decimal(value)  # type: ignore[arg-type]  # a number by its kind
    if kind == "time":
        return local_time(value)  # type: ignore[arg-type]  # a time by its kind
    return str(value)


def cell(value: object, kind: str, lang: str) -> str:
    """A value in a table cell: as `by_kind`, but counts as whole numbers with separators (no 万:
    a column of counts reads and compares digit by digit)."""
    if kind == "count" and isinstance(value, int | float) and not isinstance(value, bool):
        return f"{int(round(clean(float(value)))):,}"
    return by_kind(value, kind or kind_of("", value), lang)


def kind_of(name: str, value: object) -> str:
    """The kind of a named value: *_rate/_share/_pct percentages, *_fen money, numbers count or decimal."""
    if name.endswith(("_rate", "_share", "_pct", "retention_d1", "retention_d7", "retention_d30")):
        return "pct"
    if name.endswith("_fen"):
        return "fen"
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "text"
    return "count" if isinstance(value, int) or float(value).is_integer() else "decimal"
