"""OneID: resolve identifiers to persons, link identifiers by evidence, merge persons consistently.

Rules
- An identifier seen for the first time founds a new person whose id derives from it.
- A link (two identifiers of one human) merges their persons unless the merged person would hold
  two different values of a singular identifier type (two unionids, two app accounts, …): that
  evidence is kept with the outcome ``conflict`` and merges nothing.
- Links of one batch are applied in a fixed order (observed time, then the identifiers), and the
  survivor of a merge is the smaller person id, so the same evidence always gives the same persons.
- Every merge is logged; `sync_warehouse` replays the log onto the warehouse tables.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING, Any, TypeVar

from sqlalchemy import BigInteger, Insert, String, any_, bindparam, case, func, insert, select, update
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from liebian import ports
from liebian.db.base import table_of, utcnow
from liebian.identity import staging
from liebian.identity.keys import (
    DIRECT_TYPES,
    SINGULAR_TYPES,
    IdentifierError,
    assign_person_ids,
    check_id_type,
    display_value,
    person_id_for,
    stored_value,
)
from liebian.identity.models import Identifier, IdentityLink, Person, PersonMerge
from liebian.lazy import lazy_import
from liebian.privacy.crypto import encrypt

if TYPE_CHECKING:
    import duckdb
    import pandas as pd
    import pyarrow as pa
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    pd = lazy_import("pandas")
    pa = lazy_import("pyarrow")

Key = tuple[str, str]  # (id_type, stored value)
CHUNK = 900
STAGE_THRESHOLD = 1000  # new identifiers from which resolve() founds persons through `staging`
T = TypeVar("T")


# Built once: the request path (accept an invite, report a conversion) resolves a few identifiers
# per call, where constructing the statements cost more than running them.
_LOOKUP = select(Identifier.id_value, Identifier.person_id).where(
    Identifier.id_type == bindparam("b_type"), Identifier.id_value.in_(bindparam("b_values", expanding=True))
)
_TAKEN = select(Person.id).where(Person.id.in_(bindparam("b_ids", expanding=True)))
# PostgreSQL: one array parameter instead of hundreds of placeholders (psycopg parses every long
# statement anew, and the server plans each chunk): a whole list in one statement.
_LOOKUP_ANY = select(Identifier.id_value, Identifier.person_id).where(
    Identifier.id_type == bindparam("b_type"),
    Identifier.id_value == any_(bindparam("b_values", type_=ARRAY(String))),
)
_TAKEN_ANY = select(Person.id).where(Person.id == any_(bindparam("b_ids", type_=ARRAY(BigInteger))))
_INSERTS: dict[str, tuple[Insert, Insert]] = {}


def _inserts_ignoring_conflicts(session: Session) -> tuple[Insert, Insert]:
    """(persons, identifiers) INSERT … ON CONFLICT DO NOTHING for this session's dialect."""
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS:
        ins = pg_insert if dialect == "postgresql" else sqlite_insert
        _INSERTS[dialect] = (
            ins(table_of(Person)).on_conflict_do_nothing(),
            ins(table_of(Identifier)).on_conflict_do_nothing(),
        )
    return _INSERTS[dialect]


_INSERTS_RETURNING: dict[str, tuple[Insert, Insert]] = {}


def _inserts_returning(session: Session) -> tuple[Insert, Insert]:
    """As `_inserts_ignoring_conflicts`, returning the rows that went in."""
    dialect = session.get_bind().dialect.name
    if dialect not in _INSERTS_RETURNING:
        persons, identifiers = _inserts_ignoring_conflicts(session)
        i = table_of(Identifier)
        _INSERTS_RETURNING[dialect] = (
            persons.returning(table_of(Person).c.id),
            identifiers.returning(i.c.id_type, i.c.id_value, i.c.person_id),
        )
    return _INSERTS_RETURNING[dialect]


def _is_postgresql(session: Session) -> bool:
    return session.get_bind().dialect.name == "postgresql"


def _chunks(seq: Sequence[T], size: int = CHUNK) -> Iterator[Sequence[T]]:
    for start in range(0, len(seq), size):
        yield seq[start : start + size]


