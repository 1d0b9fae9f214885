"""Data-subject requests: a person's footprint exported, erased or searched for traces, the audited
reveal of a direct identifier, and the log of requests with its hashes.

Erasure (`delete_person`): liebian anonymises rather than dropping facts. Every identifier of the
person (raw value and HMAC) is removed from both stores — the OneID mapping, identity evidence,
warehouse user ids, device ids, IPs, free text, rejected raw rows and any text column that carries
one of the values. What stays is keyed by the person id only: events, orders, referrals, rewards and
the hash-chained ledger (which cannot be edited without breaking its chain). A person id is a
pseudonym: once the identifier mapping is gone nothing in liebian links it back to a human, and
counts, revenue and reward totals stay exactly what they were. The request leaves a record (what
was removed, counts per table, a SHA-256 of the record, also written to the audit chain) and the
record includes the trace search run after the erasure.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, String, Text, delete, func, select, update
from sqlalchemy.orm import Session

from liebian.auth.service import audit
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.db.session import rowcount, session_scope
from liebian.engine import eventstore, warehouse
from liebian.identity import service as identity
from liebian.identity.keys import DIRECT_TYPES
from liebian.identity.models import Identifier, IdentityLink, Person, PersonMerge
from liebian.lazy import lazy_import
from liebian.privacy import compaction, watermark
from liebian.privacy.crypto import decrypt, normalize_phone
from liebian.privacy.models import ConsentRecord, DataSubjectRequest
from liebian.privacy.service import PrivacyError, consent_state, store_tables, warehouse_count

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

PERSON_COLUMNS = (
    "person_id",
    "inviter_person_id",
    "invitee_person_id",
    "friend_person_id",
    "initiator_person_id",
    "referrer_person_id",
    "survivor_id",
    "merged_id",
)


# Tables whose rows are evidence and must not change (hash chains) or that hold the erasure record.
UNTOUCHABLE = frozenset(
    {
        "ledger_entries",
        "ledger_head",
        "points_entries",
        "points_head",
        "points_lots",
        "audit_log",
        "audit_head",
        "privacy_requests",
    }
)


# Columns with personal data of the row's person besides identifiers: cleared on erasure.
PERSONAL_COLUMNS = ("device_id", "ip", "ua_hash", "nickname")


MIN_TRACE_LENGTH = 5  # shorter values would match unrelated text


def _person_ids(session: Session, person_id: int) -> list[int]:
    pid = identity.current_person(session, person_id)
    if pid is None:
        raise PrivacyError("not_found", f"person_id: {person_id} does not exist", 404)
    merged = session.scalars(select(Person.id).where(Person.merged_into == pid)).all()
    return [pid, *sorted(merged)]


@dataclass
class Identity:
    id_type: str
    stored: str
    raw: str | None
    display: str


def _identities(session: Session, pids: list[int]) -> list[Identity]:
    out = []
    for ident in session.scalars(
        select(Identifier).where(Identifier.person_id.in_(pids)).order_by(Identifier.id)
    ):
        raw = None
        if ident.id_type in DIRECT_TYPES:
            if ident.encrypted_value:
                raw = decrypt(ident.encrypted_value)
        else:
            raw = ident.id_value
        out.append(Identity(ident.id_type, ident.id_value, raw, ident.display))
    return out


def _jsonable(value):
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return value


def export_person(session: Session, person_id: int, *, actor: str, ip: str = "", reason: str = "") -> dict:
    """Everything liebian holds about a person, from both stores, as one JSON-ready dict.

    Direct identifiers appear decrypted (the subject's own data); the request is audited.
    """
    pids = _person_ids(session, person_id)
    idents = _identities(session, pids)
    operational: dict[str, list[dict]] = {}
    for table in store_tables(session):
        cols = [c for c in table.columns if c.name in PERSON_COLUMNS]
        if not cols or table.name in ("persons", "identifiers"):
            continue
        cond: ColumnElement[bool] = cols[0].in_(pids)
        for c in cols[1:]:
            cond = cond | c.in_(pids)
        rows = session.execute(select(table).where(cond)).mappings().all()
        if rows:
            operational[table.name] = [
                {k: _jsonable(v) for k, v in r.items() if not k.endswith(("_encrypted", "encrypted_value"))}
                for r in rows
            ]
    wh: dict[str, list[dict]] = {}
    with warehouse.connect() as con:
        for name, columns in _warehouse_person_columns(con).items():
            where = " OR ".join(f"{c} IN ({', '.join('?' * len(pids))})" for c in columns)
            cur = con.execute(f"SELECT * FROM {name} WHERE {where}", [*pids] * len(columns))  # noqa: S608 - names from the catalog
            names = [d[0] for d in cur.description]
            found = [dict(zip(names, (_jsonable(v) for v in row), strict=True)) for row in cur.fetchall()]
            if found:
                wh[name] = found
    result = {
        "person_id": pids[0],
        "merged_person_ids": pids[1:],
        "exported_at": utcnow().isoformat(),
        "identifiers": [{"id_type": i.id_type, "value": i.raw, "display": i.display} for i in idents],
        "consent": consent_state(session, pids[0]),
        "operational": operational,
        "warehouse": wh,
    }
    body = json.dumps(result, sort_keys=True, ensure_ascii=False, default=str)
    record = {
        "tables": {
            **{f"op.{k}": len(v) for k, v in operational.items()},
            **{f"wh.{k}": len(v) for k, v in wh.items()},
        }
    }
    req = _store_request(
        session, "export", pids[0], actor, reason, record, hashlib.sha256(body.encode()).hexdigest(), ip
    )
    mark = watermark.issue(  # the file handed out carries who exported it, when, for which request
        session, actor=actor, what=f"data-subject export (request {req.id})", filter_text=f"request {req.id}",
        rows=sum(record["tables"].values()), ip=ip,
    )  # fmt: skip
    return watermark.mark_document(result, mark)


def _warehouse_person_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        f"AND column_name IN ({', '.join('?' * len(PERSON_COLUMNS))})",
        list(PERSON_COLUMNS),
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def _warehouse_text_columns(con: duckdb.DuckDBPyConnection) -> dict[str, list[str]]:
    rows = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns WHERE table_schema = 'main' "
        "AND data_type = 'VARCHAR'"
    ).fetchall()
    out: dict[str, list[str]] = {}
    for table, column in rows:
        out.setdefault(table, []).append(column)
    return out


def _like(value: str) -> str:
    return "%" + value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def _trace_values(idents: list[Identity]) -> list[str]:
    values = set()
    for i in idents:
        forms = [i.stored, i.raw]
        if i.id_type == "phone" and i.raw:
            forms.append(normalize_phone(i.raw))  # as given ("139 1234 5678") and as digits
        for v in forms:
            if v and len(v) >= MIN_TRACE_LENGTH:
                values.add(v)
    return sorted(values)


def find_traces(session: Session, con: duckdb.DuckDBPyConnection, values: list[str]) -> dict[str, int]:
    """Rows that contain any of the values, per store.table.column, searched in every text column of
    both stores (what an erasure must leave at zero)."""
    found: dict[str, int] = {}
    values = [v for v in values if v and len(v) >= MIN_TRACE_LENGTH]
    if not values:
        return found
    for table in store_tables(session):
        for col in table.columns:
            if not isinstance(col.type, String | Text):
                continue
            cond: ColumnElement[bool] = col.like(_like(values[0]), escape="\\")
            for v in values[1:]:
                cond = cond | col.like(_like(v), escape="\\")
            n = session.scalar(select(func.count()).select_from(table).where(cond))
            if n:
                found[f"op.{table.name}.{col.name}"] = n
    for name, columns in _warehouse_text_columns(con).items():
        for column in columns:
            where = " OR ".join(f'contains("{column}", ?)' for _ in values)
            n = warehouse_count(con, f'SELECT count(*) FROM "{name}" WHERE {where}', values)  # noqa: S608
            if n:
                found[f"wh.{name}.{column}"] = n
    return found


ERASED = "[erased]"


def _erase_in_warehouse(pids: list[int], stored: list[str], values: list[str]) -> dict[str, int]:
    """Remove the identifiers from the warehouse in one transaction; rows changed per table."""
    ph = ", ".join("?" * len(pids))
    wh_counts: dict[str, int] = {}
    # The warehouse first: if the store's transaction fails afterwards, the identifiers are still
    # there and the request can simply be run again.
    with warehouse.connect() as con:
        con.execute("BEGIN TRANSACTION")
        wh_counts["identity_map"] = warehouse_count(
            con,
            f"DELETE FROM identity_map WHERE person_id IN ({ph})"
            + (f" OR id_value IN ({', '.join('?' * len(stored))})" if stored else ""),
            [*pids, *stored],
        )
        for table, extra in (
            ("events", ", device_id = NULL, ip = NULL, props = NULL"),
            ("orders", ", props = NULL"),
            ("messages", ", text = NULL, props = NULL"),
        ):
            wh_counts[table] = warehouse_count(
                con, f"UPDATE {table} SET user_id = '{ERASED}'{extra} WHERE person_id IN ({ph})", pids
            )
        if values:
            wh_counts["rejects"] = warehouse_count(
                con,
                "DELETE FROM rejects WHERE " + " OR ".join("contains(coalesce(raw, ''), ?)" for _ in values),
                values,
            )
        # anything else that carries a value (an inviter's props naming the friend, …)
        for table, cols in _warehouse_text_columns(con).items():
            for col in cols:
                for v in values:
                    n = warehouse_count(
                        con,
                        f'UPDATE "{table}" SET "{col}" = replace("{col}", ?, ?) WHERE contains("{col}", ?)',
                        [v, ERASED, v],
                    )
                    if n:
                        wh_counts[f"{table}.{col}"] = wh_counts.get(f"{table}.{col}", 0) + n
        con.execute("COMMIT")
        eventstore.commit(con)  # rewrite the person's days in the Parquet store, the old files go
    return wh_counts


def _erase_in_store(
    session: Session, pids: list[int], stored: list[str], values: list[str]
) -> tuple[dict[str, int], int]:
    """Remove the identifiers from the operational store (the evidence tables aside); rows changed per
    table and column, and how many ledger entries still carry a value."""
    op_counts: dict[str, int] = {}
    op_counts["identifiers"] = (
        session.query(Identifier).filter(Identifier.person_id.in_(pids)).delete(synchronize_session=False)
    )
    if stored:
        links = select(IdentityLink.id).where(
            IdentityLink.id_value_a.in_(stored) | IdentityLink.id_value_b.in_(stored)
        )
        # the merge log keeps the merge (person ids only) but loses its pointer to the evidence
        session.execute(update(PersonMerge).where(PersonMerge.link_id.in_(links)).values(link_id=None))
        op_counts["identity_links"] = (
            session.query(IdentityLink)
            .filter(IdentityLink.id_value_a.in_(stored) | IdentityLink.id_value_b.in_(stored))
            .delete(synchronize_session=False)
        )
    op_counts["consent_records"] = (
        session.query(ConsentRecord)
        .filter(ConsentRecord.person_id.in_(pids))
        .delete(synchronize_session=False)
    )
    kept_in_ledger = 0
    for table in store_tables(session):
        if table.name in UNTOUCHABLE:
            if table.name == "ledger_entries" and values:
                kept_in_ledger = sum(
                    session.scalar(
                        select(func.count()).select_from(table).where(c.like(_like(v), escape="\\"))
                    )
                    or 0
                    for c in table.columns
                    if isinstance(c.type, String | Text)
                    for v in values
                )
            continue
        person_cols = [c for c in table.columns if c.name in PERSON_COLUMNS]
        if table.info.get("erase") == "rows" and person_cols:  # a table of facts about persons only
            n = rowcount(session.execute(delete(table).where(person_cols[0].in_(pids))))
            if n:
                op_counts[f"{table.name}.rows"] = n
            continue
        personal = [c for c in table.columns if c.name in PERSONAL_COLUMNS]
        if person_cols and personal:
            cond: ColumnElement[bool] = person_cols[0].in_(pids)
            for c in person_cols[1:]:
                cond = cond | c.in_(pids)
            values_set = {c.name: (None if c.nullable else ERASED) for c in personal}
            n = rowcount(session.execute(update(table).where(cond).values(**values_set)))
            if n:
                op_counts[f"{table.name}.personal"] = n
        for col in table.columns:
            if not isinstance(col.type, String | Text) or col.primary_key:
                continue
            for v in values:
                n = rowcount(
                    session.execute(
                        update(table)
                        .where(col.like(_like(v), escape="\\"))
                        .values({col.name: func.replace(col, v, ERASED)})
                    )
                )
                if n:
                    op_counts[f"{table.name}.{col.name}"] = op_counts.get(f"{table.name}.{col.name}", 0) + n
    return op_counts, kept_in_ledger


def delete_person(session: Session, person_id: int, *, actor: str, ip: str = "", reason: str = "") -> dict:
    """Erase a person's identifiers from both stores (see the module docstring); returns the record."""
    pids = _person_ids(session, person_id)
    idents = _identities(session, pids)
    values = _trace_values(idents)
    stored = sorted({i.stored for i in idents})
    wh_counts = _erase_in_warehouse(pids, stored, values)
    with warehouse.connect() as con:
        file_counts = compaction.erase_in_files(con, values)
    compaction.compact_warehouse()  # freed DuckDB blocks keep the bytes: rewrite the file
    op_counts, kept_in_ledger = _erase_in_store(session, pids, stored, values)
    session.flush()
    with warehouse.connect(read_only=True) as con:
        traces = find_traces(session, con, values)
    traces.update({f"file.{k}": v for k, v in compaction.file_traces(values).items()})
    record = {
        "person_ids": pids,
        "identifiers_removed": [{"id_type": i.id_type, "display": i.display} for i in idents],
        "operational": {k: v for k, v in op_counts.items() if v},
        "warehouse": {k: v for k, v in wh_counts.items() if v},
        "files": file_counts,
        "kept": {
            "ledger_entries_with_a_value": kept_in_ledger,
            "note": "events, orders, referrals, rewards and ledger entries stay under the pseudonymous person id",
        },
        "traces_after": traces,
    }
    digest = hashlib.sha256(
        json.dumps(record, sort_keys=True, ensure_ascii=False, default=str).encode()
    ).hexdigest()
    request = _store_request(session, "delete", pids[0], actor, reason, record, digest, ip)
    return {**record, "request_id": request.id, "record_hash": digest}


def erase_person(person_id: int, *, actor: str, ip: str = "", reason: str = "") -> dict:
    """`delete_person` in its own transaction, then the store compacted (`VACUUM`) so that the
    freed pages keep no byte of the person (the warehouse is rewritten inside `delete_person`)."""
    with session_scope() as session:
        record = delete_person(session, person_id, actor=actor, ip=ip, reason=reason)
    touched = {key.split(".")[0] for key in record["operational"]}
    compaction.compact_store(touched)
    return record


def _store_request(
    session: Session, kind: str, person_id: int, actor: str, reason: str, record: dict, digest: str, ip: str
) -> DataSubjectRequest:
    req = DataSubjectRequest(
        kind=kind,
        person_id=person_id,
        requested_by=actor[:128],
        reason=reason or "",
        status="done",
        record=json.dumps(record, sort_keys=True, ensure_ascii=False, default=str),
        record_hash=digest,
        completed_at=utcnow(),
    )
    session.add(req)
    session.flush()
    audit(
        session,
        actor,
        f"privacy.{kind}",
        f"person:{person_id}",
        {"request_id": req.id, "record_hash": digest},
        ip,
    )
    return req


def verify_request(session: Session, request_id: int) -> bool:
    """The stored record still hashes to the hash written at the time (and to the audit chain)."""
    req = session.get(DataSubjectRequest, request_id)
    if req is None:
        raise PrivacyError("not_found", f"request {request_id} does not exist", 404)
    return (
        hashlib.sha256(req.record.encode()).hexdigest() == req.record_hash if req.kind == "delete" else True
    )


def list_requests(session: Session) -> list[dict]:
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "person_id": r.person_id,
            "requested_by": r.requested_by,
            "status": r.status,
            "record": json.loads(r.record),
            "record_hash": r.record_hash,
            "created_at": r.created_at,
            "completed_at": r.completed_at,
        }
        for r in session.scalars(select(DataSubjectRequest).order_by(DataSubjectRequest.id))
    ]


