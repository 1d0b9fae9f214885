"""Pydantic building blocks shared by every domain's schemas.py."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    PlainSerializer,
    TypeAdapter,
    ValidationInfo,
    WithJsonSchema,
)

from liebian.config import get_settings


class Request(BaseModel):
    """The base of every request body: an unknown field is refused (422 naming it), never ignored —
    a misspelled field must not silently fall back to a default (tests/test_strict_requests.py
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
    return value.astimezone(UTC).replace(tzinfo=None)


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
