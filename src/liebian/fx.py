"""Exchange rates to CNY: amounts in another currency become fen of CNY before anything sums them.

The user provides dated rates (settings `fx_rates`, `fx_rates_file`: `date,currency,cny_per_unit`,
CNY per one unit of the currency on that day), or imports them into the operational store
(`liebian fx import FILE`, a CSV `currency,date,rate` or the settings file's header; table
`fx_rates`). Conversion uses both; where both give a rate for the same currency and day, the
settings' rate wins (the deployment's configuration overrides what was imported). An amount dated on day D (in the configured zone)
uses the latest rate of its currency dated on or before D and at most `fx_max_staleness_days`
older; a rate dated after D is never used. Without such a rate the amount is refused, naming the
currency and the day, never summed unconverted.

Money math is `Decimal`: the amount in hundredths of the currency's unit (what liebian's
`amount_fen` holds for a non-CNY amount) times the rate, rounded half-up to a whole fen.
The SQL twin of the conversion (file imports, the collector) is `liebian.ingest.currency`.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from pathlib import Path
from typing import Protocol, TypeVar, cast
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.config import Settings, get_settings
from liebian.costs.models import FxRate
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.errors import DomainError

BASE = "CNY"
RATE_COLUMNS = ("date", "currency", "cny_per_unit")
# The header `liebian fx import` documents (the settings file's header is accepted too).
IMPORT_COLUMNS = ("currency", "date", "rate")
_CODE = re.compile(r"[A-Z]{3}")


class _Priced(Protocol):
    amount_fen: int
    currency: str

    def model_copy(self, *, update: dict | None = None, deep: bool = False) -> _Priced: ...


PricedT = TypeVar("PricedT", bound=_Priced)


class FxError(DomainError):
    """An amount that cannot be converted to CNY (422, field `currency`)."""

    default_status = 422


class FxRatesInvalid(DomainError):
    """The configured rates cannot be read: nothing in another currency converts until fixed."""

    default_status = 503


@dataclass(frozen=True)
class Rate:
    currency: str
    day: date
    cny_per_unit: Decimal


@dataclass(frozen=True)
class Converted:
    """An amount in fen of CNY, with what it was converted from (rate None: it was CNY)."""

    amount_fen: int
    orig_amount: int
    orig_currency: str
    fx_rate: Decimal | None


def parse_rate(day: str, currency: str, value: str, where: str) -> Rate:
    """One rate from text; ValueError naming `where` (the setting or the file's line) otherwise."""
    code = currency.strip().upper()
    if not _CODE.fullmatch(code):
        raise ValueError(f"{where}: currency {currency!r} is not an ISO 4217 code")
    try:
        when = date.fromisoformat(day.strip())
    except ValueError:
        raise ValueError(f"{where}: date {day!r} is not YYYY-MM-DD") from None
    try:
        rate = Decimal(value.strip())
    except InvalidOperation:
        raise ValueError(f"{where}: cny_per_unit {value!r} is not a number") from None
    if not rate.is_finite() or rate <= 0:
        raise ValueError(f"{where}: cny_per_unit {value!r} must be a positive number")
    return Rate(code, when, rate)


def read_rates_csv(path: Path) -> list[Rate]:
    """The rates of a CSV file with the header `date,currency,cny_per_unit` or `currency,date,rate`
    (ValueError naming the file's line otherwise)."""
    with path.open(newline="", encoding="utf-8-sig") as f:
        reader = csv.DictReader(f)
        header = tuple(h.strip() for h in reader.fieldnames or ())
        if header not in (RATE_COLUMNS, IMPORT_COLUMNS):
            raise ValueError(
                f"{path}: the header must be {','.join(IMPORT_COLUMNS)} or {','.join(RATE_COLUMNS)}"
            )
        reader.fieldnames = list(header)
        value = "rate" if header == IMPORT_COLUMNS else "cny_per_unit"
        return [
            parse_rate(row["date"] or "", row["currency"] or "", row[value] or "", f"{path}:{n}")
            for n, row in enumerate(reader, start=2)
        ]


def configured_rates(settings: Settings | None = None) -> list[Rate]:
    """Every rate of the settings (`fx_rates`, then `fx_rates_file`); a later one of the same
    currency and day replaces an earlier one. FxRatesInvalid (503) names the bad setting or line."""
    settings = settings or get_settings()
    try:
        rates = [
            parse_rate(day, currency, value, f"fx_rates[{currency}][{day}]")
            for currency, days in settings.fx_rates.items()
            for day, value in days.items()
        ]
        if settings.fx_rates_file is not None:
            rates += read_rates_csv(settings.fx_rates_file)
    except (OSError, ValueError, KeyError) as exc:
        raise FxRatesInvalid("bad_fx_rates", f"exchange rates: {exc}") from exc
    latest = {(r.currency, r.day): r for r in rates}
    return sorted(latest.values(), key=lambda r: (r.currency, r.day))


def stored_rates(session: Session | None = None) -> list[Rate]:
    """The rates imported into the operational store (`liebian fx import`), by currency and day."""
    query = select(FxRate.currency, FxRate.day, FxRate.cny_per_unit).order_by(FxRate.currency, FxRate.day)
    if session is not None:
        return [Rate(c, d, Decimal(v)) for c, d, v in session.execute(query)]
    with session_scope() as own:
        return [Rate(c, d, Decimal(v)) for c, d, v in own.execute(query)]


def usable_rates(settings: Settings | None = None) -> list[Rate]:
    """What conversion uses: the stored rates, with the settings' rates on top (a setting replaces
    the stored rate of the same currency and day)."""
    merged = {(r.currency, r.day): r for r in stored_rates()}
    merged.update({(r.currency, r.day): r for r in configured_rates(settings)})
    return sorted(merged.values(), key=lambda r: (r.currency, r.day))


def import_rates(session: Session, rates: list[Rate], actor: str) -> int:
    """Store `rates` (a rate of a currency and day stored already is replaced); returns how many."""
    latest = {(r.currency, r.day): r for r in rates}
    for rate in latest.values():
        row = session.get(FxRate, (rate.currency, rate.day))
        if row is None:
            row = FxRate(currency=rate.currency, day=rate.day)
            session.add(row)
        row.cny_per_unit = str(rate.cny_per_unit)
        row.imported_by = actor
        row.imported_at = utcnow()
    session.flush()
    return len(latest)


def local_day(ts: datetime, settings: Settings) -> date:
    """The day, in the configured zone, of a naive UTC time."""
    return ts.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(settings.timezone)).date()


