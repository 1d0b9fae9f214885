"""Limits on what a request may carry, before any route parses it: query values, JSON nesting.

The body size is capped by FastAPI itself (`max_body_size`, setting `max_request_bytes`); this
middleware refuses a query value longer than `max_query_value_chars` and a JSON body nested deeper
than `max_json_depth`, with the 422 every liebian validation error has, naming the parameter (or
the body) and the reason. Deep nesting costs recursion in every parser and encoder after it
(orjson stops at 255 levels, Python's own at about 1,000).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl

import orjson

from liebian.config import get_settings
from liebian.lazy import lazy_import

if TYPE_CHECKING:
    import numpy as np
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    np = lazy_import("numpy")

# A JSON string (escapes included): its brackets are text, not nesting.
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_BODY_METHODS = {"POST", "PUT", "PATCH", "DELETE"}


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays and objects in a JSON text (strings skipped)."""
    if body.count(b"[") + body.count(b"{") == 0:
        return 0
    brackets = _STRING.sub(b"", body).translate(None, delete=_NOT_BRACKETS)
    codes = np.frombuffer(brackets, dtype=np.uint8)
    steps = np.where((codes == ord("[")) | (codes == ord("{")), 1, -1).astype(np.int32)
    return int(np.cumsum(steps).max(initial=0))


def _is_json(scope) -> bool:
    for name, value in scope.get("headers") or ():
        if name == b"content-type":
            return b"json" in value.lower()
    return False


def long_query_value(query_string: bytes, limit: int) -> str | None:
    """The name of the first query parameter whose value is longer than `limit` characters."""
    if len(query_string) <= limit:
        return None
    for name, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        if len(value) > limit:
            return name
    return None


class InputLimitsMiddleware:
    """Pure ASGI: refuses an over-long query value; reads a JSON request body, refuses it when
    nested too deep, else replays it."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        settings = get_settings()
        name = long_query_value(scope.get("query_string") or b"", settings.max_query_value_chars)
        if name is not None:
            limit = settings.max_query_value_chars
            await _refuse(send, f"query.{name}", f"longer than {limit} characters")
            return
        if scope.get("method") not in _BODY_METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        messages = []
        while True:
            message = await receive()
            messages.append(message)
            if message["type"] != "http.request":
                break  # the client left
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        limit = settings.max_json_depth
        # no deeper than its count of opening brackets: most bodies need no scan (numpy costs ~40 µs)
        if body.count(b"[") + body.count(b"{") > limit and json_depth(body) > limit:
            await _refuse(send, "body", f"the JSON body is nested deeper than {limit} levels")
            return
        replay = [{"type": "http.request", "body": body, "more_body": False}]
        if messages and messages[-1]["type"] != "http.request":
            replay = [messages[-1]]

        async def replayed():
            return replay.pop(0) if replay else await receive()

        await self.app(scope, replayed, send)


async def _refuse(send, field: str, reason: str) -> None:
    content = orjson.dumps({"detail": "invalid request", "errors": [{"field": field, "reason": reason}]})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    await send({"type": "http.response.start", "status": 422, "headers": headers})
    await send({"type": "http.response.body", "body": content})
