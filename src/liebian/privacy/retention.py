"""Retention (warehouse rows older than the configured days are deleted), key rotation (re-sealing
ciphertexts under the active key, which key seals what) and the data inventory."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Table, select, update
from sqlalchemy.orm import Session

from liebian.auth.service import audit
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.privacy.crypto import decrypt, encrypt, key_id_of, keys
from liebian.privacy.service import store_tables, warehouse_count

# Ciphertext columns re-sealed when the encryption key rotates: (table, primary key, column)
CIPHERTEXT_COLUMNS = (
    ("identifiers", "id", "encrypted_value"),
    ("webhook_endpoints", "id", "secret_encrypted"),
    ("report_subscriptions", "id", "secret_encrypted"),
    ("monitor_channels", "id", "target_encrypted"),
    ("monitor_channels", "id", "secret_encrypted"),
    ("campaign_order_shops", "shop_id", "secret_sealed"),  # shops' order-callback secrets
    ("campaign_orders", "id", "pending_detail"),  # a pending conversion's context, until judged
)


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
    with session_scope() as s:
        audit(s, actor, "privacy.retention", "warehouse", {"deleted": deleted, "days": days})
    return deleted


def reencrypt_all(session: Session, batch: int = 1000) -> dict[str, int]:
    """Re-seal every ciphertext that is not under the active key; returns counts per table."""

    active = keys().active_kid
    tables = {t.name: t for t in store_tables(session)}
    counts: dict[str, int] = {}
    for name, pk, column in CIPHERTEXT_COLUMNS:
        table: Table | None = tables.get(name)
        if table is None:
            continue
        col, key = table.c[column], table.c[pk]
        done = 0
        sealed = col.is_not(None) & (col != "")  # "" marks "no secret"
        for row_id, token in session.execute(select(key, col).where(sealed)).all():
            if key_id_of(token) == active:
                continue
            session.execute(update(table).where(key == row_id).values({column: encrypt(decrypt(token))}))
            done += 1
            if done % batch == 0:
                session.flush()
        counts[name] = counts.get(name, 0) + done  # a table may seal several columns
    return counts


def key_usage(session: Session) -> dict[str, int]:
    """How many ciphertexts each key id seals (a key can be retired when it seals none)."""
    tables = {t.name: t for t in store_tables(session)}
    usage: dict[str, int] = {}
    for name, _pk, column in CIPHERTEXT_COLUMNS:
        table = tables.get(name)
        if table is None:
            continue
        sealed = table.c[column].is_not(None) & (table.c[column] != "")
        for (token,) in session.execute(select(table.c[column]).where(sealed)):
            kid = key_id_of(token)
            usage[kid] = usage.get(kid, 0) + 1
    return usage


def data_inventory() -> list[dict]:
    """Which personal data liebian holds, for which purpose, protected how and kept how long."""
    days = get_settings().retention_days

    def keep(table: str) -> str:
        n = int(days.get(table, 0) or 0)
        return f"{n} days" if n else "until erased"

    return [
        {
            "data": "phone number, payment account",
            "where": "identifiers (operational)",
            "purpose": "collection",
            "protection": "HMAC-SHA256 for joining + AES-256-GCM for audited reveal; masked 138****1234",
            "retention": "until erased",
        },
        {
            "data": "channel ids (unionid, openid, external_userid, device id, app user)",
            "where": "identifiers, identity_map",
            "purpose": "collection",
            "protection": "shown masked; role identity:read",
            "retention": "until erased",
        },
        {
            "data": "behaviour events (with device id, IP)",
            "where": "warehouse events",
            "purpose": "analytics",
            "protection": "person id pseudonym; phones only as HMAC",
            "retention": keep("events"),
        },
        {
            "data": "orders",
            "where": "warehouse orders, campaign_orders",
            "purpose": "collection",
            "protection": "person id pseudonym",
            "retention": "accounting: until erased (identifiers removed on erasure)",
        },
        {
            "data": "community messages (free text)",
            "where": "warehouse messages",
            "purpose": "analytics",
            "protection": "text cleared on erasure",
            "retention": keep("messages"),
        },
        {
            "data": "rejected import rows (raw input)",
            "where": "warehouse rejects",
            "purpose": "collection (data quality)",
            "protection": "deleted on erasure",
            "retention": keep("rejects"),
        },
        {
            "data": "referrals, rewards, ledger",
            "where": "campaign_*, rewards, ledger_entries",
            "purpose": "marketing",
            "protection": "person id only; ledger hash-chained",
            "retention": "ledger kept (pseudonymous)",
        },
        {
            "data": "fraud signals (device id, IP)",
            "where": "fraud_sightings, fraud_cases",
            "purpose": "collection (fraud prevention)",
            "protection": "roles fraud:read / fraud:review",
            "retention": "until erased",
        },
        {
            "data": "consent records",
            "where": "consent_records",
            "purpose": "proof of consent",
            "protection": "append-only",
            "retention": "until erased",
        },
        {
            "data": "console users, audit log (actor, IP)",
            "where": "auth_users, audit_log",
            "purpose": "security",
            "protection": "argon2id passwords; hash-chained audit; auditors only",
            "retention": "kept",
        },
    ]
