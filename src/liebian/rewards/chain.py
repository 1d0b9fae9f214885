"""What every hash-chained, append-only log of the rewards domain shares: the head lock that
serialises appends, the chain keys and the sealing of an entry.

Used by the reward ledger (`service`) and the points ledger (`points`); each log has its own head
table (one row, id 1: the last seq and hash) and its own key (a label derives it from the data
directory's HMAC key, which does not live in the database).

The head lock: `SELECT … FOR UPDATE` on PostgreSQL; on SQLite the first statement is an UPDATE,
which takes the database's one write lock. Everything after it in the transaction runs serialised.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Select, Table, Update, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import RowMapping
from sqlalchemy.orm import Session, SessionTransaction

from liebian.db.session import core
from liebian.privacy.crypto import keys

GENESIS = "0" * 64
MAX_KEY = 160


@dataclass
class Head:
    seq: int
    hash: str


def transaction_of(session: Session) -> SessionTransaction | None:
    """The innermost transaction in progress (a savepoint's, if any), or None before the first
    statement. Values cached for "this transaction" are keyed by it: a rolled-back savepoint or a
    new transaction is a different object, so they are read again."""
    return session.get_nested_transaction() or session.get_transaction()


@lru_cache(maxsize=8)
def _head_statements(head: Table) -> tuple[Select[Any], Update]:
    # Built once per head table: constructing SQLAlchemy expressions costs more than running them.
    read = select(head.c.seq, head.c.hash).where(head.c.id == 1)
    touch = head.update().where(head.c.id == 1).values(seq=head.c.seq).returning(head.c.seq, head.c.hash)
    return read.with_for_update(), touch


def lock_head(session: Session, head_table: Table, info_key: str) -> Head:
    """Serialise the writers of one chain; returns its head. Creates the head row on first use.

    The lock lasts until the transaction ends, so a second write in the same transaction reuses the
    head it holds (cached in `session.info[info_key]`) instead of locking again."""
    held = session.info.get(info_key)
    tx = transaction_of(session)
    if held is not None and tx is not None and held[0] is tx:
        head: Head = held[1]  # session.info holds (transaction, Head), see below
        return head
    pg = session.get_bind().dialect.name == "postgresql"
    for_update, touch = _head_statements(head_table)
    for _ in range(2):
        # SQLite: a write as the first statement — pysqlite opens the transaction here and SQLite hands
        # out its single write lock (waiting on busy_timeout), so every later read sees the newest data.
        row = core(session, for_update if pg else touch).first()
        if row is not None:
            head = Head(int(row[0]), row[1])
            session.info[info_key] = (transaction_of(session), head)
            return head
        insert = pg_insert if pg else sqlite_insert
        session.execute(insert(head_table).values(id=1, seq=0, hash=GENESIS).on_conflict_do_nothing())
    raise RuntimeError(f"could not create the head row of {head_table.name}")  # pragma: no cover


@lru_cache(maxsize=8)
def _derive(hmac_key: bytes, label: bytes) -> bytes:
    # Domain separation: the identifier-HMAC key is never used directly for a chain.
    return hmac.new(hmac_key, label, hashlib.sha256).digest()


def derive_key(label: str) -> bytes:
    """The key of one chain, e.g. `derive_key("liebian/points-chain/v1")`."""
    return _derive(keys().hmac_key, label.encode())


def canonical_json(body: Mapping[str, Any]) -> bytes:
    """Sorted compact JSON; datetimes as ISO 8601 with microseconds."""
    normal = {
        k: v.isoformat(timespec="microseconds") if isinstance(v, datetime) else v for k, v in body.items()
    }
    return json.dumps(normal, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def seal(body: Mapping[str, Any], key: bytes) -> str:
    """HMAC-SHA256 (hex) of the canonical JSON of an entry's fields."""
    return hmac.new(key, canonical_json(body), hashlib.sha256).hexdigest()


def key_problem(idempotency_key: object) -> str | None:
    """Why an idempotency key is unusable, or None."""
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        return "idempotency_key: must be a non-empty string"
    if len(idempotency_key) > MAX_KEY:
        return f"idempotency_key: longer than {MAX_KEY} characters"
    return None


@dataclass
class VerifyResult:
    """What replaying one chain found (`liebian ledger verify`, `liebian points verify`)."""

    ok: bool
    entries_checked: int
    head_seq: int
    first_bad_seq: int | None = None
    reason: str = ""
    # projection rows (rewards, points_lots) that disagree with the replay of the entries (edited)
    projection_mismatches: list[dict[str, Any]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def walk_chain(
    session: Session,
    entries: Table,
    head_table: Table,
    hash_of: Callable[[RowMapping], str],
    replay: Callable[[RowMapping], str | None],
    head_name: str,
) -> VerifyResult:
    """Replay a chain in seq order: no gap, each entry linked to the one before, each HMAC matching
    its content (`hash_of`), each move legal (`replay` returns why not); then the head must point at
    the last entry. Stops at the first break; the caller compares its projection table afterwards."""
    head = session.execute(select(head_table.c.seq, head_table.c.hash).where(head_table.c.id == 1)).first()
    head_seq = int(head[0]) if head else 0
    prev, expected, checked = GENESIS, 1, 0

    def bad(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, checked, head_seq, seq, reason)

    rows = session.execute(select(entries).order_by(entries.c.seq).execution_options(yield_per=5000))
    for e in rows.mappings():
        seq = e["seq"]
        if seq != expected:
            return bad(expected, f"entry {expected} is missing: the next entry found is {seq} (deleted)")
        if e["prev_hash"] != prev:
            return bad(seq, f"entry {seq} does not link to entry {seq - 1} (inserted, deleted or reordered)")
        if not hmac.compare_digest(hash_of(e), e["hash"]):
            return bad(seq, f"entry {seq}: hash does not match its content (edited or forged)")
        problem = replay(e)
        if problem is not None:
            return bad(seq, problem)
        prev, expected, checked = e["hash"], expected + 1, checked + 1
    if head_seq > checked:
        why = f"entries {checked + 1}…{head_seq} are missing: the head is at {head_seq} (chain truncated)"
        return bad(checked + 1, why)
    if head_seq < checked:
        return bad(
            head_seq + 1,
            f"entry {head_seq + 1} lies beyond the {head_name} head ({head_seq}): appended outside the {head_name}",
        )
    if head is not None and head[1] != prev:
        return bad(head_seq, f"the {head_name} head's hash does not match entry {head_seq}")
    return VerifyResult(True, checked, head_seq)