@dataclass
class RawIdentifier:
    """An identifier as a channel sent it, before hashing."""

    id_type: str
    raw: str

    def __post_init__(self) -> None:
        # "Phone" and "phone " must hash the same way; an unknown type must not store a clear value.
        self.id_type = check_id_type(self.id_type)

    @cached_property
    def key(self) -> Key:
        # cached: an HMAC per call adds up when a batch sorts, resolves and links the same identifier
        return (self.id_type, stored_value(self.id_type, self.raw))


def key_of(id_type: str, raw: str) -> Key:
    id_type = check_id_type(id_type)
    return (id_type, stored_value(id_type, raw))


def lookup(session: Session, keys: Iterable[Key]) -> dict[Key, int]:
    """Person ids of the identifiers already registered (unknown ones are absent)."""
    by_type: dict[str, list[str]] = {}
    for id_type, value in set(keys):
        by_type.setdefault(id_type, []).append(value)
    found: dict[Key, int] = {}
    if _is_postgresql(session):
        for id_type, values in by_type.items():
            rows = session.execute(_LOOKUP_ANY, {"b_type": id_type, "b_values": values})
            found.update({(id_type, v): p for v, p in rows})
        return found
    for id_type, values in by_type.items():
        for chunk in _chunks(values):
            rows = session.execute(_LOOKUP, {"b_type": id_type, "b_values": chunk})
            found.update({(id_type, v): p for v, p in rows})
    return found


def resolve(
    session: Session,
    identifiers: Iterable[RawIdentifier | Key],
    source: str = "",
    seen_at: datetime | None = None,
    known: dict[Key, int] | None = None,
) -> dict[Key, int]:
    """Map identifiers to person ids, founding a person for each identifier never seen before.

    Accepts raw identifiers (hashed here) or keys already in stored form (bulk importers hash
    vectorised). Safe under concurrency: inserts ignore conflicts and the result is re-read.
    `known`: the caller's own `lookup` of these identifiers, to save reading them twice.
    """
    raw_by_key: dict[Key, str] = {}
    keys: set[Key] = set()
    for item in identifiers:
        if isinstance(item, RawIdentifier):
            raw_by_key[item.key] = item.raw
            keys.add(item.key)
        else:
            keys.add(item)
    found = {k: known[k] for k in keys if k in known} if known is not None else lookup(session, keys)
    new = sorted(keys - found.keys())
    if new:
        found.update(_found_persons(session, new, raw_by_key, source, seen_at or utcnow()))
    return found


def _found_persons(
    session: Session, new: list[Key], raw_by_key: dict[Key, str], source: str, seen_at: datetime
) -> dict[Key, int]:
    """Found a person for each new identifier; the persons of `new` (founded here, or by a
    concurrent transaction meanwhile)."""
    wanted = {key: person_id_for(*key) for key in new}
    if len(new) < STAGE_THRESHOLD and len(set(wanted.values())) == len(wanted):
        return _found_directly(session, wanted, raw_by_key, source, seen_at)
    _found_checked(session, wanted, raw_by_key, source, seen_at)
    return lookup(session, new)


def _found_directly(
    session: Session, wanted: dict[Key, int], raw_by_key: dict[Key, str], source: str, seen_at: datetime
) -> dict[Key, int]:
    """The request path (a few identifiers, their ids distinct): insert the persons and identifiers
    at once and learn from RETURNING which rows went in, instead of reading the ids first and the
    identifiers again after. An id already taken (a collision, a tombstone, a concurrent founder)
    falls back to `_found_checked` for those keys, which salts or finds them as before."""
    insert_persons, insert_identifiers = _inserts_returning(session)
    persons = [{"id": pid, "created_at": seen_at} for pid in wanted.values()]
    inserted = set(session.scalars(insert_persons, persons))
    mine = {key: pid for key, pid in wanted.items() if pid in inserted}
    found: dict[Key, int] = {}
    if mine:
        rows = session.execute(insert_identifiers, _identifier_rows(mine, raw_by_key, source, seen_at))
        found = {(t, v): pid for t, v, pid in rows}
    rest = [key for key in wanted if key not in found]
    if rest:  # rare: taken ids, or an identifier a concurrent transaction founded first
        unfounded = {key: wanted[key] for key in rest if key not in mine}
        if unfounded:
            _found_checked(session, unfounded, raw_by_key, source, seen_at)
        found.update(lookup(session, rest))
    return found


