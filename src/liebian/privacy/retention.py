"""Retention (warehouse rows older than the configured days are deleted) and key rotation (re-sealing
ciphertexts under the active key, which key seals what). The data inventory is `inventory.py`."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from liebian.auth.service import audit
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import eventstore, warehouse
from liebian.privacy.crypto import decrypt, encrypt, key_id_of, keys
from liebian.privacy.sealed import SEALED_FIELDS, SealedField, ciphertexts, reseal
from liebian.privacy.service import store_tables, warehouse_count

RETENTION_COLUMNS = {"events": "ts", "messages": "ts", "rejects": "rejected_at"}


def apply_retention(now: datetime | None = None, actor: str = "system:retention") -> dict[str, int]:
    """Delete warehouse rows older than the configured days (settings.retention_days; 0 keeps)."""

    now = now or utcnow()
    days = get_settings().retention_days
    deleted: dict[str, int] = {}
    with warehouse.connect() as con:
        for table, column in RETENTION_COLUMNS.items():
            keep = int(days.get(table, 0) or 0)
            if keep <= 0:
                continue
            cutoff = now - timedelta(days=keep)
            deleted[table] = warehouse_count(con, f"DELETE FROM {table} WHERE {column} < ?", [cutoff])
        eventstore.commit(con)  # the Parquet store drops the same days
    with session_scope() as s:
        audit(s, actor, "privacy.retention", "warehouse", {"deleted": deleted, "days": days})
    return deleted


def reencrypt_all(session: Session, batch: int = 1000) -> dict[str, int]:
    """Re-seal every ciphertext that is not under the active key (every field of
    privacy.sealed.SEALED_FIELDS); returns the ciphertexts re-sealed per table."""

    active = keys().active_kid

    def reseal_token(token: str) -> str | None:
        return None if key_id_of(token) == active else encrypt(decrypt(token))

    counts: dict[str, int] = {}
    for field, table in _present_fields(session):
        col, key = table.c[field.column], table.c[field.pk]
        done = rows = 0
        for row_id, value in session.execute(select(key, col).where(col.is_not(None) & (col != ""))).all():
            stale = sum(1 for token in ciphertexts(field, value) if key_id_of(token) != active)
            if not stale:
                continue
            new = reseal(field, value, reseal_token)
            session.execute(update(table).where(key == row_id).values({field.column: new}))
            done += stale
            rows += 1
            if rows % batch == 0:
                session.flush()
        counts[field.table] = counts.get(field.table, 0) + done  # a table may seal several columns
    return counts


def key_usage(session: Session) -> dict[str, int]:
    """How many ciphertexts each key id seals (a key can be retired when it seals none)."""
    usage: dict[str, int] = {}
    for field, table in _present_fields(session):
        col = table.c[field.column]
        for (value,) in session.execute(select(col).where(col.is_not(None) & (col != ""))):
            for token in ciphertexts(field, value):
                kid = key_id_of(token)
                usage[kid] = usage.get(kid, 0) + 1
    return usage


def _present_fields(session: Session) -> list[tuple[SealedField, Table]]:
    tables = {t.name: t for t in store_tables(session)}
    return [(f, tables[f.table]) for f in SEALED_FIELDS if f.table in tables]
