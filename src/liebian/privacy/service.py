"""Consent, data-subject requests (export, erasure), retention, key rotation, the data inventory.

Consent: versioned privacy notices; an append-only record per grant/withdrawal per person and
purpose; `has_consent` reads the newest record, so a withdrawal counts from the moment it is stored.
A notice can require consent again for some purposes (a material change): older grants for those
purposes then no longer count.

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

from sqlalchemy import String, Text, func, select, update
from sqlalchemy.orm import Session

from liebian.auth.service import audit
from liebian.config import get_settings
from liebian.db.base import Base, utcnow
from liebian.errors import DomainError
from liebian.identity import service as identity
from liebian.identity.keys import DIRECT_TYPES
from liebian.identity.models import Identifier, IdentityLink, Person, PersonMerge
from liebian.lazy import lazy_import
from liebian.privacy.crypto import decrypt, encrypt, key_id_of, keys, normalize_phone
from liebian.privacy.models import ConsentRecord, DataSubjectRequest, PrivacyNotice

# deferred for start-up time: DuckDB imported on first use (liebian/lazy.py)
duckdb = lazy_import("duckdb")

PURPOSES = ("collection", "marketing", "analytics", "sharing")
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
UNTOUCHABLE = frozenset({"ledger_entries", "ledger_head", "audit_log", "audit_head", "privacy_requests"})
# Columns with personal data of the row's person besides identifiers: cleared on erasure.
PERSONAL_COLUMNS = ("device_id", "ip", "ua_hash", "nickname")
# Ciphertext columns re-sealed when the encryption key rotates: (table, primary key, column)
CIPHERTEXT_COLUMNS = (
    ("identifiers", "id", "encrypted_value"),
    ("webhook_endpoints", "id", "secret_encrypted"),
    ("report_subscriptions", "id", "secret_encrypted"),
    ("monitor_channels", "id", "target_encrypted"),
    ("monitor_channels", "id", "secret_encrypted"),
)
MIN_TRACE_LENGTH = 5  # shorter values would match unrelated text


class PrivacyError(DomainError):
    default_status = 422


def _purposes(values) -> list[str]:
    values = [v.strip() for v in (values or []) if v and v.strip()]
    bad = [v for v in values if v not in PURPOSES]
    if bad:
        raise PrivacyError("invalid", f"purposes: unknown {', '.join(bad)}; expected {', '.join(PURPOSES)}")
    return sorted(set(values), key=PURPOSES.index)


# --- notices and consent -----------------------------------------------------------------------


def _notice_view(n: PrivacyNotice) -> dict:
    return {
        "version": n.version,
        "title": n.title,
        "body": n.body,
        "purposes": n.purposes.split(),
        "reconsent_purposes": n.reconsent_purposes.split(),
        "published_by": n.published_by,
        "published_at": n.published_at,
    }


def publish_notice(
    session: Session,
    *,
    title: str,
    body: str,
    purposes: list[str],
    reconsent_purposes: list[str] | None = None,
    actor: str,
    ip: str = "",
) -> dict:
    purposes = _purposes(purposes)
    if not purposes:
        raise PrivacyError("invalid", "purposes: a notice names at least one purpose")
    reconsent = _purposes(reconsent_purposes)
    if set(reconsent) - set(purposes):
        raise PrivacyError("invalid", "reconsent_purposes: must be among the notice's purposes")
    if not (title or "").strip() or not (body or "").strip():
        raise PrivacyError("invalid", "title/body: a notice needs a title and a text")
    version = (session.scalar(select(func.max(PrivacyNotice.version))) or 0) + 1
    notice = PrivacyNotice(
        version=version,
        title=title.strip()[:200],
        body=body,
        purposes=" ".join(purposes),
        reconsent_purposes=" ".join(reconsent),
        published_by=actor[:128],
    )
    session.add(notice)
    session.flush()
    audit(
        session,
        actor,
        "privacy.notice.publish",
        f"notice:{version}",
        {"purposes": purposes, "reconsent": reconsent},
        ip,
    )
    return _notice_view(notice)


def list_notices(session: Session) -> list[dict]:
    return [_notice_view(n) for n in session.scalars(select(PrivacyNotice).order_by(PrivacyNotice.version))]


def current_notice(session: Session) -> dict | None:
    n = session.scalar(select(PrivacyNotice).order_by(PrivacyNotice.version.desc()).limit(1))
    return _notice_view(n) if n else None


def _reconsent_floor(session: Session, purpose: str) -> int:
    """The oldest notice version a grant for this purpose may have been given under."""
    floor = 0
    for version, reconsent in session.execute(
        select(PrivacyNotice.version, PrivacyNotice.reconsent_purposes)
    ):
        if purpose in reconsent.split():
            floor = max(floor, version)
    return floor


def record_consent(
    session: Session,
    person_id: int,
    purpose: str,
    granted: bool,
    *,
    notice_version: int | None = None,
    source: str = "",
    actor: str,
) -> dict:
    """Store a grant or a withdrawal; it counts from now on (the newest record decides)."""
    _purposes([purpose])
    pid = identity.current_person(session, person_id)
    if pid is None:
        raise PrivacyError("not_found", f"person_id: {person_id} does not exist", 404)
    if notice_version is None:
        current = current_notice(session)
        if current is None:
            if granted:
                raise PrivacyError(
                    "invalid", "notice_version: publish a privacy notice before recording consent"
                )
            notice_version = 0
        else:
            notice_version = current["version"]
    elif session.scalar(select(PrivacyNotice.id).where(PrivacyNotice.version == notice_version)) is None:
        raise PrivacyError("invalid", f"notice_version: version {notice_version} was never published")
    if granted:
        covered = session.scalar(
            select(PrivacyNotice.purposes).where(PrivacyNotice.version == notice_version)
        )
        if purpose not in (covered or "").split():
            raise PrivacyError(
                "invalid", f"purpose: notice version {notice_version} does not describe {purpose!r}"
            )
    rec = ConsentRecord(
        person_id=pid,
        purpose=purpose,
        granted=bool(granted),
        notice_version=notice_version,
        source=(source or "")[:64],
        recorded_by=actor[:128],
    )
    session.add(rec)
    session.flush()
    return {
        "id": rec.id,
        "person_id": pid,
        "purpose": purpose,
        "granted": rec.granted,
        "notice_version": notice_version,
        "recorded_at": rec.recorded_at,
    }


def _latest(session: Session, person_ids: list[int], purpose: str) -> dict[int, ConsentRecord]:
    newest = (
        select(ConsentRecord.person_id, func.max(ConsentRecord.id).label("last_id"))
        .where(ConsentRecord.person_id.in_(person_ids), ConsentRecord.purpose == purpose)
        .group_by(ConsentRecord.person_id)
        .subquery()
    )
    rows = session.scalars(select(ConsentRecord).join(newest, ConsentRecord.id == newest.c.last_id))
    return {r.person_id: r for r in rows}


def has_consent(session: Session, person_id: int, purpose: str) -> bool:
    """Whether the person's newest record for the purpose is a grant that still counts.

    Call it before any marketing action (automation) and before person-level analytics that need
    the `analytics` purpose. No record means no consent.
    """
    return person_id in consented(session, [person_id], purpose)


def consented(session: Session, person_ids, purpose: str) -> set[int]:
    """The subset of person_ids (as given, merged ids followed) that currently consent to purpose."""
    _purposes([purpose])
    person_ids = list(dict.fromkeys(int(p) for p in person_ids))
    if not person_ids:
        return set()
    merged = dict(
        session.execute(select(Person.id, Person.merged_into).where(Person.id.in_(person_ids))).all()
    )
    current = {p: (merged.get(p) or p) for p in person_ids}
    latest = _latest(session, sorted(set(current.values())), purpose)
    floor = _reconsent_floor(session, purpose)
    ok = {pid for pid, r in latest.items() if r.granted and r.notice_version >= floor}
    return {p for p, c in current.items() if c in ok}


def consent_state(session: Session, person_id: int) -> list[dict]:
    pid = identity.current_person(session, person_id)
    if pid is None:
        raise PrivacyError("not_found", f"person_id: {person_id} does not exist", 404)
    out = []
    for purpose in PURPOSES:
        r = _latest(session, [pid], purpose).get(pid)
        out.append(
            {
                "purpose": purpose,
                "granted": bool(r and r.granted),
                "effective": has_consent(session, pid, purpose),
                "notice_version": r.notice_version if r else None,
                "recorded_at": r.recorded_at if r else None,
                "source": r.source if r else None,
            }
        )
    return out


def _follow_merges(session: Session, final: dict[int, int]) -> None:
    """Consent follows OneID merges: the merged person's records move to the survivor."""
    for merged, survivor in final.items():
        if merged != survivor:
            session.execute(
                update(ConsentRecord).where(ConsentRecord.person_id == merged).values(person_id=survivor)
            )