def _identifier_rows(
    wanted: dict[Key, int], raw_by_key: dict[Key, str], source: str, seen_at: datetime
) -> list[dict[str, Any]]:
    idents = []
    for key, pid in wanted.items():
        raw = raw_by_key.get(key)
        id_type, value = key
        idents.append(
            {
                "id_type": id_type,
                "id_value": value,
                "person_id": pid,
                "encrypted_value": encrypt(raw) if raw is not None and id_type in DIRECT_TYPES else None,
                "display": display_value(id_type, raw) if raw is not None else _display_of_key(key),
                "source": source[:64],
                "first_seen_at": seen_at,
            }
        )
    return idents


def _found_checked(
    session: Session, wanted: dict[Key, int], raw_by_key: dict[Key, str], source: str, seen_at: datetime
) -> None:
    """Found persons for `wanted` (key -> its natural id), reading which ids are taken first."""
    # A person id can only be taken already by a hash collision or by a deleted person's
    # tombstone; such identifiers get a salted id instead.
    taken: set[int] = set()
    if _is_postgresql(session):
        taken.update(session.scalars(_TAKEN_ANY, {"b_ids": list(wanted.values())}))
    else:
        for chunk in _chunks(list(wanted.values())):
            taken.update(session.scalars(_TAKEN, {"b_ids": chunk}))
    if taken:
        # Another transaction may have founded the same identifiers since our lookup; their ids
        # are then taken by the very same key, which is no collision. Read after `taken` so that a
        # person committed before that read is seen here with its identifier.
        for key in lookup(session, [k for k, pid in wanted.items() if pid in taken]):
            del wanted[key]
    assign_person_ids(wanted, taken)
    persons = [{"id": pid, "created_at": seen_at} for pid in wanted.values()]
    idents = _identifier_rows(wanted, raw_by_key, source, seen_at)
    if len(idents) >= STAGE_THRESHOLD:
        # Thousands of new identifiers (a bulk link): one staged INSERT … SELECT per table, not a
        # statement per row (PostgreSQL ran each as its own round trip).
        conn = session.connection()
        staging.stage_rows(
            conn,
            (
                (i["id_type"], i["id_value"], i["person_id"], i["encrypted_value"], i["display"])
                for i in idents
            ),
        )
        staging.insert_persons(conn, staging.stamp(conn, seen_at))
        staging.insert_identifiers(conn, source, staging.stamp(conn, seen_at))
        conn.exec_driver_sql("DELETE FROM bulk_new")
        staging.analyze_after_bulk(conn)
        return
    # executemany of one compiled statement: compiling a multi-row VALUES per chunk cost ~1 ms a row
    insert_persons, insert_identifiers = _inserts_ignoring_conflicts(session)
    if persons:
        session.execute(insert_persons, persons)
    if idents:
        session.execute(insert_identifiers, idents)


def _display_of_key(key: Key) -> str:
    id_type, value = key
    if id_type in DIRECT_TYPES:
        return f"{id_type}:{value[:8]}…"  # only the HMAC is known here
    return display_value(id_type, value)


@dataclass
class LinkEvidence:
    a: RawIdentifier | Key
    b: RawIdentifier | Key
    source: str = ""
    observed_at: datetime | None = None


@dataclass
class LinkReport:
    merged: int = 0
    already_same: int = 0
    conflicts: list[str] = field(default_factory=list)
    merges: dict[int, int] = field(default_factory=dict)  # merged person -> final survivor


def _key(item: RawIdentifier | Key) -> Key:
    return item.key if isinstance(item, RawIdentifier) else item


