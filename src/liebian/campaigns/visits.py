"""Distinct visitors of an inviter's links: clicks and shares count once per visitor, and never the
inviter's own.

A visitor is known by the strongest identifier its click carries: a person (an identifier OneID
knows), else a device (the front end's device id, or the visitor cookie the short link sets), else
its IP address together with its user agent, which counts once within `visit_window_hours` (an IP
changes hands behind carrier NATs). The inviter's own identifiers are recorded when the code is
created or fetched and whenever a click is theirs: a click matching any of them (person, device or
IP + user agent) is a self-click, never counted; the fraud rule SELF_CLICKS scores repeats.

Only keyed hashes (`privacy.crypto.identifier_hmac`) of devices and IP + user agent are stored.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import ScalarSelect, bindparam, func, select, update
from sqlalchemy.orm import Session

from liebian.campaigns.models import Invite, InviteVisit
from liebian.config import get_settings
from liebian.db.base import table_of
from liebian.identity import service as identity
from liebian.identity.keys import IdentifierError
from liebian.privacy.crypto import identifier_hmac

Outcome = Literal["new", "repeat", "own"]
OWN = "own:"


def net_hash(ip: str | None, user_agent: str | None = None) -> str | None:
    """The keyed hash of an IP address (with the user agent): what is stored instead of the IP."""
    ip = (ip or "").strip()
    if not ip:
        return None
    return identifier_hmac(f"visit-net|{ip}|{(user_agent or '').strip()}")


@dataclass(frozen=True)
class Visitor:
    """The identifiers of one click or one inviter, as visit keys (strongest first)."""

    person: str | None = None
    device: str | None = None
    net: str | None = None

    def ids(self) -> list[str]:
        return [k for k in (self.person, self.device, self.net) if k]


def visitor_of(
    person_id: int | None = None,
    device_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> Visitor:
    device = (device_id or "").strip()
    net = net_hash(ip, user_agent)
    return Visitor(
        person=f"p{person_id}" if person_id is not None else None,
        device="d" + identifier_hmac(f"visit-device|{device}") if device else None,
        net=f"n{net}" if net else None,
    )


def known_person(session: Session, id_type: str | None, raw: str | None) -> int | None:
    """The OneID person of an identifier a click presents, if OneID knows it (a click founds no one;
    a malformed or unknown identifier is no person, and the click falls back to device or IP)."""
    if not id_type or not raw:
        return None
    try:
        key = identity.key_of(id_type, raw)
    except IdentifierError:
        return None
    return identity.lookup(session, [key]).get(key)


def lock_inviter(session: Session, campaign_id: str, inviter: int) -> None:
    """Serialise the visits of one inviter's links (a write on their invite rows: the row lock on
    PostgreSQL, the write lock on SQLite), so a visitor clicking twice at once counts once."""
    session.execute(
        update(Invite)
        .where(Invite.campaign_id == campaign_id, Invite.inviter_person_id == inviter)
        .values(clicks=Invite.clicks)
    )


def _row(session: Session, campaign_id: str, inviter: int, key: str) -> InviteVisit | None:
    return session.scalar(
        select(InviteVisit).where(
            InviteVisit.campaign_id == campaign_id,
            InviteVisit.inviter_person_id == inviter,
            InviteVisit.visitor_key == key,
        )
    )


def _add(session: Session, inv: Invite, key: str, now: datetime, *, own: bool, counted: bool) -> InviteVisit:
    row = InviteVisit(
        campaign_id=inv.campaign_id,
        inviter_person_id=inv.inviter_person_id,
        visitor_key=key,
        own=own,
        invite_id=inv.id,
        clicks=0,
        visits=1 if counted else 0,
        first_at=now,
        last_at=now,
        counted_at=now if counted else None,
    )
    session.add(row)
    return row


def record_own(session: Session, inv: Invite, me: Visitor, now: datetime, *, click: bool = False) -> None:
    """Remember the identifiers the inviter was seen with (creating or fetching the code, or
    clicking their own link); a self-click adds one to the strongest of them."""
    rows = []
    for key in me.ids():
        row = _row(session, inv.campaign_id, inv.inviter_person_id, OWN + key)
        if row is None:
            row = _add(session, inv, OWN + key, now, own=True, counted=False)
        row.last_at = now
        rows.append(row)
    if click and rows:
        rows[0].clicks += 1
    session.flush()


def _is_own(session: Session, inv: Invite, v: Visitor) -> bool:
    if v.person == f"p{inv.inviter_person_id}":
        return True
    own_keys = [OWN + k for k in v.ids()]
    if not own_keys:
        return False
    found = session.scalar(
        select(func.count()).where(
            InviteVisit.campaign_id == inv.campaign_id,
            InviteVisit.inviter_person_id == inv.inviter_person_id,
            InviteVisit.visitor_key.in_(own_keys),
        )
    )
    return bool(found)


def count_click(
    session: Session, inv: Invite, v: Visitor, now: datetime, *, minted: str | None = None
) -> Outcome:
    """Record one click on an inviter's link: `new` (a distinct visitor, counted on the invite),
    `repeat` (a visitor counted before) or `own` (the inviter's own click, never counted).

    `minted` is the visitor cookie the short link sets on this click (a device id not presented
    yet): it is not trusted as the click's identity (a client that drops cookies would count anew
    on every click) but stands for the same visitor from now on (the inviter's own cookie is theirs)."""
    lock_inviter(session, inv.campaign_id, inv.inviter_person_id)
    cookie = visitor_of(device_id=minted).device
    if _is_own(session, inv, v):
        record_own(session, inv, v, now, click=True)
        if cookie:
            record_own(session, inv, Visitor(device=cookie), now)
        return "own"
    if cookie and _row(session, inv.campaign_id, inv.inviter_person_id, cookie) is None:
        _add(session, inv, cookie, now, own=False, counted=False)  # the same visitor as this click
    keys = v.ids()
    if not keys:  # nothing at all to tell visitors apart: not countable
        return "repeat"
    key = keys[0]
    row = _row(session, inv.campaign_id, inv.inviter_person_id, key)
    window = timedelta(hours=get_settings().visit_window_hours)
    outcome: Outcome = "repeat"
    if row is None:
        row = _add(session, inv, key, now, own=False, counted=True)
        outcome = "new"
    elif key == v.net and (row.counted_at is None or row.counted_at <= now - window):
        row.visits += 1
        row.counted_at = now
        outcome = "new"
    row.clicks += 1
    row.last_at = now
    if outcome == "new":
        session.execute(update(Invite).where(Invite.id == inv.id).values(clicks=Invite.clicks + 1))
    session.flush()
    return outcome


# Built once: every accept runs it (the inline self-click rule), and building the expression costs
# more than SQLite takes to answer it.
_SELF_CLICKS = select(func.coalesce(func.sum(InviteVisit.clicks), 0)).where(
    InviteVisit.campaign_id == bindparam("b_cid"),
    InviteVisit.inviter_person_id == bindparam("b_inviter"),
    InviteVisit.own.is_(True),
)


def self_clicks_counted(campaign: str, inviter: str) -> ScalarSelect[Any]:
    """`self_clicks` as a scalar subquery with the named bind parameters (the inline risk checks
    read it in their one statement of counts)."""
    visits = table_of(InviteVisit)  # table columns: the statement stays a Core one (`db.session.core`)
    return (
        select(func.coalesce(func.sum(visits.c.clicks), 0))
        .where(
            visits.c.campaign_id == bindparam(campaign),
            visits.c.inviter_person_id == bindparam(inviter),
            visits.c.own.is_(True),
        )
        .scalar_subquery()
    )


def self_clicks(session: Session, campaign_id: str, inviter: int) -> int:
    """How often the inviter opened their own links in the campaign."""
    total = session.scalar(_SELF_CLICKS, {"b_cid": campaign_id, "b_inviter": inviter})
    return int(total or 0)


def follow_merge(session: Session, merged: int, survivor: int) -> None:
    """An inviter merged into another person (OneID): their visits become the survivor's; a visitor
    both had keeps the survivor's row, with the clicks of both."""
    theirs = set(
        session.execute(
            select(InviteVisit.campaign_id, InviteVisit.visitor_key).where(
                InviteVisit.inviter_person_id == survivor
            )
        ).tuples()
    )
    for row in session.scalars(select(InviteVisit).where(InviteVisit.inviter_person_id == merged)).all():
        if (row.campaign_id, row.visitor_key) in theirs:
            session.execute(
                update(InviteVisit)
                .where(
                    InviteVisit.inviter_person_id == survivor,
                    InviteVisit.campaign_id == row.campaign_id,
                    InviteVisit.visitor_key == row.visitor_key,
                )
                .values(clicks=InviteVisit.clicks + row.clicks)
            )
            session.delete(row)
        else:
            row.inviter_person_id = survivor
    session.flush()
