"""What the inline rules know from imported data: which persons used a device or an IP address in
the events imported into the warehouse (`fraud_known_uses`), beside what the campaign engine saw
itself (`fraud_sightings`) and the identifiers OneID holds.

The table is filled on import: `follow_import` is an import follower (`ports.Wiring
.import_followers`, wired in `liebian.bootstrap`) that reads the events ingested since the last
sync (a watermark on `events.ingested_at`) and upserts one row per (kind, value, person) with the
first and last time seen (in key order, through the driver: 50,000 rows a statement). The same sync runs as the job `fraud-known-uses`, which catches up a
warehouse imported before this table existed. The request path reads the table by its index
(`kind, value_hash, last_seen`): no warehouse query per request.

Values are keyed HMACs (`privacy.crypto.identifier_hmac`): the table holds no clear device id or
address. Person ids follow OneID merges (`follow_merges`, in `fraud.merges`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.db.base import table_of
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.fraud.models import FraudKnownSync, FraudKnownUse
from liebian.identity.models import Person
from liebian.privacy.crypto import identifier_hmac, keys

if TYPE_CHECKING:
    import duckdb

KINDS = ("device", "ip")
CHUNK = 1000
_K = table_of(FraudKnownUse)

# The imported events' devices and addresses since the watermark, one row per (kind, value,
# person), with the span they were seen in, hashed and formatted in DuckDB (vectorised: the
# HMAC-SHA256 of `kind:value` built from two SHA-256, as RFC 2104 defines it, equal to
# `value_hash`), in key order. `>=`: a batch stamped at the watermark is read again (the upsert
# makes that harmless) rather than skipped.
_SINCE_SQL = """
SELECT kind, sha256($opad::BLOB || unhex(sha256($ipad::BLOB || encode(kind || ':' || value)))) AS value_hash, person_id,
       strftime(first_seen, '%Y-%m-%d %H:%M:%S.%f'), strftime(last_seen, '%Y-%m-%d %H:%M:%S.%f')