def _lock_persons(session: Session, ids: Sequence[int]) -> None:
    """Hold the persons a merge reads until the transaction ends, so concurrent merges serialise."""
    if not ids:
        return
    if session.get_bind().dialect.name == "sqlite":
        # SQLite has one writer per database: a no-op write takes that lock now (reads before the
        # first write run outside any transaction and could be stale by the time we merge).
        session.execute(update(Person).where(Person.id == ids[0]).values(merged_into=Person.merged_into))
        return
    for chunk in _chunks(sorted(ids)):  # one lock order everywhere: no deadlock between two merges
        session.execute(select(Person.id).where(Person.id.in_(chunk)).order_by(Person.id).with_for_update())


def _resolve_locked(session: Session, items: list[RawIdentifier | Key], source: str) -> dict[Key, int]:
    """resolve(), then lock the persons found and re-read until no concurrent merge moved them."""
    persons = resolve(session, items, source=source)
    keys = list(persons)
    while True:
        _lock_persons(session, sorted(set(persons.values())))
        fresh = lookup(session, keys)
        if fresh == persons:
            return persons
        persons = fresh


def _evidence_order(e: LinkEvidence) -> tuple[datetime, str, str, str, str, str]:
    # Normalise the pair too, so (a, b) and (b, a) sort the same.
    pair = sorted((_key(e.a), _key(e.b)))
    return (e.observed_at or datetime.min, *pair[0], *pair[1], e.source)


def _singular_identifiers(session: Session, involved: list[int]) -> dict[int, dict[str, set[str]]]:
    """Per person, the identifiers of the types a person holds at most one of (SINGULAR_TYPES)."""
    singular: dict[int, dict[str, set[str]]] = {p: {} for p in involved}
    for chunk in _chunks(involved):
        rows = session.execute(
            select(Identifier.person_id, Identifier.id_type, Identifier.id_value).where(
                Identifier.person_id.in_(chunk), Identifier.id_type.in_(SINGULAR_TYPES)
            )
        )
        for pid, id_type, value in rows:
            singular[pid].setdefault(id_type, set()).add(value)
    return singular


def _insert_links(session: Session, link_rows: list[dict[str, Any]]) -> dict[tuple[str, str, str, str], int]:
    """Record the evidence rows; the id of each merging link by its pair (type a, value a, type b, value b)."""
    # One batched INSERT … RETURNING, not a round trip per link. The rows may come back in any order
    # (SQLite batches only then), so merges find their link by its pair: a pair merges once a batch.
    links = table_of(IdentityLink)
    merge_link: dict[tuple[str, str, str, str], int] = {}
    if _is_postgresql(session) and len(link_rows) >= STAGE_THRESHOLD:
        # Thousands of links: their ids drawn from the sequence in one statement, the rows in one COPY.
        conn = session.connection()
        ids = [lid for (lid,) in conn.exec_driver_sql(
            "SELECT nextval(pg_get_serial_sequence('identity_links', 'id')) FROM generate_series(1, %s)",
            (len(link_rows),),
        )]  # fmt: skip
        columns = (
            "id_type_a",
            "id_value_a",
            "id_type_b",
            "id_value_b",
            "source",
            "observed_at",
            "outcome",
            "detail",
        )
        staging.copy_rows(
            conn, f"identity_links (id, {', '.join(columns)})",
            ((lid, *(row[c] for c in columns)) for lid, row in zip(ids, link_rows, strict=True)),
        )  # fmt: skip
        return {
            (r["id_type_a"], r["id_value_a"], r["id_type_b"], r["id_value_b"]): lid
            for lid, r in zip(ids, link_rows, strict=True)
            if r["outcome"] == "merged"
        }
    if link_rows:
        returned = session.execute(
            insert(links).returning(
                links.c.id,
                links.c.id_type_a,
                links.c.id_value_a,
                links.c.id_type_b,
                links.c.id_value_b,
                links.c.outcome,
            ),
            link_rows,
        )
        merge_link = {
            (ta, va, tb, vb): lid for lid, ta, va, tb, vb, outcome in returned if outcome == "merged"
        }
    return merge_link


