"""Users, sessions, API keys and the audit log — the logic behind auth.api, auth.cli and auth.deps.

Passwords: argon2id (argon2-cffi's defaults), re-hashed on login when the parameters change. Every
failed login answers the same; failures are counted per client address (throttled after
`login_ip_failures` in the window) and per account (locked for 15 minutes after three times that,
which one address alone cannot reach): auth.throttle.

API keys: `lb_<key id>_<secret>` with 256 random bits of secret, shown once. Only SHA-256 of the
whole key is stored: for a random 256-bit secret a fast hash is enough (there is nothing to guess a
dictionary from, unlike a password), and it keeps the per-request check to one indexed look-up.
A key is scoped (a subset of its owner's permissions), revocable and expiring.

Audit log: `audit(session, actor, action, target, detail, ip)` appends one entry to a hash chain
built like the reward ledger's (rewards/service.py): entry.hash = HMAC-SHA256(chain key, canonical
JSON of the entry with prev_hash), the key derived from the data directory's HMAC key, which does not
live in the database. `verify_audit` replays the chain.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import event, func, select
from sqlalchemy.orm import Session

from liebian.auth import policy, throttle
from liebian.auth.models import ApiKey, AuditEntry, AuditHead, LoginSession, User
from liebian.auth.schemas import KeyOut, UserOut
from liebian.config import get_settings
from liebian.db.base import table_of, utcnow
from liebian.db.dialects import upsert_insert
from liebian.db.session import session_scope
from liebian.errors import DomainError
from liebian.privacy.crypto import keys

GENESIS = "0" * 64
SESSION_HOURS = 12
LOCK_MINUTES = 15
MIN_PASSWORD = 10
_hasher = PasswordHasher()


class AuthError(DomainError):
    default_status = 400


@dataclass(frozen=True)
class Principal:
    """Who is acting: a console session, an API key, the CLI's user, or nobody."""

    kind: str  # session | key | public | user | local | anonymous
    name: str  # what the audit log records as the actor
    role: str | None = None
    permissions: frozenset[str] = field(default_factory=frozenset)
    user_id: int | None = None
    csrf_token: str | None = None
    key_id: str | None = None
    # a console user still on a one-time password: the console allows nothing but changing it
    must_change_password: bool = False

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"

    def can(self, permission: str | None) -> bool:
        return policy.allowed(self.permissions, permission, self.is_admin)


ANONYMOUS_PRINCIPAL = Principal(kind="anonymous", name="anonymous")
LOCAL_BOOTSTRAP = Principal(
    kind="local", name="local:bootstrap", role="admin", permissions=policy.permissions_of("admin")
)


