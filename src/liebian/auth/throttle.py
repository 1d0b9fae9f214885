"""Counting failed logins in a window, per client address and per account (auth_login_failures).

Two counters, kept apart on purpose:

- per client address (`ip:<address>`): after `settings.login_ip_failures` failures within
  `settings.login_ip_window_minutes`, that address is throttled until the window ends (429 with
  Retry-After, whatever the username: the answer says nothing about accounts);
- per account (`user:<name>`): the account is locked only after ACCOUNT_FAILURES failures within
  the same window — more than one address may make — so an attacker from one address is slowed
  without locking the real user out from elsewhere.

The count is one statement per failure (INSERT … ON CONFLICT DO NOTHING, then a conditional
UPDATE), so the workers of a server share it on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import case, delete, select, update
from sqlalchemy.orm import Session

from liebian.auth.models import LoginFailures
from liebian.config import get_settings
from liebian.db.dialects import upsert_insert

ACCOUNT_FAILURES_PER_IP_LIMIT = 3  # the account locks after 3 × the per-address limit in a window


def window() -> timedelta:
    return timedelta(minutes=get_settings().login_ip_window_minutes)


def ip_limit() -> int:
    return get_settings().login_ip_failures


def account_limit() -> int:
    return ACCOUNT_FAILURES_PER_IP_LIMIT * ip_limit()


def _ip_key(ip: str) -> str:
    return f"ip:{ip or 'unknown'}"[:200]


def _user_key(username: str) -> str:
    return f"user:{username}"[:200]


def count_failure(session: Session, key: str, now: datetime) -> int:
    """Add one failure to `key`'s window (a new window when the last one is over); the count."""
    pg = session.get_bind().dialect.name == "postgresql"
    insert = upsert_insert(pg)
    session.execute(
        insert(LoginFailures)
        .values(key=key, failures=0, window_start=now)
        .on_conflict_do_nothing(index_elements=["key"])
    )
    expired = LoginFailures.window_start <= now - window()
    session.execute(
        update(LoginFailures)
        .where(LoginFailures.key == key)
        .values(
            failures=case((expired, 1), else_=LoginFailures.failures + 1),
            window_start=case((expired, now), else_=LoginFailures.window_start),
        )
    )
    return int(session.scalar(select(LoginFailures.failures).where(LoginFailures.key == key)) or 0)


def ip_blocked_for(session: Session, ip: str, now: datetime) -> int:
    """Seconds until this address may try again (0: it may now)."""
    row = session.get(LoginFailures, _ip_key(ip))
    if row is None or row.failures < ip_limit():
        return 0
    left = (row.window_start + window() - now).total_seconds()
    return max(0, int(left) + 1) if left > 0 else 0


def ip_failed(session: Session, ip: str, now: datetime) -> int:
    return count_failure(session, _ip_key(ip), now)


def account_failed(session: Session, username: str, now: datetime) -> int:
    return count_failure(session, _user_key(username), now)


def account_succeeded(session: Session, username: str) -> None:
    session.execute(delete(LoginFailures).where(LoginFailures.key == _user_key(username)))