def link(session: Session, evidence: Sequence[LinkEvidence]) -> LinkReport:
    """Apply identity evidence in a deterministic order; merge, keep as-is, or record a conflict."""
    ordered = sorted(evidence, key=_evidence_order)
    persons = _resolve_locked(session, [x for e in ordered for x in (e.a, e.b)], source="link")
    involved = sorted(set(persons.values()))
    singular = _singular_identifiers(session, involved)

    parent: dict[int, int] = {p: p for p in involved}

    def find(p: int) -> int:
        while parent[p] != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    report = LinkReport()
    link_rows, merge_rows = [], []
    for ev in ordered:
        ka, kb = _key(ev.a), _key(ev.b)
        ra, rb = find(persons[ka]), find(persons[kb])
        outcome, detail = "merged", ""
        if ra == rb:
            outcome = "already_same"
            report.already_same += 1
        else:
            clash = [
                t
                for t in sorted(SINGULAR_TYPES)
                if len(singular[ra].get(t, set()) | singular[rb].get(t, set())) > 1
            ]
            if clash:
                outcome = "conflict"
                detail = f"both persons already hold a different {', '.join(clash)}"
                report.conflicts.append(f"{ka[0]}~{kb[0]}: {detail}")
            else:
                survivor, merged = min(ra, rb), max(ra, rb)
                parent[merged] = survivor
                for t, values in singular[merged].items():
                    singular[survivor].setdefault(t, set()).update(values)
                merge_rows.append(((*ka, *kb), survivor, merged))
                report.merged += 1
        link_rows.append(
            {
                "id_type_a": ka[0],
                "id_value_a": ka[1],
                "id_type_b": kb[0],
                "id_value_b": kb[1],
                "source": ev.source[:64],
                "observed_at": ev.observed_at or utcnow(),
                "outcome": outcome,
                "detail": detail,
            }
        )
    merge_link = _insert_links(session, link_rows)
    final = {p: find(p) for p in involved if find(p) != p}
    _apply_merges(session, [(s, m, merge_link[pair]) for pair, s, m in merge_rows], final)
    report.merges = final
    return report


def merge(session: Session, survivor_hint: int, other: int, link_id: int | None = None) -> int:
    """Merge two persons directly (an operator's decision); the smaller id survives.

    Either id may be an old (already merged) one: the persons that now hold them are merged.
    """
    _lock_persons(session, sorted({survivor_hint, other}))
    a, b = (current_person(session, p) for p in (survivor_hint, other))
    if a is None or b is None:
        raise LookupError(f"no person {survivor_hint if a is None else other}")
    _lock_persons(session, sorted({a, b}))
    if a == b:
        return a
    survivor, merged = min(a, b), max(a, b)
    _apply_merges(session, [(survivor, merged, link_id)], {merged: survivor})
    return survivor


def _apply_merges(session: Session, log: list[tuple[int, int, int | None]], final: dict[int, int]) -> None:
    if not log:
        return
    now = utcnow()
    if _is_postgresql(session) and len(log) >= STAGE_THRESHOLD:
        staging.copy_rows(
            session.connection(), "person_merges (survivor_id, merged_id, link_id, merged_at)",
            ((s, m, lid, now) for s, m, lid in log),
        )  # fmt: skip
    else:
        session.execute(
            table_of(PersonMerge).insert(),
            [{"survivor_id": s, "merged_id": m, "link_id": lid, "merged_at": now} for s, m, lid in log],
        )
    if len(final) > MERGE_TABLE_THRESHOLD:
        _apply_merges_setwise(session, final)
    else:
        _apply_merges_by_case(session, final)
    # the statements above bypass the ORM: loaded persons and identifiers must be re-read
    for obj in list(session.identity_map.values()):
        if isinstance(obj, Person | Identifier):
            session.expire(obj)
    # Other domains keep person ids in the operational store too: they follow in this transaction.
    for follow in ports.current().merge_followers:
        follow(session, final)


# Above this many merged persons a batch's merges go through a temporary table (`merge_map`).
MERGE_TABLE_THRESHOLD = 500


