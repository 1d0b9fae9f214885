"""Personal data never reaches a log: phones, e-mail addresses and ID-card numbers are masked in
every log record, whatever logger or handler it goes through.

`install()` wraps the log-record factory, so each record is masked once, when it is created — before
propagation, before any handler (ours, uvicorn's, pytest's) formats it. Exception text is formatted
and masked up front too (a traceback can carry an input value). `PIIMaskingFilter` is the same
masking as a `logging.Filter`, for handlers configured elsewhere.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

from liebian.privacy.crypto import mask_email, mask_id_card, mask_phone

# Mainland mobile numbers, optionally +86/0086 and spaces/dashes (138 1234 5678, +86-138-1234-5678);
# not part of a longer digit run (order ids, timestamps, HMAC hex).
PHONE_RE = re.compile(
    r"(?<![0-9A-Za-z])(?:(?:\+|00)86[ -]?)?(1[3-9]\d)[ -]?(\d{4})[ -]?(\d{4})(?![0-9A-Za-z])"
)
# "@" also percent-encoded (%40), as it appears in logged URLs
EMAIL_RE = re.compile(r"(?<![\w.+-])[\w.+-]{1,64}(?:@|%40)[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+")
# Resident identity card: 6-digit region, birth date 18/19/20yy mmdd, 3 digits, check digit/X.
ID_CARD_RE = re.compile(
    r"(?<![0-9A-Za-z])[1-9]\d{5}(?:18|19|20)\d{2}(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])\d{3}[\dXx](?![0-9A-Za-z])"
)


def mask_text(text: str) -> str:
    """Mask every phone number, e-mail address and ID-card number in a piece of text."""
    if not text:
        return text
    text = ID_CARD_RE.sub(lambda m: mask_id_card(m.group(0)), text)
    text = PHONE_RE.sub(lambda m: mask_phone(m.group(1) + m.group(2) + m.group(3)), text)
    return EMAIL_RE.sub(lambda m: mask_email(m.group(0).replace("%40", "@")), text)


_formatter = logging.Formatter()


def _mask_arg(value):
    if isinstance(value, str):
        return mask_text(value)
    if isinstance(value, int) and not isinstance(value, bool) and mask_text(str(value)) != str(value):
        return mask_text(str(value))  # a phone passed as a number
    return value


def _format(msg, args) -> str:
    msg = str(msg)
    return msg % args if args else msg


def mask_record(record: logging.LogRecord) -> logging.LogRecord:
    if getattr(record, "_pii_masked", False):
        return record
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: keep what logging would show, masked
        message = f"{record.msg!r} {record.args!r}"
    masked = mask_text(message)
    if masked != message:
        # Mask the parts and keep msg/args apart when that is enough: some formatters (uvicorn's
        # access log) read record.args themselves. Otherwise keep only the masked text.
        args = record.args
        new_args: tuple[object, ...] | Mapping[str, object] | None
        if isinstance(args, tuple):
            new_args = tuple(_mask_arg(a) for a in args)
        elif isinstance(args, dict):
            new_args = {k: _mask_arg(v) for k, v in args.items()}
        else:
            new_args = args
        new_msg = mask_text(record.msg) if isinstance(record.msg, str) else record.msg
        try:
            candidate = _format(new_msg, new_args)
        except Exception:
            candidate = None
        if candidate is not None and mask_text(candidate) == candidate:
            record.msg, record.args = new_msg, new_args
        else:
            record.msg, record.args = masked, None
    if record.exc_info and not record.exc_text:
        record.exc_text = _formatter.formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = mask_text(record.exc_text)
    if record.stack_info:
        record.stack_info = mask_text(record.stack_info)
    record._pii_masked = True
    return record


class PIIMaskingFilter(logging.Filter):
    """Masks the record in place and lets it through."""

    def filter(self, record: logging.LogRecord) -> bool:
        mask_record(record)
        return True


_installed = False


def install() -> None:
    """Mask every log record of this process (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args, **kwargs) -> logging.LogRecord:
        return mask_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True
