"""The one error model of liebian: a `DomainError` carries a stable code, the field at fault, the HTTP
status and the message in English and in Simplified Chinese.

Domains raise subclasses (one per domain, e.g. `LedgerError`, usually also one of the kinds below);
the web app has one handler that turns any of them into the JSON body API clients read:

    {"detail": <message in the asked language>, "code": …, "field": …,
     "message_en": …, "message_zh": …, "errors": [{"field": …, "reason": …}]   # errors: 422 only
    }

Chinese messages come from `liebian.error_messages` (code → templates); the English message is the
one given at the raise site, or the catalogue's when none is given.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from liebian.error_messages import MESSAGES

_FIELD_NAME = re.compile(r"[A-Za-z_][\w.\-\[\]]*")


class DomainError(Exception):
    """A request a domain refuses. Backward compatible: `DomainError(code, message, status=None)`."""

    default_status = 400
    # When set, the English `detail` is this summary and the message goes to errors[].reason (the
    # "invalid request" shape of the app's own validation errors, which some domains answer with).
    summary: str | None = None
    # seconds after which a retry may succeed (429, 503): sent as the Retry-After header
    retry_after: int | None = None

    def __init__(
        self,
        code: str,
        message: str = "",
        status: int | None = None,
        *,
        field: str | None = None,
        message_zh: str | None = None,
        errors: list[dict] | None = None,
        params: dict[str, Any] | None = None,
    ):
        en_template, zh_template = _templates(code)
        self.code = code
        self.field = field
        self.params = dict(params or {})
        self.message = message or _fill(en_template, self) or code
        super().__init__(self.message)
        self.status = status or self.default_status
        if field is None and self.status == 422 and self.summary is None:
            self.field = _field_named_in(self.message)
        self.message_zh = message_zh or _fill(zh_template, self) or self.message
        self._errors = errors

    # -- what a client receives ---------------------------------------------------------------

    @property
    def errors(self) -> list[dict]:
        """[{field, reason}]: given at the raise site, else derived for a 422."""
        if self._errors is not None:
            return self._errors
        if self.status != 422:
            return []
        if self.summary is not None:  # detail is the summary: the reason is the whole message
            return [{"field": self.field or "", "reason": self.message}]
        field, _, reason = self.message.partition(": ")
        if self.field is not None and not reason:
            return [{"field": self.field, "reason": self.message}]
        return [{"field": self.field or (field if reason else ""), "reason": reason or self.message}]

    @errors.setter
    def errors(self, value: list[dict] | None) -> None:
        self._errors = value

    def response_body(self, lang: str = "en") -> dict:
        """The JSON body of the HTTP answer; `detail` in the asked language."""
        detail = self.message_zh if lang == "zh-CN" else self.summary or self.message
        body: dict[str, Any] = {
            "detail": detail,
            "code": self.code,
            "field": self.field,
            "message_en": self.message,
            "message_zh": self.message_zh,
        }
        if self._errors is not None or self.status == 422:
            body["errors"] = self.errors
        return body

    def as_dict(self) -> dict:
        return self.response_body("en")


class Invalid(DomainError):
    """The input breaks a rule (the field says which)."""

    default_status = 422


class NotFound(DomainError):
    default_status = 404


class Conflict(DomainError):
    """The request does not fit the current state (already decided, exists, wrong state…)."""

    default_status = 409


class Unauthorized(DomainError):
    default_status = 401


class Forbidden(DomainError):
    default_status = 403


class Unavailable(DomainError):
    """Not the caller's fault: a resource is busy or a dependency is down; retrying may work."""

    default_status = 503


class BadGateway(DomainError):
    """A service outside liebian (WeCom, a webhook target) answered with an error."""

    default_status = 502


def _field_named_in(message: str) -> str | None:
    """The field of a "field: reason" message (the convention of liebian's 422 messages)."""
    name, sep, _reason = message.partition(": ")
    return name if sep and _FIELD_NAME.fullmatch(name) else None


def _templates(code: str) -> tuple[str | None, str | None]:
    """(English, Chinese) templates of a code; the catalogue stores them Chinese first."""
    zh, en = MESSAGES.get(code, (None, None))
    return en, zh


def _fill(template: str | None, exc: DomainError) -> str | None:
    if template is None:
        return None
    values = {"field": exc.field or "", "message": getattr(exc, "message", ""), **exc.params}
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template  # a raise site without the template's parameters: the plain sentence


@contextmanager
def blame(field: str) -> Iterator[None]:
    """Errors raised inside name `field` when their raise site did not (the router knows which
    parameter an analysis error is about; the analysis does not)."""
    try:
        yield
    except DomainError as exc:
        if exc.field is None:
            exc.field = field
        raise


def request_lang(accept_language: str | None, query_lang: str | None) -> str:
    """'zh-CN' when the client asks for Chinese (?lang=zh-CN wins over Accept-Language), else 'en'."""
    if query_lang:
        return "zh-CN" if query_lang.lower().startswith("zh") else "en"
    first = (accept_language or "").split(",")[0].strip().lower()
    return "zh-CN" if first.startswith("zh") else "en"


_KIND_CODES = {401: "unauthorized", 403: "forbidden", 404: "not_found", 409: "conflict", 422: "invalid"}


def code_for(status: int) -> str:
    """The stable code of a domain whose errors are told apart only by their status."""
    return _KIND_CODES.get(status, "invalid")