def _apply_merges_by_case(session: Session, final: dict[int, int]) -> None:
    """One UPDATE … SET x = CASE x WHEN merged THEN survivor … END WHERE x IN (…): few merges (an
    operator's, an API link) in one statement each, not ORM updates per merged person."""
    idents, persons = table_of(Identifier), table_of(Person)
    mapping = dict(final)
    session.execute(
        update(idents)
        .where(idents.c.person_id.in_(mapping))
        .values(person_id=case(mapping, value=idents.c.person_id))
    )
    # older tombstones of a merged person now point at its survivor, then the merged person itself
    session.execute(
        update(persons)
        .where(persons.c.merged_into.in_(mapping))
        .values(merged_into=case(mapping, value=persons.c.merged_into))
    )
    session.execute(
        update(persons).where(persons.c.id.in_(mapping)).values(merged_into=case(mapping, value=persons.c.id))
    )


MERGE_MAP_DDL = "CREATE TEMPORARY TABLE IF NOT EXISTS merge_map (merged_id BIGINT PRIMARY KEY, survivor_id BIGINT NOT NULL)"
MERGE_UPDATES = (
    "UPDATE identifiers SET person_id = m.survivor_id FROM merge_map m WHERE identifiers.person_id = m.merged_id",
    # older tombstones of a merged person now point at its survivor, then the merged person itself
    "UPDATE persons SET merged_into = m.survivor_id FROM merge_map m WHERE persons.merged_into = m.merged_id",
    "UPDATE persons SET merged_into = m.survivor_id FROM merge_map m WHERE persons.id = m.merged_id",
)


def _apply_merges_setwise(session: Session, final: dict[int, int]) -> None:
    """A bulk link's merges as three joined UPDATEs over a temporary table of (merged, survivor).

    Chunks of CASE statements with hundreds of bound parameters each cost PostgreSQL a sequential
    scan per chunk on tables without planner statistics (a fresh import's) and psycopg a parse of
    every long statement: linking ran at 273 pairs/s there against 4,541 on SQLite."""
    conn = session.connection()
    conn.exec_driver_sql(MERGE_MAP_DDL)
    conn.exec_driver_sql("DELETE FROM merge_map")
    rows = sorted(final.items())
    if conn.dialect.name == "postgresql":
        staging.copy_rows(conn, "merge_map (merged_id, survivor_id)", rows)
        conn.exec_driver_sql("ANALYZE merge_map")  # persons and identifiers: analysed when founded
    else:
        conn.exec_driver_sql("INSERT INTO merge_map (merged_id, survivor_id) VALUES (?, ?)", rows)
    for statement in MERGE_UPDATES:
        conn.exec_driver_sql(statement)
    conn.exec_driver_sql("DELETE FROM merge_map")


def current_person(session: Session, person_id: int) -> int | None:
    """Follow a (possibly merged) person id to the person that now holds its identifiers."""
    person = session.get(Person, person_id)
    if person is None:
        return None
    return person.merged_into or person.id


def merged_from(session: Session, person_id: int) -> list[int]:
    """The persons merged into this one (their ids now stand for it), oldest id first."""
    return list(session.scalars(select(Person.id).where(Person.merged_into == person_id).order_by(Person.id)))


@dataclass
class PersonView:
    person_id: int
    created_at: datetime
    merged_from: list[int]
    identifiers: list[dict[str, Any]]


def person_view(session: Session, person_id: int) -> PersonView | None:
    pid = current_person(session, person_id)
    if pid is None:
        return None
    person = session.get_one(Person, pid)
    merged_from = list(
        session.scalars(select(Person.id).where(Person.merged_into == pid).order_by(Person.id))
    )
    idents = session.execute(
        select(Identifier.id_type, Identifier.display, Identifier.source, Identifier.first_seen_at)
        .where(Identifier.person_id == pid)
        .order_by(Identifier.id_type, Identifier.first_seen_at)
    )
    return PersonView(
        person_id=pid,
        created_at=person.created_at,
        merged_from=merged_from,
        identifiers=[
            {"id_type": t, "value": d, "source": s, "first_seen_at": f.isoformat()} for t, d, s, f in idents
        ],
    )


