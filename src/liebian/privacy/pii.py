"""Personal identifiers in free text and extra columns: find them, and hash + mask or drop them.

What is found (`find`):

- mainland mobile numbers (`13812345678`, `138 1234 5678`, `138-1234-5678`, with `+86`/`0086`);
- Chinese resident ID numbers: 18 characters with a region digit, a birth date and, last, the
  ISO 7064 MOD 11-2 check (`0`-`9` or `X`);
- e-mail addresses;
- bank-card numbers: 15-19 digits (plain, or in groups of four) with a card issuer's prefix,
  passing the Luhn check.

What replaces them (`scrub`), per `Settings.pii_policy`:

- `hash` (default): `[phone:138****1234:<hmac>]` — the masked form for people, and the project's
  identifier HMAC (`privacy.crypto.identifier_hmac`, the value identity_map holds for a phone) for
  joins; e-mails are hashed lower-cased, ID numbers upper-cased, cards and phones as digits;
- `drop`: `[phone]` — the type alone.

The ingest pipeline applies `scrub_batch` once per batch, after normalising (`ingest/pipeline.py`):
the rows' properties (every column outside the generic format), message text and the rejects'
raw rows and reasons. A cheap SQL pre-filter (`CANDIDATE_SQL`) picks the values that may hold an
identifier; only those reach Python.
"""

from __future__ import annotations

import contextlib
import itertools
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from liebian.config import get_settings
from liebian.privacy.crypto import identifier_hmac, mask_email, mask_id_card, mask_phone

if TYPE_CHECKING:
    import duckdb

POLICIES = ("hash", "drop")
KINDS = ("id_card", "bank_card", "phone", "email")

# Every value `find` can match contains one of these (RE2 syntax, for DuckDB): 11 digits in a row,
# a 3-4-4 grouping, or an '@'. Values without any of them skip Python entirely.
CANDIDATE_SQL = r"@|\d{11}|\d{3}[ -]\d{4}[ -]\d{4}"

_ID_CARD = re.compile(r"(?<![0-9A-Za-z])(\d{17}[0-9Xx])(?![0-9A-Za-z])")
_BANK_CARD = re.compile(
    r"(?<![0-9A-Za-z-])(\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,3})?|\d{15,19})(?![0-9A-Za-z-])"
)
_PHONE = re.compile(
    r"(?<![0-9A-Za-z+])((?:\+86|0086)[ -]?)?(1[3-9]\d(?:\d{8}|[ -]\d{4}[ -]\d{4}))(?![0-9A-Za-z])"
)
_EMAIL = re.compile(r"(?<![\w.+-])[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,24}")
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK = "10X98765432"


# Issuer prefixes of the cards sold in China (UnionPay 62, Visa 4, Mastercard 51-55 and 22-27,
# JCB 35, American Express 34/37): other Luhn-valid runs of digits (order numbers) stay as they are.
_CARD_PREFIX = re.compile(r"62|4|5[1-5]|2[2-7]|3[457]")


def id_card_valid(value: str) -> bool:
    """An 18-character resident ID number: region digit 1-8, a real birth date from 1900 on, and
    its last character the ISO 7064 MOD 11-2 check."""
    if len(value) != 18 or not value[:17].isdigit() or value[0] not in "12345678":
        return False
    year, month, day = int(value[6:10]), int(value[10:12]), int(value[12:14])
    if not (1900 <= year <= 2100 and 1 <= month <= 12 and 1 <= day <= 31):
        return False
    total = sum(int(d) * w for d, w in zip(value[:17], _ID_WEIGHTS, strict=True))
    return _ID_CHECK[total % 11] == value[17].upper()


def luhn_valid(digits: str) -> bool:
    if not digits.isdigit():
        return False
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


@dataclass(frozen=True)
class Found:
    kind: str  # id_card | bank_card | phone | email
    start: int
    end: int
    value: str  # the normalised identifier (digits, upper-case ID, lower-case e-mail)


def _spans(text: str) -> Iterator[Found]:
    for m in _ID_CARD.finditer(text):
        if id_card_valid(m.group(1)):
            yield Found("id_card", m.start(1), m.end(1), m.group(1).upper())
    for m in _BANK_CARD.finditer(text):
        digits = re.sub(r"\D", "", m.group(1))
        if 15 <= len(digits) <= 19 and _CARD_PREFIX.match(digits) and luhn_valid(digits):
            yield Found("bank_card", m.start(1), m.end(1), digits)
    for m in _PHONE.finditer(text):
        yield Found("phone", m.start(), m.end(), re.sub(r"\D", "", m.group(2)))
    for m in _EMAIL.finditer(text):
        yield Found("email", m.start(), m.end(), m.group(0).lower())