if _follow_merges not in identity.MERGE_HOOKS:
    identity.MERGE_HOOKS.append(_follow_merges)


# --- the person's footprint --------------------------------------------------------------------


def _tables(session: Session | None = None):
    """Every model table (of every domain) that exists in the store."""
    from sqlalchemy import inspect

    from liebian.db.migrate import import_all_models

    import_all_models()
    if session is None:
        return Base.metadata.sorted_tables
    present = set(inspect(session.connection()).get_table_names())
    return [t for t in Base.metadata.sorted_tables if t.name in present]


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
    for table in _tables(session):
        cols = [c for c in table.columns if c.name in PERSON_COLUMNS]
        if not cols or table.name in ("persons", "identifiers"):
            continue
        cond = cols[0].in_(pids)
        for c in cols[1:]:
            cond = cond | c.in_(pids)
        rows = session.execute(select(table).where(cond)).mappings().all()
        if rows:
            operational[table.name] = [
                {k: _jsonable(v) for k, v in r.items() if not k.endswith(("_encrypted", "encrypted_value"))}
                for r in rows
            ]
    from liebian.engine import warehouse

    wh: dict[str, list[dict]] = {}
    with warehouse.connect() as con:
        for table, cols in _warehouse_person_columns(con).items():
            where = " OR ".join(f"{c} IN ({', '.join('?' * len(pids))})" for c in cols)
            cur = con.execute(f"SELECT * FROM {table} WHERE {where}", [*pids] * len(cols))  # noqa: S608 - names from the catalog
            names = [d[0] for d in cur.description]
            rows = [dict(zip(names, (_jsonable(v) for v in row), strict=True)) for row in cur.fetchall()]
            if rows:
                wh[table] = rows
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
    _store_request(
        session, "export", pids[0], actor, reason, record, hashlib.sha256(body.encode()).hexdigest(), ip
    )
    return result


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
    for table in _tables(session):
        for col in table.columns:
            if not isinstance(col.type, String | Text):
                continue
            cond = col.like(_like(values[0]), escape="\\")
            for v in values[1:]:
                cond = cond | col.like(_like(v), escape="\\")
            n = session.scalar(select(func.count()).select_from(table).where(cond))
            if n:
                found[f"op.{table.name}.{col.name}"] = n
    for table, cols in _warehouse_text_columns(con).items():
        for col in cols:
            where = " OR ".join(f'contains("{col}", ?)' for _ in values)
            n = con.execute(f'SELECT count(*) FROM "{table}" WHERE {where}', values).fetchone()[0]  # noqa: S608
            if n:
                found[f"wh.{table}.{col}"] = n
    return found


