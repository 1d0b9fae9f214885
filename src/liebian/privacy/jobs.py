"""Scheduled privacy jobs: retention (raw rows older than N days) and re-encryption after a key rotation."""

from __future__ import annotations

from liebian.db.session import session_scope
from liebian.ports import Job
from liebian.privacy import retention as retention_policy


def retention() -> dict:
    """Delete warehouse events, messages and rejected rows older than settings.retention_days."""
    return retention_policy.apply_retention()


def reencrypt() -> dict:
    """Re-seal ciphertexts still under an old encryption key (a no-op when none are)."""
    with session_scope() as s:
        return retention_policy.reencrypt_all(s)


JOBS = (
    Job("privacy-retention", retention, every_seconds=24 * 3600),
    Job("privacy-reencrypt", reencrypt, every_seconds=3600),
)