def find(text: str) -> list[Found]:
    """The identifiers in `text`, left to right, without overlaps (an ID number or a card wins over
    a phone inside it; the earlier, then the longer match wins)."""
    found = sorted(_spans(text), key=lambda f: (f.start, -(f.end - f.start), KINDS.index(f.kind)))
    kept: list[Found] = []
    for f in found:
        if not kept or f.start >= kept[-1].end:
            kept.append(f)
    return kept


def mask(kind: str, value: str) -> str:
    if kind == "phone":
        return mask_phone(value)
    if kind == "email":
        return mask_email(value)
    if kind == "id_card":
        return mask_id_card(value)
    return "*" * 4 + value[-4:]  # bank card: the last four, as on a receipt


def replacement(found: Found, policy: str) -> str:
    if policy == "drop":
        return f"[{found.kind}]"
    return f"[{found.kind}:{mask(found.kind, found.value)}:{identifier_hmac(found.value)}]"


def scrub(text: str | None, policy: str | None = None) -> str | None:
    """`text` with every identifier replaced per the policy (`Settings.pii_policy` by default)."""
    if not text:
        return text
    found = find(text)
    if not found:
        return text
    policy = policy or get_settings().pii_policy
    parts: list[str] = []
    pos = 0
    for f in found:
        parts.append(text[pos : f.start])
        parts.append(replacement(f, policy))
        pos = f.end
    parts.append(text[pos:])
    return "".join(parts)


def clear_identifiers(values: Iterable[object]) -> list[tuple[str, str]]:
    """(kind, value) of every identifier in clear among `values` (text, bytes read as UTF-8)."""
    out: list[tuple[str, str]] = []
    for v in values:
        if v is None:
            continue
        text = v.decode("utf-8", "replace") if isinstance(v, bytes | bytearray) else str(v)
        out.extend((f.kind, f.value) for f in find(text))
    return out


# ---------------------------------------------------------------- DuckDB

UDF = "liebian_pii_scrub"
_SERIAL = itertools.count(1)


@contextlib.contextmanager
def scrubber(con: duckdb.DuckDBPyConnection) -> Iterator[str]:
    """Make a `VARCHAR -> VARCHAR` scrub function callable on `con` for one unit of work; its name.

    Each unit gets a name of its own and removes the function after it. DuckDB puts a Python
    function into the database's catalog, which every connection to the file shares, while the
    Python object lives only as long as the connection that registered it: a later connection (the
    process keeps the database open between units, `campaigns.outbox.WarehouseAnchor`) that found
    the name registered called a freed object and crashed the process.
    """
    import duckdb

    name = f"{UDF}_{next(_SERIAL)}"
    policy = get_settings().pii_policy
    con.create_function(name, lambda s: scrub(s, policy), ["VARCHAR"], "VARCHAR", side_effects=False)
    try:
        yield name
    finally:
        with contextlib.suppress(duckdb.Error):  # a failed unit may have closed the connection
            con.remove_function(name)


def scrub_sql(expr: str, udf: str) -> str:
    """SQL over `expr` that leaves values without a candidate as they are and scrubs the rest with
    the function `udf` (from `scrubber`)."""
    return f"(CASE WHEN regexp_matches({expr}, '{CANDIDATE_SQL}') THEN {udf}({expr}) ELSE {expr} END)"


def scrub_batch(con: duckdb.DuckDBPyConnection, kind: str, udf: str) -> None:
    """Scrub one ingest batch in place with the function `udf` (from `scrubber`, open until the
    batch is loaded): `staged` (properties, message text) and `batch_rejects` (the raw row and the
    reason, which may quote a value).

    `staged` is a table or a view (the CSV reader normalised while reading); a view is redefined
    over the renamed original so that no copy of the batch is made.
    """
    con.execute(
        f"UPDATE batch_rejects SET raw = {scrub_sql('raw', udf)}, reason = {scrub_sql('reason', udf)}"
        f" WHERE regexp_matches(coalesce(raw, '') || ' ' || coalesce(reason, ''), '{CANDIDATE_SQL}')"
    )
    columns = ["_props"] + (["text"] if kind == "messages" else [])
    kinds = dict(
        con.execute(
            "SELECT table_name, table_type FROM information_schema.tables"
            " WHERE table_catalog = 'temp' AND table_name IN ('staged', 'staged_unscrubbed')"
        ).fetchall()
    )
    if kinds.get("staged") == "VIEW":
        replaced = ", ".join(f"{scrub_sql(c, udf)} AS {c}" for c in columns)
        if "staged_unscrubbed" in kinds:
            con.execute("DROP VIEW staged_unscrubbed")
        con.execute("ALTER VIEW staged RENAME TO staged_unscrubbed")
        con.execute(f"CREATE TEMP VIEW staged AS SELECT * REPLACE ({replaced}) FROM staged_unscrubbed")
        return
    sets = ", ".join(f"{c} = {scrub_sql(c, udf)}" for c in columns)
    where = " OR ".join(f"regexp_matches({c}, '{CANDIDATE_SQL}')" for c in columns)
    con.execute(f"UPDATE staged SET {sets} WHERE {where}")
