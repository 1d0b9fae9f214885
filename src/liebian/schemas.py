"""Pydantic building blocks shared by every domain's schemas.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
)

from liebian.config import Settings, get_settings


class Request(BaseModel):
    """The base of every request body: an unknown field is refused (422 naming it), never ignored —
    a misspelled field must not silently fall back to a default (tests/web/test_api_strict_requests.py
    checks every JSON body of the app)."""

    model_config = ConfigDict(extra="forbid")


def utc_iso(value: datetime) -> str:
    """Times are naive UTC inside liebian; at the edge they carry their zone (RFC 3339)."""
    return value.isoformat() + "Z" if value.tzinfo is None else value.isoformat()


def encode(value):
    """JSON-ready, with naive-UTC datetimes as RFC 3339 (for handlers that build their response)."""
    # deferred: the CLI's output shares this module and should not load FastAPI
    from fastapi.encoders import jsonable_encoder

    return jsonable_encoder(value, custom_encoder={datetime: utc_iso})


# A naive-UTC datetime, sent as RFC 3339 with "Z".
UtcDateTime = Annotated[
    datetime,
    PlainSerializer(utc_iso, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]


def to_utc(value: datetime, *, naive_utc: bool = False) -> datetime:
    """The naive-UTC time of an edge value: an aware time converted; a naive one is in the configured
    display zone (`Settings.timezone`, Asia/Shanghai by default), or UTC where `naive_utc` (liebian's
    own stored documents, written before their times carried a zone)."""
    if value.tzinfo is None:
        if naive_utc:
            return value
        value = value.replace(tzinfo=ZoneInfo(get_settings().timezone))
    try:
        return value.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:  # year 1 east of UTC, year 9999 west of it: a ValueError names the field
        raise ValueError("time outside the representable range") from None


def _edge(value: datetime, info: ValidationInfo) -> datetime:
    context = info.context if isinstance(info.context, dict) else {}
    return to_utc(value, naive_utc=bool(context.get("naive_utc")))


# A time at the edge (request bodies, query parameters, rules documents): RFC 3339 with `Z` or an
# offset (`+08:00`), or naive = the configured display zone; held as naive UTC inside, sent back
# as RFC 3339 with "Z" (so a stored document reads back the same).
EdgeDateTime = Annotated[
    datetime,
    AfterValidator(_edge),
    PlainSerializer(utc_iso, return_type=str, when_used="json"),
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "description": "RFC 3339 with Z or an offset; without one, the configured display zone",
        }
    ),
]

_EDGE: TypeAdapter[datetime] = TypeAdapter(EdgeDateTime)


def parse_edge_datetime(text: str) -> datetime:
    """A command-line time (`2026-12-31`, `2026-12-31T08:00`, `…Z`, `…+08:00`) as naive UTC;
    ValueError naming the accepted forms otherwise."""
    text = text.strip()
    try:
        if len(text) == 10:  # a date alone: its midnight in the display zone
            return to_utc(datetime.fromisoformat(text))
        return _EDGE.validate_python(datetime.fromisoformat(text.replace("Z", "+00:00")))
    except ValueError:
        raise ValueError(f"{text!r} is not a time: use 2026-12-31, 2026-12-31T08:00, …Z or …+08:00") from None


def to_local(value: datetime) -> datetime:
    """A time as naive local time of the display zone (for inputs that name a local hour or day):
    an aware time converted, a naive one taken as local already."""
    if value.tzinfo is None:
        return value
    return value.astimezone(ZoneInfo(get_settings().timezone)).replace(tzinfo=None)


# ---------------------------------------------------------------- bounds at the edges (hostile input)

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def time_bounds(settings: Settings | None = None) -> tuple[datetime, datetime]:
    """The naive-UTC range of times accepted at the edges: `input_time_min` to now +
    `input_future_days` (a year-1 or year-9999 time would break every analysis later)."""
    settings = settings or get_settings()
    low = settings.input_time_min
    if low.tzinfo is not None:
        low = low.astimezone(UTC).replace(tzinfo=None)
    return low, datetime.now(UTC).replace(tzinfo=None) + timedelta(days=settings.input_future_days)


def _stored(info: ValidationInfo | None) -> bool:
    """Validation of what the store already holds (context {"stored": True}): edge ranges do not
    apply, the value was accepted once and must stay readable."""
    return bool(info is not None and isinstance(info.context, dict) and info.context.get("stored"))


def check_time_range(value: datetime | None, info: ValidationInfo | None = None) -> datetime | None:
    """Refuse a time outside `time_bounds()` (aware times are compared in UTC)."""
    if value is None or _stored(info):
        return value
    naive = to_utc(value, naive_utc=True)  # range checks run after the edge conversion
    low, high = time_bounds()
    if not low <= naive <= high:
        raise ValueError(f"time outside {low:%Y-%m-%d} … {high:%Y-%m-%d %H:%M} UTC")
    return value


# Planned times (a campaign's start and end) may lie further ahead, but not beyond this.
PLAN_MAX = datetime(2199, 12, 31)


def check_plan_range(value: datetime | None, info: ValidationInfo | None = None) -> datetime | None:
    """Refuse a planned time before `input_time_min` or after `PLAN_MAX`."""
    if value is None or _stored(info):
        return value
    naive = to_utc(value, naive_utc=True)  # range checks run after the edge conversion
    low = time_bounds()[0]
    if not low <= naive <= PLAN_MAX:
        raise ValueError(f"time outside {low:%Y-%m-%d} … {PLAN_MAX:%Y-%m-%d}")
    return value


# A time in the sane range: stack it on any datetime type, e.g. Annotated[UtcDateTime, InTimeRange]
# (something that happened: at most input_future_days ahead) or InPlanRange (something planned).
InTimeRange = AfterValidator(check_time_range)
InPlanRange = AfterValidator(check_plan_range)
# Integers that fit a 64-bit column; the largest amount in fen; the longest span of days.
Int64 = Annotated[int, Field(ge=INT64_MIN, le=INT64_MAX)]
MAX_FEN = 10**15  # ten trillion yuan: sums of many amounts still fit 64 bits
MAX_DAYS = 36_500