FROM (
    SELECT kind, value, person_id, min(ts) AS first_seen, max(ts) AS last_seen FROM (
        SELECT 'device' AS kind, trim(device_id) AS value, person_id, ts FROM events
        WHERE ingested_at >= $since AND device_id IS NOT NULL AND trim(device_id) <> ''
        UNION ALL
        SELECT 'ip' AS kind, trim(ip) AS value, person_id, ts FROM events
        WHERE ingested_at >= $since AND ip IS NOT NULL AND trim(ip) <> ''
    )
    GROUP BY ALL
)
ORDER BY 1, 2, 3
"""
_UPTO_SQL = "SELECT max(ingested_at) FROM events WHERE ingested_at >= $since"
TIME_FORMAT = "%Y-%m-%d %H:%M:%S.%f"  # SQLAlchemy's text form of a time on SQLite; sorts as the time


def value_hash(kind: str, value: str | None) -> str | None:
    """The stored form of a device id or an address (None for a missing one)."""
    if value is None or not value.strip():
        return None
    return identifier_hmac(f"{kind}:{value.strip()}")


def _pads() -> dict[str, bytes]:
    """The HMAC key's inner and outer pads (RFC 2104; the key is shorter than SHA-256's block)."""
    key = keys().hmac_key
    key = (hashlib.sha256(key).digest() if len(key) > 64 else key).ljust(64, b"\0")
    return {"ipad": bytes(b ^ 0x36 for b in key), "opad": bytes(b ^ 0x5C for b in key)}


# One statement per dialect, run by the driver (no per-row work in SQLAlchemy): an upsert that
# widens the span a (kind, value, person) was seen in. PostgreSQL takes a batch as arrays.
_UPSERT = {
    "sqlite": (
        "INSERT INTO fraud_known_uses (kind, value_hash, person_id, first_seen, last_seen) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (kind, value_hash, person_id) DO UPDATE SET "
        "first_seen = min(first_seen, excluded.first_seen), last_seen = max(last_seen, excluded.last_seen)"
    ),
    "postgresql": (
        "INSERT INTO fraud_known_uses (kind, value_hash, person_id, first_seen, last_seen) "
        "SELECT * FROM unnest(%s::varchar[], %s::varchar[], %s::bigint[], %s::timestamp[], %s::timestamp[]) "
        "ON CONFLICT (kind, value_hash, person_id) DO UPDATE SET "
        "first_seen = least(fraud_known_uses.first_seen, excluded.first_seen), "
        "last_seen = greatest(fraud_known_uses.last_seen, excluded.last_seen)"
    ),
}
BATCH = 50_000
# An import bigger than this is learned by the job `fraud-known-uses` (every 15 minutes) instead of
# inside the import: the collector's batches and ordinary files are learned at once.
IMPORT_SYNC_MAX_EVENTS = 200_000
Row = tuple[str, str, int, str, str]  # kind, value_hash, person_id, first_seen, last_seen (TIME_FORMAT)


def _combine(rows: Iterable[Row]) -> list[Row]:
    """One row per key (the widest span), in key order: the index pages fill in sequence."""
    out: dict[tuple[str, str, int], Row] = {}
    for row in rows:
        seen = out.get(row[:3])
        out[row[:3]] = row if seen is None else (*row[:3], min(seen[3], row[3]), max(seen[4], row[4]))
    return [out[k] for k in sorted(out)]


def _write(session: Session, rows: Iterable[Row], in_order: bool = False) -> int:
    """Upsert known uses in batches through the driver; returns how many keys were written.
    `in_order`: the rows are one per key and sorted already."""
    combined = list(rows) if in_order else _combine(rows)
    conn = session.connection()
    dialect = conn.dialect.name
    for start in range(0, len(combined), BATCH):
        batch = combined[start : start + BATCH]
        if dialect == "postgresql":
            conn.exec_driver_sql(_UPSERT[dialect], tuple(list(column) for column in zip(*batch, strict=True)))
        else:  # SQLite keeps times as text: in SQLAlchemy's format, so comparisons with its binds hold
            conn.exec_driver_sql(_UPSERT["sqlite"], batch)
    return len(combined)


def _current_persons(session: Session, ids: Sequence[int]) -> dict[int, int]:
    """Merged person ids → their survivor (ids not merged are absent)."""
    out: dict[int, int] = {}
    for start in range(0, len(ids), CHUNK):
        rows = session.execute(
            select(Person.id, Person.merged_into).where(
                Person.id.in_(ids[start : start + CHUNK]), Person.merged_into.is_not(None)
            )
        )
        out.update({int(pid): int(merged) for pid, merged in rows if merged is not None})
    return out


def sync(session: Session, con: duckdb.DuckDBPyConnection) -> int:
    """Read the events imported since the last sync into `fraud_known_uses`; returns the keys written."""
    mark = session.get(FraudKnownSync, 1)
    since = mark.synced_until if mark is not None else datetime(1970, 1, 1)
    found: list[Row] = con.execute(_SINCE_SQL, {"since": since, **_pads()}).fetchall()
    if not found:
        return 0
    upto = con.execute(_UPTO_SQL, {"since": since}).fetchall()[0][0]
    merged = _current_persons(session, sorted({r[2] for r in found}))
    if merged:  # person ids as now: two persons of the batch merged since are one person
        written = _write(session, ((k, h, merged.get(p, p), first, last) for k, h, p, first, last in found))
    else:
        written = _write(session, found, in_order=True)
    if mark is None:
        session.add(FraudKnownSync(id=1, synced_until=upto))
    else:
        mark.synced_until = max(mark.synced_until, upto)
    session.flush()
    return written


def follow_import(con: duckdb.DuckDBPyConnection, kind: str, batch_id: str) -> int:
    """An import follower (`ports.ImportFollower`): after events are committed, learn their devices
    and addresses. Other kinds carry neither. A very large file (more than `IMPORT_SYNC_MAX_EVENTS`
    events not read yet) is left to the job, which runs outside the import's answer."""
    if kind != "events":
        return 0
    with session_scope() as session:
        mark = session.get(FraudKnownSync, 1)
        since = mark.synced_until if mark is not None else datetime(1970, 1, 1)
        pending = con.execute("SELECT count(*) FROM events WHERE ingested_at >= ?", [since]).fetchall()[0][0]
        if pending > IMPORT_SYNC_MAX_EVENTS:
            return 0
        return sync(session, con)


def sync_job() -> int:
    """Learn the devices and IP addresses of imported events not read yet (catch-up of `follow_import`)."""
    with warehouse.connect() as con, session_scope() as session:
        return sync(session, con)


def follow_merges(session: Session, final: dict[int, int]) -> None:
    """Known uses of merged persons move to the survivor (a key the survivor has already absorbs them)."""
    merged_ids = list(final)
    for start in range(0, len(merged_ids), CHUNK):
        chunk = merged_ids[start : start + CHUNK]
        rows = session.execute(
            select(_K.c.kind, _K.c.value_hash, _K.c.person_id, _K.c.first_seen, _K.c.last_seen).where(
                _K.c.person_id.in_(chunk)
            )
        ).all()
        if not rows:
            continue
        session.execute(_K.delete().where(_K.c.person_id.in_(chunk)))
        _write(
            session,
            ((k, h, final[p], f.strftime(TIME_FORMAT), t.strftime(TIME_FORMAT)) for k, h, p, f, t in rows),
        )