ERASED = "[erased]"


def delete_person(session: Session, person_id: int, *, actor: str, ip: str = "", reason: str = "") -> dict:
    """Erase a person's identifiers from both stores (see the module docstring); returns the record."""
    from liebian.engine import warehouse

    pids = _person_ids(session, person_id)
    idents = _identities(session, pids)
    values = _trace_values(idents)
    stored = sorted({i.stored for i in idents})
    ph = ", ".join("?" * len(pids))
    wh_counts: dict[str, int] = {}
    # The warehouse first: if the store's transaction fails afterwards, the identifiers are still
    # there and the request can simply be run again.
    with warehouse.connect() as con:
        con.execute("BEGIN TRANSACTION")
        wh_counts["identity_map"] = _wh_count(
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
            wh_counts[table] = _wh_count(
                con, f"UPDATE {table} SET user_id = '{ERASED}'{extra} WHERE person_id IN ({ph})", pids
            )
        if values:
            wh_counts["rejects"] = _wh_count(
                con,
                "DELETE FROM rejects WHERE " + " OR ".join("contains(coalesce(raw, ''), ?)" for _ in values),
                values,
            )
        # anything else that carries a value (an inviter's props naming the friend, …)
        for table, cols in _warehouse_text_columns(con).items():
            for col in cols:
                for v in values:
                    n = _wh_count(
                        con,
                        f'UPDATE "{table}" SET "{col}" = replace("{col}", ?, ?) WHERE contains("{col}", ?)',
                        [v, ERASED, v],
                    )
                    if n:
                        wh_counts[f"{table}.{col}"] = wh_counts.get(f"{table}.{col}", 0) + n
        con.execute("COMMIT")

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
    for table in _tables(session):
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
        personal = [c for c in table.columns if c.name in PERSONAL_COLUMNS]
        if person_cols and personal:
            cond = person_cols[0].in_(pids)
            for c in person_cols[1:]:
                cond = cond | c.in_(pids)
            values_set = {c.name: (None if c.nullable else ERASED) for c in personal}
            n = session.execute(update(table).where(cond).values(**values_set)).rowcount
            if n:
                op_counts[f"{table.name}.personal"] = n
        for col in table.columns:
            if not isinstance(col.type, String | Text) or col.primary_key:
                continue
            for v in values:
                n = session.execute(
                    update(table)
                    .where(col.like(_like(v), escape="\\"))
                    .values({col.name: func.replace(col, v, ERASED)})
                ).rowcount
                if n:
                    op_counts[f"{table.name}.{col.name}"] = op_counts.get(f"{table.name}.{col.name}", 0) + n
    session.flush()
    with warehouse.connect(read_only=True) as con:
        traces = find_traces(session, con, values)
    record = {
        "person_ids": pids,
        "identifiers_removed": [{"id_type": i.id_type, "display": i.display} for i in idents],
        "operational": {k: v for k, v in op_counts.items() if v},
        "warehouse": {k: v for k, v in wh_counts.items() if v},
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


def _wh_count(con: duckdb.DuckDBPyConnection, sql: str, params: list) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


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


# --- retention and keys ------------------------------------------------------------------------

RETENTION_COLUMNS = {"events": "ts", "messages": "ts", "rejects": "rejected_at"}


def apply_retention(now: datetime | None = None, actor: str = "system:retention") -> dict[str, int]:
    """Delete warehouse rows older than the configured days (settings.retention_days; 0 keeps)."""
    from liebian.db.session import session_scope
    from liebian.engine import warehouse

    now = now or utcnow()
    days = get_settings().retention_days
    deleted: dict[str, int] = {}
    with warehouse.connect() as con:
        for table, column in RETENTION_COLUMNS.items():
            keep = int(days.get(table, 0) or 0)
            if keep <= 0:
                continue
            cutoff = now - timedelta(days=keep)
            deleted[table] = _wh_count(con, f"DELETE FROM {table} WHERE {column} < ?", [cutoff])
    with session_scope() as s:
        audit(s, actor, "privacy.retention", "warehouse", {"deleted": deleted, "days": days})
    return deleted


def reencrypt_all(session: Session, batch: int = 1000) -> dict[str, int]:
    """Re-seal every ciphertext that is not under the active key; returns counts per table."""
    from sqlalchemy import Table

    active = keys().active_kid
    tables = {t.name: t for t in _tables(session)}
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
    tables = {t.name: t for t in _tables(session)}
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
