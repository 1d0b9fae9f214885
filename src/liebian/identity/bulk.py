"""resolve() for file imports: the same rules, set-based SQL for hundreds of thousands of keys.

`service.resolve` looks identifiers up in chunks of 900 bound parameters and inserts through
SQLAlchemy's executemany: fine for an API batch, minutes for a million new users. Here the keys go
into a temporary table with one DBAPI executemany, known ones are found with one join, and new
persons and identifiers are inserted with plain executemany (ON CONFLICT DO NOTHING, as resolve
does). Person ids, displays, ciphertexts and the collision salt follow exactly the rules of
`service._found_persons`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy.orm import Session

from liebian.db.base import utcnow
from liebian.identity.keys import DIRECT_TYPES, assign_person_ids, display_value, person_id_for
from liebian.privacy.crypto import encrypt

# Below this many identifiers the ordinary resolve() is as fast and simpler.
BULK_THRESHOLD = 2000
BATCH = 50_000


def _batches(rows: list, size: int = BATCH):
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def resolve_bulk(
    session: Session,
    identifiers: Iterable,
    source: str = "",
    seen_at: datetime | None = None,
) -> dict[tuple[str, str], int]:
    """Map identifiers (RawIdentifier or stored-form keys) to person ids, founding new persons."""
    from liebian.identity import service

    items = list(identifiers)
    raw_by_key: dict[tuple[str, str], str] = {}
    keys: set[tuple[str, str]] = set()
    for item in items:
        if isinstance(item, service.RawIdentifier):
            raw_by_key[item.key] = item.raw
            keys.add(item.key)
        else:
            keys.add(item)
    if len(keys) < BULK_THRESHOLD:
        return service.resolve(session, items, source=source, seen_at=seen_at)

    conn = session.connection()
    dialect = conn.dialect.name
    mark = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    seen_at = seen_at or utcnow()
    # SQLAlchemy keeps SQLite datetimes as text in this form; PostgreSQL takes the object.
    stamp = seen_at.strftime("%Y-%m-%d %H:%M:%S.%f") if dialect == "sqlite" else seen_at

    if dialect == "sqlite":
        # The default 2 MB page cache thrashes once the identifier indexes outgrow it.
        conn.exec_driver_sql("PRAGMA cache_size = -262144")
        conn.exec_driver_sql("PRAGMA temp_store = MEMORY")  # bulk_keys/bulk_ids need no file

    def many(sql: str, rows: list) -> int:
        """executemany in batches; the rows it changed (-1 when the driver cannot tell)."""
        changed = 0
        for batch in _batches(rows):
            count = conn.exec_driver_sql(sql, batch).rowcount
            changed = -1 if count is None or count < 0 or changed < 0 else changed + count
        return changed

    # Temporary tables live with the connection (pooled ones keep theirs: emptied before use).
    conn.exec_driver_sql(
        "CREATE TEMPORARY TABLE IF NOT EXISTS bulk_keys (id_type VARCHAR(32), id_value VARCHAR(128))"
    )
    conn.exec_driver_sql("DELETE FROM bulk_keys")
    many(f"INSERT INTO bulk_keys (id_type, id_value) VALUES ({mark}, {mark})", list(keys))

    def known() -> dict[tuple[str, str], int]:
        rows = conn.exec_driver_sql(
            "SELECT k.id_type, k.id_value, i.person_id FROM bulk_keys k "
            "JOIN identifiers i ON i.id_type = k.id_type AND i.id_value = k.id_value"
        ).fetchall()
        return {(t, v): p for t, v, p in rows}

    found = known()
    new = sorted(keys - found.keys())
    if new:
        wanted = {key: person_id_for(*key) for key in new}
        conn.exec_driver_sql("CREATE TEMPORARY TABLE IF NOT EXISTS bulk_ids (id BIGINT)")
        conn.exec_driver_sql("DELETE FROM bulk_ids")
        many(f"INSERT INTO bulk_ids (id) VALUES ({mark})", [(pid,) for pid in wanted.values()])
        taken = {
            pid
            for (pid,) in conn.exec_driver_sql("SELECT p.id FROM persons p JOIN bulk_ids b ON b.id = p.id")
        }
        if taken:
            # As in _found_persons: an id taken by the very same key (a concurrent import) is no
            # collision; anything else gets a salted id.
            for key in service.lookup(session, [k for k, pid in wanted.items() if pid in taken]):
                del wanted[key]
        assign_person_ids(wanted, taken)
        conflict = "ON CONFLICT DO NOTHING"
        many(
            f"INSERT INTO persons (id, created_at) VALUES ({mark}, {mark}) {conflict}",
            [(pid, stamp) for pid in sorted(wanted.values())],  # primary-key order: sequential pages
        )
        idents = []
        for key, pid in wanted.items():
            id_type, value = key
            raw = raw_by_key.get(key)
            idents.append(
                (
                    id_type,
                    value,
                    pid,
                    encrypt(raw) if raw is not None and id_type in DIRECT_TYPES else None,
                    display_value(id_type, raw) if raw is not None else service._display_of_key(key),
                    source[:64],
                    stamp,
                )
            )
        inserted = many(
            "INSERT INTO identifiers (id_type, id_value, person_id, encrypted_value, display, source, "
            f"first_seen_at) VALUES ({', '.join([mark] * 7)}) {conflict}",
            idents,
        )
        if inserted == len(idents):
            found.update(wanted)  # every new identifier is ours: no need to read them back
        else:
            found = known()  # a concurrent writer registered some of them first: its ids win
    conn.exec_driver_sql("DELETE FROM bulk_keys")
    return found
