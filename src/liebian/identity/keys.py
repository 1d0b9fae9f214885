"""How an identifier becomes a stored key and a person id — shared by row-wise and bulk paths."""

from __future__ import annotations

import hashlib

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


class IdentifierError(ValueError):
    def __init__(self, field: str, reason: str):
        super().__init__(f"{field}: {reason}")
        self.field = field
        self.reason = reason


def check_id_type(id_type: str, field: str = "id_type") -> str:
    id_type = (id_type or "").strip().lower()
    if id_type not in ID_TYPES:
        raise IdentifierError(field, f"unknown id_type {id_type!r}; expected one of {', '.join(ID_TYPES)}")
    return id_type


def stored_value(id_type: str, raw: str) -> str:
    """The value kept in every table: an HMAC for direct identifiers, else the trimmed raw value."""
    raw = raw.strip()
    if id_type == "phone":
        return identifier_hmac(normalize_phone(raw))
    if id_type in DIRECT_TYPES:
        return identifier_hmac(raw)
    return raw


def display_value(id_type: str, raw: str) -> str:
    if id_type == "phone":
        return mask_phone(normalize_phone(raw))
    return mask_identifier(raw.strip())


def person_id_for(id_type: str, value: str) -> int:
    """63-bit id from the first identifier of a person; equals DuckDB's PERSON_ID_SQL."""
    digest = hashlib.md5(f"{id_type}:{value}".encode()).digest()
    return int.from_bytes(digest, "little") >> 65


def person_id_sql(id_type_expr: str, value_expr: str) -> str:
    """The same id computed inside DuckDB (md5_number reads the digest little-endian)."""
    return f"(md5_number({id_type_expr} || ':' || {value_expr}) >> 65)::BIGINT"