def _sha256(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _check_role(role: str) -> str:
    if role not in policy.ROLES:
        raise AuthError(
            "invalid", f"role: unknown role {role!r}; expected one of {', '.join(policy.ROLES)}", 422
        )
    return role


def _check_scopes(scopes: Iterable[str]) -> list[str]:
    scopes = sorted(set(scopes))
    unknown = [s for s in scopes if s not in policy.PERMISSIONS]
    if unknown:
        raise AuthError("invalid", f"scopes: unknown permission(s) {', '.join(unknown)}", 422)
    return scopes


# --- users -------------------------------------------------------------------------------------


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def generate_password() -> str:
    return secrets.token_urlsafe(15)


def has_users(session: Session) -> bool:
    return (session.scalar(select(func.count()).select_from(User)) or 0) > 0


def get_user(session: Session, username: str) -> User | None:
    return session.scalar(select(User).where(User.username == username))


def create_user(
    session: Session,
    username: str,
    password: str,
    role: str,
    *,
    actor: str,
    ip: str = "",
    must_change_password: bool = False,
) -> User:
    username = (username or "").strip()
    if not username or len(username) > 64 or not all(c.isalnum() or c in "._-@" for c in username):
        raise AuthError("invalid", "username: 1–64 letters, digits or . _ - @", 422)
    _check_role(role)
    if len(password or "") < MIN_PASSWORD:
        raise AuthError("invalid", f"password: at least {MIN_PASSWORD} characters", 422)
    if get_user(session, username) is not None:
        raise AuthError("conflict", f"username: {username!r} already exists", 409)
    user = User(
        username=username,
        password_hash=hash_password(password),
        role=role,
        active=True,
        must_change_password=must_change_password,
    )
    session.add(user)
    session.flush()
    audit(session, actor, "user.create", f"user:{username}", {"role": role}, ip)
    return user


def set_role(session: Session, username: str, role: str, *, actor: str, ip: str = "") -> User:
    user = _require_user(session, username)
    old = user.role
    user.role = _check_role(role)
    audit(session, actor, "user.role", f"user:{username}", {"from": old, "to": role}, ip)
    forget_verified_keys(session)  # a user key acts with its owner's current role
    return user


def set_active(session: Session, username: str, active: bool, *, actor: str, ip: str = "") -> User:
    user = _require_user(session, username)
    user.active = active
    if not active:  # a deactivated user's sessions and keys stop at once
        now = utcnow()
        for s in session.scalars(select(LoginSession).where(LoginSession.user_id == user.id)):
            s.revoked_at = s.revoked_at or now
    audit(session, actor, "user.activate" if active else "user.deactivate", f"user:{username}", {}, ip)
    forget_verified_keys(session)  # a deactivated user's keys stop at once
    return user


def reset_password(session: Session, username: str, password: str, *, actor: str, ip: str = "") -> User:
    user = _require_user(session, username)
    if len(password or "") < MIN_PASSWORD:
        raise AuthError("invalid", f"password: at least {MIN_PASSWORD} characters", 422)
    user.password_hash = hash_password(password)
    user.must_change_password = actor != f"user:{username}"
    user.failed_logins = 0
    user.locked_until = None
    audit(session, actor, "user.password", f"user:{username}", {}, ip)
    if username == "admin":
        forget_initial_password()
    return user


def change_own_password(session: Session, username: str, current: str, new: str, ip: str = "") -> User:
    """A user replaces their own password (the console's first-login page): the current one must be
    right and the new one different; afterwards the user no longer has to change it."""
    authenticate(session, username, current, ip)
    if new == current:
        raise AuthError("invalid", "new_password: must differ from the current password", 422)
    return reset_password(session, username, new, actor=f"user:{username}", ip=ip)


# The first admin's one-time password (auth/bootstrap.py writes it); gone once it was changed.
PASSWORD_FILE = "initial-admin-password"


def forget_initial_password() -> None:
    (get_settings().data_dir / PASSWORD_FILE).unlink(missing_ok=True)


def _require_user(session: Session, username: str) -> User:
    user = get_user(session, username)
    if user is None:
        raise AuthError("not_found", f"user {username!r} does not exist", 404)
    return user


def user_view(user: User) -> UserOut:
    return UserOut(
        username=user.username,
        role=user.role,
        active=user.active,
        must_change_password=user.must_change_password,
        created_at=user.created_at,
        last_login_at=user.last_login_at,
    )


def list_users(session: Session) -> list[UserOut]:
    return [user_view(u) for u in session.scalars(select(User).order_by(User.username))]


def authenticate(session: Session, username: str, password: str, ip: str = "") -> User:
    """Check a password. Every refusal is the same 401 "wrong username or password" — unknown user,
    wrong password, locked or deactivated account — and costs one argon2 computation, so neither
    the answer nor its time tells whether an account exists. A client address with too many
    failures is throttled (429 with Retry-After, for any username); an account is locked only after
    more failures than one address may make in the window (auth.throttle)."""
    now = utcnow()
    wait = throttle.ip_blocked_for(session, ip, now)
    if wait:
        error = AuthError("throttled", "too many failed logins from this address; retry later", 429)
        error.retry_after = wait
        raise error
    user = get_user(session, username or "")
    reason = None
    if user is None:
        _hasher.hash(password or "x")  # spend the same time as a real check
        reason = "unknown"
    else:
        try:
            _hasher.verify(user.password_hash, password or "")
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            reason = "password"
        if reason is None and user.locked_until and user.locked_until > now:
            reason = "locked"
        elif reason is None and not user.active:
            reason = "inactive"
    if reason is not None:
        _login_failed(session, username or "", user, reason, ip, now)
        raise AuthError("unauthorized", "wrong username or password", 401)
    assert user is not None  # no reason to refuse: the user exists
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.failed_logins = 0
    user.last_login_at = now
    throttle.account_succeeded(session, user.username)
    return user


def _login_failed(
    session: Session, username: str, user: User | None, reason: str, ip: str, now: datetime
) -> None:
    """Count the failure for the address and (a wrong password) for the account; lock; audit."""
    throttle.ip_failed(session, ip, now)
    detail: dict[str, Any] = {"reason": reason}
    if user is not None and reason == "password":
        user.failed_logins = throttle.account_failed(session, user.username, now)
        if user.failed_logins >= throttle.account_limit():
            user.locked_until = now + timedelta(minutes=LOCK_MINUTES)
            detail["locked_until"] = user.locked_until.isoformat()
    audit(session, f"user:{username}"[:128], "login.failed", f"user:{username}"[:255], detail, ip)


# --- sessions ----------------------------------------------------------------------------------


def create_session(session: Session, user: User, ip: str = "") -> tuple[str, str]:
    """A new console session; returns (cookie token, CSRF token)."""
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(32)
    session.add(
        LoginSession(
            token_hash=_sha256(token),
            user_id=user.id,
            csrf_token=csrf,
            ip=ip[:64],
            expires_at=utcnow() + timedelta(hours=SESSION_HOURS),
        )
    )
    audit(session, f"user:{user.username}", "login", f"user:{user.username}", {}, ip)
    return token, csrf


def session_principal(session: Session, token: str) -> Principal | None:
    row = session.execute(
        select(LoginSession, User)
        .join(User, User.id == LoginSession.user_id)
        .where(LoginSession.token_hash == _sha256(token))
    ).first()
    if row is None:
        return None
    s, user = row
    if s.revoked_at is not None or s.expires_at <= utcnow() or not user.active:
        return None
    return Principal(
        kind="session",
        name=f"user:{user.username}",
        role=user.role,
        permissions=policy.permissions_of(user.role),
        user_id=user.id,
        csrf_token=s.csrf_token,
        must_change_password=bool(user.must_change_password),
    )


def revoke_session(session: Session, token: str, ip: str = "") -> bool:
    s = session.scalar(select(LoginSession).where(LoginSession.token_hash == _sha256(token)))
    if s is None or s.revoked_at is not None:
        return False
    s.revoked_at = utcnow()
    user = session.get(User, s.user_id)
    assert user is not None  # a session's user_id is a foreign key
    audit(session, f"user:{user.username}", "logout", f"user:{user.username}", {}, ip)
    return True


def user_principal(session: Session, username: str) -> Principal:
    """The CLI's --user / LIEBIAN_USER: an active user, acting with its role."""
    user = get_user(session, username)
    if user is None or not user.active:
        raise AuthError("unauthorized", f"user {username!r} does not exist or is deactivated", 401)
    return Principal(
        kind="user",
        name=f"user:{user.username}",
        role=user.role,
        permissions=policy.permissions_of(user.role),
        user_id=user.id,
    )


# --- API keys ----------------------------------------------------------------------------------


def create_api_key(
    session: Session,
    *,
    name: str,
    actor: str,
    kind: str = "user",
    username: str | None = None,
    role: str | None = None,
    scopes: Iterable[str] | None = None,
    expires_days: int | None = 90,
    ip: str = "",
) -> tuple[str, ApiKey]:
    """Create a key; returns (the key — shown once, never stored —, its record)."""
    scopes = _check_scopes(scopes or [])
    user_id = None
    if kind == "public":
        bad = [s for s in scopes if s not in policy.PUBLIC_SCOPES]
        if bad:
            raise AuthError(
                "invalid",
                f"scopes: a public key may only hold {', '.join(sorted(policy.PUBLIC_SCOPES))}",
                422,
            )
        scopes = scopes or sorted(policy.PUBLIC_SCOPES)
        role = None
    elif kind == "user":
        if not username:
            raise AuthError("invalid", "username: a user key needs its owner", 422)
        user = _require_user(session, username)
        user_id, role = user.id, None
        extra = [s for s in scopes if s not in policy.permissions_of(user.role)]
        if extra:
            raise AuthError(
                "invalid", f"scopes: {username} ({user.role}) does not hold {', '.join(extra)}", 422
            )
    elif kind == "service":
        _check_role(role or "")
        extra = [s for s in scopes if s not in policy.permissions_of(role)]
        if extra:
            raise AuthError("invalid", f"scopes: role {role} does not hold {', '.join(extra)}", 422)
    else:
        raise AuthError("invalid", "kind: one of user, service, public", 422)
    if expires_days is not None and not 1 <= expires_days <= 3650:
        raise AuthError("invalid", "expires_days: between 1 and 3650 (or none)", 422)
    key_id = f"lb_{secrets.token_hex(6)}"
    plaintext = f"{key_id}_{secrets.token_urlsafe(32)}"
    record = ApiKey(
        key_id=key_id,
        key_hash=_sha256(plaintext),
        name=(name or "")[:128],
        kind=kind,
        user_id=user_id,
        role=role,
        scopes=" ".join(scopes),
        created_by=actor[:128],
        expires_at=utcnow() + timedelta(days=expires_days) if expires_days else None,
    )
    session.add(record)
    session.flush()
    audit(
        session,
        actor,
        "apikey.create",
        f"apikey:{key_id}",
        {"kind": kind, "owner": username, "role": role, "scopes": scopes, "expires_days": expires_days},
        ip,
    )
    return plaintext, record


def key_principal(session: Session, plaintext: str) -> Principal | None:
    return _key_lookup(session, plaintext)[0]


def _key_lookup(session: Session, plaintext: str) -> tuple[Principal | None, datetime | None]:
    """The key's principal (None: unknown, revoked, expired or its owner deactivated) and expiry."""
    if not plaintext or not plaintext.startswith("lb_"):
        return None, None
    record = session.scalar(select(ApiKey).where(ApiKey.key_hash == _sha256(plaintext)))
    now = utcnow()
    if record is None or record.revoked_at is not None or (record.expires_at and record.expires_at <= now):
        return None, None
    scopes = frozenset(record.scopes.split()) if record.scopes else None
    if record.kind == "public":
        granted = (scopes or policy.PUBLIC_SCOPES) & policy.PUBLIC_SCOPES
        role, name, user_id = None, f"key:{record.key_id}", None
    elif record.kind == "service":
        role, name, user_id = record.role, f"key:{record.key_id}", None
        granted = policy.permissions_of(role)
    else:
        user = session.get(User, record.user_id)
        if user is None or not user.active:
            return None, None
        role, name, user_id = user.role, f"user:{user.username}/key:{record.key_id}", user.id
        granted = policy.permissions_of(role)  # never more than the owner holds today
    if record.kind != "public" and scopes is not None:
        granted = granted & scopes
    if record.last_used_at is None or now - record.last_used_at > timedelta(minutes=5):
        record.last_used_at = now  # coarse, so a busy key does not write on every request
    principal = Principal(
        kind="public" if record.kind == "public" else "key",
        name=name,
        # a scoped key is not an admin key: the deny-by-default admin fallback needs the full role
        role=role if scopes is None else None,
        permissions=frozenset(granted),
        user_id=user_id,
        key_id=record.key_id,
    )
    return principal, record.expires_at


def revoke_api_key(session: Session, key_id: str, *, actor: str, ip: str = "") -> ApiKey:
    record = session.scalar(select(ApiKey).where(ApiKey.key_id == key_id))
    if record is None:
        raise AuthError("not_found", f"API key {key_id!r} does not exist", 404)
    if record.revoked_at is None:
        record.revoked_at = utcnow()
        audit(session, actor, "apikey.revoke", f"apikey:{key_id}", {}, ip)
        forget_verified_keys(session)
    return record


# --- verified keys, cached in the process ---------------------------------------------------------
#
# The gate checks a key on every request; a key it verified is kept here for
# `settings.auth_cache_seconds` (never past the key's own expiry), so that a busy front end does not
# cost a store round trip per request. Only keys that were valid are kept (an unknown key is looked
# up every time, and a key created anywhere works at once). Revoking a key, deactivating a user or
# changing a role empties the cache of the process that made the change, when its transaction
# commits; other worker processes (and changes made with the CLI) see it within the TTL.


class _VerifiedKeys:
    MAX = 10_000

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[str, tuple[Principal, float, datetime | None]] = {}
        self.generation = 0

    def get(self, digest: str) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None:
            return None
        principal, deadline, expires_at = entry
        if time.monotonic() >= deadline or (expires_at is not None and expires_at <= utcnow()):
            with self._lock:
                self._entries.pop(digest, None)
            return None
        return principal

    def put(self, digest: str, principal: Principal, expires_at: datetime | None, generation: int) -> None:
        ttl = _cache_seconds()
        if ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:  # a revocation committed while we looked the key up
                return
            if len(self._entries) >= self.MAX:
                self._entries.clear()
            self._entries[digest] = (principal, time.monotonic() + ttl, expires_at)

    def clear(self) -> None:
        with self._lock:
            self.generation += 1
            self._entries.clear()


_verified = _VerifiedKeys()


def _cache_seconds() -> float:
    return get_settings().auth_cache_seconds


def forget_verified_keys(session: Session | None = None) -> None:
    """Drop every cached key verification now and, with a session, again when it commits (so that a
    look-up racing the change cannot keep the old answer)."""
    _verified.clear()
    if session is not None and not session.info.get("forget_keys_on_commit"):
        session.info["forget_keys_on_commit"] = True

        def after_commit(s: Session) -> None:
            s.info.pop("forget_keys_on_commit", None)
            _verified.clear()

        event.listen(session, "after_commit", after_commit, once=True)


def cached_key_principal(plaintext: str) -> Principal | None:
    """The principal of a key verified a moment ago (the process's cache), without the store."""
    if not plaintext or not plaintext.startswith("lb_"):
        return None
    return _verified.get(_sha256(plaintext))


def verified_key_principal(plaintext: str) -> Principal | None:
    """`key_principal` in its own transaction, through the process's cache of verified keys."""
    if not plaintext or not plaintext.startswith("lb_"):
        return None
    digest = _sha256(plaintext)
    cached = _verified.get(digest)
    if cached is not None:
        return cached

    generation = _verified.generation
    with session_scope() as s:
        principal, expires_at = _key_lookup(s, plaintext)
    if principal is not None:
        _verified.put(digest, principal, expires_at, generation)
    return principal


def key_view(record: ApiKey, owner: str | None = None) -> KeyOut:
    return KeyOut(
        key_id=record.key_id,
        name=record.name,
        kind=record.kind,
        owner=owner,
        role=record.role,
        scopes=record.scopes.split() if record.scopes else [],
        created_by=record.created_by,
        created_at=record.created_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        last_used_at=record.last_used_at,
    )


def list_api_keys(session: Session) -> list[KeyOut]:
    rows = session.execute(
        select(ApiKey, User.username).outerjoin(User, User.id == ApiKey.user_id).order_by(ApiKey.id)
    )
    return [key_view(k, owner) for k, owner in rows]


# --- audit log ---------------------------------------------------------------------------------


@lru_cache(maxsize=4)
def _derive_chain_key(hmac_key: bytes) -> bytes:
    return hmac.new(hmac_key, b"liebian/audit-chain/v1", hashlib.sha256).digest()


def chain_key() -> bytes:
    return _derive_chain_key(keys().hmac_key)


def _canonical(entry: dict[str, Any]) -> bytes:
    ts = entry["ts"]
    body = {
        "seq": int(entry["seq"]),
        "ts": ts.isoformat(timespec="microseconds") if isinstance(ts, datetime) else str(ts),
        "actor": entry["actor"],
        "action": entry["action"],
        "target": entry["target"],
        "detail": entry["detail"],
        "ip": entry["ip"],
        "prev_hash": entry["prev_hash"],
    }
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def _entry_hash(entry: dict[str, Any]) -> str:
    return hmac.new(chain_key(), _canonical(entry), hashlib.sha256).hexdigest()


_H = table_of(AuditHead)


def _lock_head(session: Session) -> tuple[int, str]:
    pg = session.get_bind().dialect.name == "postgresql"
    for _ in range(2):
        if pg:
            row = session.execute(select(_H.c.seq, _H.c.hash).where(_H.c.id == 1).with_for_update()).first()
        else:  # a write first: SQLite hands out its one write lock here, so the head read is the newest
            row = session.execute(
                _H.update().where(_H.c.id == 1).values(seq=_H.c.seq).returning(_H.c.seq, _H.c.hash)
            ).first()
        if row is not None:
            return int(row[0]), row[1]
        insert = upsert_insert(pg)
        session.execute(insert(AuditHead).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
    raise RuntimeError("could not create the audit head")  # pragma: no cover


def audit(
    session: Session,
    actor: str,
    action: str,
    target: str = "",
    detail: dict[str, Any] | None = None,
    ip: str = "",
) -> dict[str, Any]:
    """Append one entry to the audit chain (in the caller's transaction) and return it."""
    seq, prev = _lock_head(session)
    entry = {
        "seq": seq + 1,
        "ts": utcnow(),
        "actor": (actor or "")[:128],
        "action": action[:128],
        "target": (target or "")[:255],
        "detail": json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, default=str),
        "ip": (ip or "")[:64],
        "prev_hash": prev,
    }
    entry["hash"] = _entry_hash(entry)
    session.execute(table_of(AuditEntry).insert(), entry)
    session.execute(_H.update().where(_H.c.id == 1).values(seq=entry["seq"], hash=entry["hash"]))
    return entry


def audit_entries(
    session: Session,
    *,
    actor: str | None = None,
    action: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int | None = 1000,
) -> list[dict[str, Any]]:
    q = select(AuditEntry).order_by(AuditEntry.seq)
    if actor:
        q = q.where(AuditEntry.actor == actor)
    if action:
        q = q.where(AuditEntry.action.startswith(action))
    if since:
        q = q.where(AuditEntry.ts >= since)
    if until:
        q = q.where(AuditEntry.ts < until)
    if limit:
        q = q.limit(limit)
    return [
        {
            "seq": e.seq,
            "ts": e.ts,
            "actor": e.actor,
            "action": e.action,
            "target": e.target,
            "detail": json.loads(e.detail),
            "ip": e.ip,
            "prev_hash": e.prev_hash,
            "hash": e.hash,
        }
        for e in session.scalars(q)
    ]


def verify_audit(session: Session) -> dict[str, Any]:
    """Replay the chain: every hash, every link, no gap, and the head at the last entry."""
    prev, expected_seq, count = GENESIS, 1, 0
    for e in session.scalars(select(AuditEntry).order_by(AuditEntry.seq)).yield_per(1000):
        entry = {
            c: getattr(e, c) for c in ("seq", "ts", "actor", "action", "target", "detail", "ip", "prev_hash")
        }
        if e.seq != expected_seq:
            return {
                "ok": False,
                "entries": count,
                "bad_seq": e.seq,
                "reason": f"gap: expected seq {expected_seq}",
            }
        if e.prev_hash != prev:
            return {"ok": False, "entries": count, "bad_seq": e.seq, "reason": "prev_hash does not link"}
        if not hmac.compare_digest(_entry_hash(entry), e.hash):
            return {
                "ok": False,
                "entries": count,
                "bad_seq": e.seq,
                "reason": "hash does not match the entry",
            }
        prev, expected_seq, count = e.hash, expected_seq + 1, count + 1
    head = session.execute(select(_H.c.seq, _H.c.hash).where(_H.c.id == 1)).first()
    if count and (head is None or int(head[0]) != count or head[1] != prev):
        return {
            "ok": False,
            "entries": count,
            "bad_seq": None,
            "reason": "head does not match the last entry",
        }
    return {"ok": True, "entries": count, "bad_seq": None, "reason": "", "head": prev}