def no_rate_reason(currency: str, day: date | str, staleness_days: int) -> str:
    """Why an amount was refused (the import's rejects and the API's 422 say the same)."""
    return f"no {currency}→{BASE} rate on or before {day} (at most {staleness_days} days old)"


def rate_on(rates: list[Rate], currency: str, day: date, staleness_days: int) -> Rate | None:
    """The latest rate of `currency` dated on or before `day` and at most `staleness_days` older."""
    usable = [
        r for r in rates if r.currency == currency and day - timedelta(days=staleness_days) <= r.day <= day
    ]
    return max(usable, key=lambda r: r.day, default=None)


def to_fen(amount: int, rate: Decimal) -> int:
    """Hundredths of a currency's unit times CNY per unit, rounded half-up to a whole fen."""
    return int((Decimal(amount) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def to_cny(amount: int, currency: str, ts: datetime, settings: Settings | None = None) -> Converted:
    """`amount` (hundredths of `currency`'s unit) at naive UTC time `ts` in fen of CNY, or FxError."""
    settings = settings or get_settings()
    if currency == BASE:
        return Converted(amount, amount, BASE, None)
    day = local_day(ts, settings)
    rate = rate_on(usable_rates(settings), currency, day, settings.fx_max_staleness_days)
    if rate is None:
        raise FxError(
            "no_fx_rate",
            f"currency: {no_rate_reason(currency, day, settings.fx_max_staleness_days)}",
            field="currency",
            params={"currency": currency, "day": str(day)},
        )
    return Converted(to_fen(amount, rate.cny_per_unit), amount, currency, rate.cny_per_unit)


def in_cny(request: PricedT, ts: datetime, settings: Settings | None = None) -> PricedT:
    """A request (a pydantic model with `amount_fen` and `currency`) with its amount in fen of CNY:
    itself when in CNY already, else a copy converted at naive UTC time `ts` (FxError: 422)."""
    if request.currency == BASE:
        return request
    converted = to_cny(request.amount_fen, request.currency, ts, settings)
    return cast(PricedT, request.model_copy(update={"amount_fen": converted.amount_fen, "currency": BASE}))
