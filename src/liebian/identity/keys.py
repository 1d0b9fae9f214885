"""How an identifier becomes a stored key and a person id — shared by row-wise and bulk paths."""

from __future__ import annotations

import hashlib

from liebian.errors import Invalid
from liebian.privacy.crypto import identifier_hmac, mask_identifier, mask_phone, normalize_phone

ID_TYPES = (
    "unionid",
    "openid",
    "external_userid",
    "phone",
    "device_id",
    "app_user",
    "douyin_openid",
    "xhs_id",
    "payment_account",
)
# Identifier types a human has at most one of: evidence that would give a person two different
# values of one of these is a conflict and merges nothing.
SINGULAR_TYPES = frozenset({"unionid", "external_userid", "app_user", "douyin_openid", "xhs_id"})
# Identifiers that are themselves personal data: stored as HMAC + ciphertext, shown masked.
DIRECT_TYPES = frozenset({"phone", "payment_account"})


class IdentifierError(Invalid, ValueError):
    """An identifier that cannot be used; `field` may be renamed by the caller that knows the request."""

    summary = "invalid request"

    def __init__(self, field: str, reason: str):
        self.reason = reason
        super().__init__("invalid", f"{field}: {reason}", field=field)

    @property
    def errors(self) -> list[dict]:
        return [{"field": self.field or "", "reason": self.reason}]

    @errors.setter
    def errors(self, value: list[dict] | None) -> None:
        self._errors = value


def check_id_type(id_type: str, field: str = "id_type") -> str:
    id_type = (id_type or "").strip().lower()
    if id_type not in ID_TYPES:
        raise IdentifierError(field, f"unknown id_type {id_type!r}; expected one of {', '.join(ID_TYPES)}")
    return id_type


# Stored values live in VARCHAR(128) columns; an HMAC is 64 hex characters.
MAX_VALUE_LENGTH = 128
# E.164 allows at most 15 digits; the same 7–15 bounds as the importers (ingest.normalize).
PHONE_MIN_DIGITS, PHONE_MAX_DIGITS = 7, 15


def stored_value(id_type: str, raw: str) -> str:
    """The value kept in every table: an HMAC for direct identifiers, else the trimmed raw value.

    Raises IdentifierError for an empty value (it would join every row that lacks the identifier
    into one person), an over-long one, or a phone that has no plausible number of digits.
    """
    raw = "" if raw is None else str(raw).strip()
    if not raw:
        raise IdentifierError(id_type, "empty identifier value")
    if id_type == "phone":
        digits = normalize_phone(raw)
        if not PHONE_MIN_DIGITS <= len(digits) <= PHONE_MAX_DIGITS:
            raise IdentifierError(
                id_type,
                f"not a phone number: {len(digits)} digits (expected {PHONE_MIN_DIGITS}–{PHONE_MAX_DIGITS})",
            )
        return identifier_hmac(digits)
    if id_type in DIRECT_TYPES:
        return identifier_hmac(raw)
    if len(raw) > MAX_VALUE_LENGTH:
        raise IdentifierError(id_type, f"identifier longer than {MAX_VALUE_LENGTH} characters")
    return raw


def display_value(id_type: str, raw: str) -> str:
    if id_type == "phone":
        return mask_phone(normalize_phone(raw))
    return mask_identifier(raw.strip())


# 53 bits: person ids travel through JSON to browsers, where integers above 2**53 lose precision.
# A collision (about 1 in 18,000 at a million persons) is caught at registration and salted away.
PERSON_ID_SHIFT = 128 - 53


def person_id_for(id_type: str, value: str) -> int:
    """53-bit id from the first identifier of a person; equals DuckDB's `person_id_sql`."""
    digest = hashlib.md5(f"{id_type}:{value}".encode()).digest()
    return int.from_bytes(digest, "little") >> PERSON_ID_SHIFT


def assign_person_ids(wanted: dict[tuple[str, str], int], taken: set[int]) -> dict[tuple[str, str], int]:
    """Resolve id clashes in place: a key whose id is taken (a hash collision or a deleted
    person's tombstone) gets a salted id instead. `taken` grows with the ids handed out."""
    for key, pid in wanted.items():
        salt = 0
        while pid in taken:
            salt += 1
            pid = person_id_for(key[0], f"{key[1]}#{salt}")
        wanted[key] = pid
        taken.add(pid)
    return wanted


def person_id_sql(id_type_expr: str, value_expr: str) -> str:
    """The same id computed inside DuckDB (md5_number reads the digest little-endian)."""
    return f"(md5_number({id_type_expr} || ':' || {value_expr}) >> {PERSON_ID_SHIFT})::BIGINT"
