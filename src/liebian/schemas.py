"""Pydantic building blocks shared by every domain's schemas.py."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from pydantic import BaseModel, ConfigDict, PlainSerializer, WithJsonSchema


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