def find_person(session: Session, id_type: str, raw: str) -> int | None:
    key = key_of(id_type, raw)
    return lookup(session, [key]).get(key)


def sync_warehouse(session: Session, con: duckdb.DuckDBPyConnection) -> dict[str, int]:
    """Bring the warehouse's identity_map and person ids up to date with the registry.

    New identifiers are copied by id watermark; logged merges above the warehouse's watermark are
    replayed onto every person-id column, in one UPDATE per column.
    """
    last = sync_watermark(con)
    if last:
        below = session.scalar(select(func.count()).select_from(Identifier).where(Identifier.id <= last)) or 0
        if below > con.execute("SELECT count(*) FROM identity_map").fetchall()[0][0]:
            # An identifier committed after a later one was synced (concurrent imports on PostgreSQL
            # commit ids out of order) sits below the watermark: copy all the warehouse lacks.
            last = 0
    rows = session.execute(
        select(Identifier.id, Identifier.id_type, Identifier.id_value, Identifier.person_id)
        .where(Identifier.id > last)
        .order_by(Identifier.id)
    ).all()
    added = 0
    if rows:
        ids, types, values, persons = zip(*rows, strict=True)  # columns: no per-row objects in pandas
        frame = pa.table(
            {
                "id_type": pa.array(types, pa.string()),
                "id_value": pa.array(values, pa.string()),
                "person_id": pa.array(persons, pa.int64()),
            }
        )
        con.register("new_identifiers", frame)
        added = con.execute(
            """
            INSERT INTO identity_map
            SELECT n.id_type, n.id_value, n.person_id FROM new_identifiers n
            ANTI JOIN identity_map m ON m.id_type = n.id_type AND m.id_value = n.id_value
            """
        ).fetchall()[0][0]
        con.unregister("new_identifiers")
        con.execute("INSERT INTO identity_sync VALUES (?)", [int(max(ids))])

    applied = con.execute("SELECT coalesce(max(merge_id), 0) FROM applied_merges").fetchall()[0][0]
    merges = session.execute(
        select(PersonMerge.id, PersonMerge.survivor_id, PersonMerge.merged_id)
        .where(PersonMerge.id > applied)
        .order_by(PersonMerge.id)
    ).all()
    if merges:
        # Every tombstone points at the person holding its identifiers now (merges re-point older
        # tombstones too), so the whole map is replayed: a row loaded with an id that was merged
        # before the last sync is corrected as well, not only rows of the newly logged merges.
        tombstones = session.execute(
            select(Person.id, Person.merged_into).where(Person.merged_into.is_not(None))
        ).all()
        mapping = pd.DataFrame(tombstones, columns=["merged", "root"]).astype("int64")
        con.register("merge_map", mapping)
        for table, column in PERSON_COLUMNS:
            con.execute(
                f"UPDATE {table} SET {column} = merge_map.root FROM merge_map "
                f"WHERE {table}.{column} = merge_map.merged"
            )
        con.unregister("merge_map")
        con.execute("INSERT INTO applied_merges VALUES (?, now())", [int(merges[-1][0])])
    return {"identifiers_added": added, "merges_applied": len(merges)}


def sync_watermark(con: duckdb.DuckDBPyConnection) -> int:
    """The id of the last registry identifier copied into the warehouse's identity_map."""
    # fetchall: DuckDB 2 refuses register() while a fetchone() result is still open
    return int(con.execute("SELECT coalesce(max(last_identifier_id), 0) FROM identity_sync").fetchall()[0][0])


def advance_sync(session: Session, con: duckdb.DuckDBPyConnection, last: int, copied: int) -> None:
    """After a bulk registration put its own `copied` new identifiers into identity_map itself:
    move the watermark past them when nobody else registered any since `last`, else sync."""
    count, top = session.execute(
        select(func.count(), func.max(Identifier.id)).where(Identifier.id > last)
    ).one()
    if count and count == copied:
        con.execute("INSERT INTO identity_sync VALUES (?)", [int(top)])
    elif count:
        sync_warehouse(session, con)


