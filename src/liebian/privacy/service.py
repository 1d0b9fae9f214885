"""Consent: versioned privacy notices; an append-only record per grant/withdrawal per person and
purpose; `has_consent` reads the newest record, so a withdrawal counts from the moment it is stored.
A notice can require consent again for some purposes (a material change): older grants for those
purposes then no longer count.

Also what the other privacy modules share: the error, every table of the store, a warehouse row
count. Data-subject requests (export, erasure, reveal) are in `subject_requests.py`; retention, key
rotation and the data inventory in `retention.py`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Table, func, inspect, select, update
from sqlalchemy.orm import Session

from liebian.auth.service import audit
from liebian.db.base import Base
from liebian.db.migrate import import_all_models
from liebian.errors import DomainError
from liebian.identity import service as identity
from liebian.identity.models import Person
from liebian.lazy import lazy_import
from liebian.privacy.models import ConsentRecord, PrivacyNotice

if TYPE_CHECKING:
    import duckdb
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")

PURPOSES = ("collection", "marketing", "analytics", "sharing")


class PrivacyError(DomainError):
    default_status = 422


def _purposes(given: Iterable[str] | None) -> list[str]:
    values = [v.strip() for v in (given or []) if v and v.strip()]
    bad = [v for v in values if v not in PURPOSES]
    if bad:
        raise PrivacyError("invalid", f"purposes: unknown {', '.join(bad)}; expected {', '.join(PURPOSES)}")
    return sorted(set(values), key=PURPOSES.index)


# --- notices and consent -----------------------------------------------------------------------


def _notice_view(n: PrivacyNotice) -> dict[str, Any]:
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
) -> dict[str, Any]:
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


def list_notices(session: Session) -> list[dict[str, Any]]:
    return [_notice_view(n) for n in session.scalars(select(PrivacyNotice).order_by(PrivacyNotice.version))]


def current_notice(session: Session) -> dict[str, Any] | None:
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
) -> dict[str, Any]:
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


def consented(session: Session, person_ids: Iterable[int], purpose: str) -> set[int]:
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


def consent_state(session: Session, person_id: int) -> list[dict[str, Any]]:
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


def follow_merges(session: Session, final: dict[int, int]) -> None:
    """Consent follows OneID merges: the merged person's records move to the survivor (a merge
    follower, wired in liebian/bootstrap.py)."""
    for merged, survivor in final.items():
        if merged != survivor:
            session.execute(
                update(ConsentRecord).where(ConsentRecord.person_id == merged).values(person_id=survivor)
            )


# --- the person's footprint --------------------------------------------------------------------


def store_tables(session: Session | None = None) -> list[Table]:
    """Every model table (of every domain) that exists in the store."""

    import_all_models()
    if session is None:
        return Base.metadata.sorted_tables
    present = set(inspect(session.connection()).get_table_names())
    return [t for t in Base.metadata.sorted_tables if t.name in present]


def warehouse_count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