def reveal(
    session: Session, person_id: int, id_type: str, *, actor: str, ip: str = "", reason: str
) -> list[str]:
    """Decrypt a person's direct identifiers of one type — an audited, authorised act."""
    if not (reason or "").strip():
        raise PrivacyError("invalid", "reason: say why the identifier is revealed (it is audited)")
    if id_type not in DIRECT_TYPES:
        raise PrivacyError(
            "invalid", f"id_type: only direct identifiers are encrypted ({', '.join(sorted(DIRECT_TYPES))})"
        )
    pids = _person_ids(session, person_id)
    values = [
        normalize_phone(i.raw) if id_type == "phone" else i.raw
        for i in _identities(session, pids)
        if i.id_type == id_type and i.raw
    ]
    audit(
        session,
        actor,
        "pii.reveal",
        f"person:{pids[0]}",
        {"id_type": id_type, "count": len(values), "reason": reason},
        ip,
    )
    return values


# --- the legal deadline ----------------------------------------------------------------------------

# The rights a data-subject request exercises under PIPL (个人信息保护法): to know and to access or
# copy (arts. 44-45), portability (art. 45), correction (art. 46), deletion (art. 47), an
# explanation of the processing rules (art. 48) and withdrawal of consent (art. 15).
SUBJECT_REQUEST_CATEGORIES = (
    "access",
    "copy",
    "portability",
    "correction",
    "deletion",
    "explanation",
    "withdraw_consent",
)


def legal_deadline(received_at: datetime) -> datetime:
    """When a data-subject request received at `received_at` (naive UTC) must be answered.

    PIPL art. 50 asks for requests to be handled promptly without naming a figure; liebian uses
    `Settings.subject_request_deadline_days` (15 by default: the 2019
    《App违法违规收集使用个人信息行为认定方法》 allows at most 15 working days for deletion and
    correction requests, GB/T 35273-2020 §8.7 at most 30 days; 15 calendar days is never later
    than either). docs/complaints.md states the sources."""
    return received_at + timedelta(days=get_settings().subject_request_deadline_days)
