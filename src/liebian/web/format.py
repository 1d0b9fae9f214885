"""How the console shows codes, messages and values to a person, in zh-CN or English.

- Codes (channels, fraud patterns, statuses, quality checks, permissions…) by their name in the
  message catalogue; a code without a name is shown as stored (and the localisation crawl finds it).
- Message parameters and table cells by type through liebian.display (counts, decimals without
  "-0.00", percentages, ¥ with 万, times in the display zone with their offset).
- A message's `code spans` (commands, file and column names) as <code> in templates.
"""

from __future__ import annotations

import re
import string
from collections.abc import Callable, Mapping
from typing import Any

from markupsafe import Markup, escape

from liebian import display
from liebian.web.i18n import translator
from liebian.web.messages import CATALOGUE

clean = display.clean
local_time = display.local_time
zone_label = display.zone_label
format_decimal = display.decimal


def format_count(value: float | int | None, locale: str) -> str:
    return display.count(value, locale)


def code_name(t: Callable[[str], str], prefix: str, code: object) -> str:
    """The catalogue's name of `code` under `prefix` (e.g. channel.douyin → 抖音), else the code."""
    key = f"{prefix}.{code}"
    return t(key) if key in CATALOGUE else str(code)


def message(locale: str, key: str, params: Mapping[str, Any], kinds: Mapping[str, str] | None = None) -> str:
    """The catalogue text of `key` filled with `params`, each formatted by its kind in `kinds` or
    by its name (display.kind_of)."""
    template = translator(locale)(key)
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    values = {}
    for name in names:
        value = params.get(name)
        kind = (kinds or {}).get(name) or display.kind_of(name, value)
        values[name] = display.by_kind(value, kind, locale)
    return template.format(**values)


_CODE_SPAN = re.compile(r"`([^`]+)`")


def rich_translator(locale: str) -> Callable[[str], str]:
    """The translator for templates: a message's `code spans` become <code>, the rest is escaped."""
    t = translator(locale)

    def rich(key: str) -> str:
        text = t(key)
        if "`" not in text:
            return text
        return Markup(_CODE_SPAN.sub(lambda m: f"<code>{m.group(1)}</code>", str(escape(text))))

    return rich


def validation_reason(error: Mapping[str, Any], locale: str) -> str:
    """A validation problem ({type, params, reason}: pydantic's error type and limits) in the
    console's language; a type the catalogue does not know keeps the reason it came with."""
    key = f"valid.{error.get('type', '')}"
    if key not in CATALOGUE:
        return str(error.get("reason") or error.get("msg") or "")
    params = dict(error.get("params") or error.get("ctx") or {})
    if "expected" in params:  # pydantic quotes the choices: 'a', 'b' or 'c'
        params["expected"] = str(params["expected"]).replace("'", "")
    return message(locale, key, params, {name: "text" for name in ("expected", "pattern")})