PERSON_COLUMNS = (
    ("events", "person_id"),
    ("events", "referrer_person_id"),
    ("orders", "person_id"),
    ("messages", "person_id"),
    ("referral_edges", "inviter_person_id"),
    ("referral_edges", "invitee_person_id"),
    ("identity_map", "person_id"),
    ("members", "person_id"),
)


def identifier_count(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(Identifier)) or 0


@dataclass
class PairLink:
    """The result of one piece of evidence, as the API and CLI report it."""

    outcome: str  # merged | already_same | conflict
    person_id: int | None
    person_id_b: int | None
    detail: str
    merges: dict[int, int]


def link_pair(
    session: Session,
    a: RawIdentifier,
    b: RawIdentifier,
    source: str = "",
    observed_at: datetime | None = None,
) -> PairLink:
    """link() for a single pair, saying what happened and which persons hold the two identifiers."""
    report = link(session, [LinkEvidence(a, b, source, observed_at)])
    found = lookup(session, [a.key, b.key])
    outcome = "merged" if report.merged else "already_same" if report.already_same else "conflict"
    return PairLink(outcome, found.get(a.key), found.get(b.key), "; ".join(report.conflicts), report.merges)


def conflict_count(session: Session, start: datetime | None = None, end: datetime | None = None) -> int:
    """Pieces of identity evidence that contradicted each other (outcome conflict) in [start, end)."""
    query = select(func.count()).select_from(IdentityLink).where(IdentityLink.outcome == "conflict")
    if start is not None:
        query = query.where(IdentityLink.observed_at >= start)
    if end is not None:
        query = query.where(IdentityLink.observed_at < end)
    return session.scalar(query) or 0


# The identifier a person is shown by, best first: what an operator recognises (a masked phone),
# then the channel accounts; device ids and payment accounts only when nothing else is known.
DISPLAY_ORDER = ("phone", "unionid", "external_userid", "openid", "app_user", "douyin_openid", "xhs_id",
                 "device_id", "payment_account")  # fmt: skip


def display_identifiers(session: Session, person_ids: Iterable[int]) -> dict[int, str]:
    """Each person's masked identifier to show them by (DISPLAY_ORDER), for the ids that have one.
    A merged-away id is shown by the identifiers of the person it was merged into."""
    wanted = sorted({int(p) for p in person_ids})
    current: dict[int, int] = {}
    for chunk in _chunks(wanted):
        for pid, merged_into in session.execute(
            select(Person.id, Person.merged_into).where(Person.id.in_(chunk))
        ):
            current[pid] = merged_into or pid
    best: dict[int, tuple[int, str]] = {}
    for chunk in _chunks(sorted(set(current.values()))):
        for pid, id_type, display in session.execute(
            select(Identifier.person_id, Identifier.id_type, Identifier.display).where(
                Identifier.person_id.in_(chunk)
            )
        ):
            rank = DISPLAY_ORDER.index(id_type) if id_type in DISPLAY_ORDER else len(DISPLAY_ORDER)
            if pid not in best or rank < best[pid][0]:
                best[pid] = (rank, display)
    return {pid: best[cur][1] for pid, cur in current.items() if cur in best}


def persons_by_identifier(session: Session, text: str, limit: int = 50) -> list[int]:
    """Persons holding an identifier typed as it is (an openid, a unionid…), as it is shown
    masked (138****1234), or a full phone number (matched by its HMAC): current ids, oldest first."""
    text = text.strip()
    found: set[int] = set()
    found.update(
        session.scalars(
            select(Identifier.person_id)
            .where((Identifier.display == text) | (Identifier.id_value == text))
            .limit(limit)
        )
    )
    digits = "".join(ch for ch in text if ch.isdigit())
    if digits and len(digits) == len(text.replace(" ", "").replace("-", "").lstrip("+")):
        try:
            phone_holder = find_person(session, "phone", text)
        except IdentifierError:  # not a plausible phone: nothing to match
            phone_holder = None
        if phone_holder is not None:
            found.add(phone_holder)
    return sorted(found)[:limit]
