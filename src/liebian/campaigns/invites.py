"""Invites: signed codes and links (渠道活码), clicks on the short link, what a code stands for, and
the share posters.

A code is a random 13-character token plus a 10-character HMAC of token, campaign and inviter, so
a forged or altered code is refused without a lookup of anything but the token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import re
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.campaigns import outbox, visits
from liebian.campaigns.common import (
    CampaignError,
    audit,
    effective_status,
    live_rules,
    load_campaign,
    rules_of,
    stmt,
)
from liebian.campaigns.models import Campaign, Invite
from liebian.campaigns.participants import resolve_person
from liebian.campaigns.schemas import Participant
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.identity import service as identity
from liebian.privacy.crypto import keys

CODE_RE = re.compile(r"^[a-z2-7]{23}$")


def _b32(raw: bytes) -> str:
    return base64.b32encode(raw).decode().rstrip("=").lower()


def _code_mac(token: str, campaign_id: str, inviter: int) -> str:
    msg = f"invite|{token}|{campaign_id}|{inviter}".encode()
    return _b32(hmac.new(keys().hmac_key, msg, hashlib.sha256).digest()[:6])


def invite_code(inv: Invite) -> str:
    return inv.token + _code_mac(inv.token, inv.campaign_id, inv.inviter_person_id)


def invite_link(code: str) -> str:
    return f"{get_settings().public_url.rstrip('/')}/i/{code}"


def invite_view(inv: Invite) -> dict:
    code = invite_code(inv)
    return {
        "code": code,
        "link": invite_link(code),
        "poster_url": f"/api/v1/invites/{code}/poster.png",
        "campaign_id": inv.campaign_id,
        "channel": inv.channel,
        "inviter_person_id": inv.inviter_person_id,
        "clicks": inv.clicks,
        "expires_at": inv.expires_at,
    }


def _signed_for(session: Session, inv: Invite, mac: str) -> bool:
    """Whether the code's signature is the invite's: signed for its inviter, or for a person OneID
    merged into the inviter since (the invite then moved to the survivor, its code stays valid)."""
    if hmac.compare_digest(_code_mac(inv.token, inv.campaign_id, inv.inviter_person_id), mac):
        return True
    return any(
        hmac.compare_digest(_code_mac(inv.token, inv.campaign_id, old), mac)
        for old in identity.merged_from(session, inv.inviter_person_id)
    )


def verify_code(session: Session, code: str, now: datetime | None = None) -> Invite:
    """The invite a code stands for: 400 malformed or forged, 404 unknown, 410 expired."""
    code = (code or "").strip().lower()
    if not CODE_RE.match(code):
        raise CampaignError(400, "malformed_code", "the invite code is malformed", field="code")
    # The campaign comes in the same query and stays in the identity map for load_campaign().
    row = session.execute(stmt(session, "invite_by_token"), {"b_token": code[:13]}).first()
    inv = row[0] if row else None
    if row:  # the identity map holds objects weakly: keep the campaign for this session
        session.info.setdefault("campaign_refs", []).append(row[1])
    if inv is None:
        raise CampaignError(404, "unknown_code", "no such invite code", field="code")
    if not _signed_for(session, inv, code[13:]):
        raise CampaignError(400, "forged_code", "the invite code's signature does not match", field="code")
    if (now or utcnow()) > inv.expires_at:
        raise CampaignError(
            410,
            "expired_code",
            f"the invite code expired at {inv.expires_at:%Y-%m-%d %H:%M} UTC",
            field="code",
        )
    return inv


def get_invite(
    session: Session,
    campaign_id: str,
    p: Participant,
    *,
    channel: str = "share",
    now: datetime | None = None,
    device_id: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
) -> dict:
    """My invite link for a campaign and channel (渠道活码): the same code until it expires.

    The device and IP + user agent the inviter asked from are remembered (hashed) as theirs: their
    own clicks on the link never count (`visits`)."""
    now = now or utcnow()
    c = load_campaign(session, campaign_id)
    rules = live_rules(session, c, now)
    pid = resolve_person(session, p, source=f"campaign:{c.id}")
    inv = session.scalar(
        select(Invite)
        .where(
            Invite.campaign_id == c.id,
            Invite.inviter_person_id == pid,
            Invite.channel == channel,
            Invite.expires_at > now,
        )
        .order_by(Invite.id)
        .limit(1)
    )
    if inv is None:
        expires = now + timedelta(days=rules.invite_ttl_days)
        if rules.end_at:
            expires = min(expires, rules.end_at)
        inv = Invite(
            token=_b32(os.urandom(8)),
            campaign_id=c.id,
            inviter_person_id=pid,
            channel=channel,
            nickname=p.nickname or "",
            created_at=now,
            expires_at=expires,
        )
        session.add(inv)
        session.flush()
        audit(session, "invite.create", c.id, {"channel": channel}, entity="invite", entity_id=inv.id)
        outbox.invite_created(session, inv, invite_code(inv))
    elif p.nickname and p.nickname != inv.nickname:
        inv.nickname = p.nickname
    visits.lock_inviter(session, c.id, pid)
    visits.record_own(session, inv, visits.visitor_of(pid, device_id, ip, user_agent), now)
    session.refresh(inv)
    return invite_view(inv)


def click(
    session: Session,
    code: str,
    *,
    ip: str | None = None,
    user_agent: str | None = None,
    device_id: str | None = None,
    id_type: str | None = None,
    visitor_id: str | None = None,
    minted: str | None = None,
) -> tuple[Invite, str]:
    """Record a click on an invite link (an `invite_click` event) and return where to send the browser.

    The invite's click count moves only for a distinct visitor who is not the inviter (`visits`):
    the visitor's person (`id_type`/`visitor_id`, when OneID knows it), else device (`device_id`,
    or the visitor cookie), else IP + user agent; `minted` is the cookie set by this click."""
    now = utcnow()
    inv = verify_code(session, code, now)
    person = visits.known_person(session, id_type, visitor_id)
    visitor = visits.visitor_of(person, device_id, ip, user_agent)
    outcome = visits.count_click(session, inv, visitor, now, minted=minted)
    code = invite_code(inv)
    outbox.record_event(
        session,
        event="invite_click",
        ts=now,
        person_id=inv.inviter_person_id,
        campaign_id=inv.campaign_id,
        code=code,
        channel=inv.channel,
        ip=visits.net_hash(ip),  # the warehouse keeps the keyed hash, never the address
        props={"user_agent": user_agent or "", "visit": outcome},
        key=f"click:{inv.id}:{os.urandom(6).hex()}",
    )
    c = session.get_one(Campaign, inv.campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    target = rules.landing_url or f"{get_settings().public_url.rstrip('/')}/api/v1/invites/{code}"
    sep = "&" if "?" in target else "?"
    return inv, f"{target}{sep}code={code}" if rules.landing_url else target


def invite_info(session: Session, code: str) -> dict:
    inv = verify_code(session, code)
    c = load_campaign(session, inv.campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return {
        **invite_view(inv),
        "title": rules.title,
        "rules_text": rules.rules_text,
        "nickname": inv.nickname,
        "status": effective_status(c, rules, utcnow()),
    }


def poster_png(session: Session, code: str) -> bytes:
    """The share poster of an invite: campaign title, the inviter's nickname, a QR code of the link."""
    from liebian.campaigns import poster  # Pillow and qrcode load only where posters are drawn

    inv = verify_code(session, code)
    c = load_campaign(session, inv.campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return poster.render(rules.title, inv.nickname, invite_link(invite_code(inv)), rules.poster_template)


def poster_preview(session: Session, campaign_id: str) -> bytes:
    """The campaign's poster as its participants will get it, for the operator to check before
    launch: the current version's title and template, a placeholder nickname and a sample link."""
    from liebian.campaigns import poster  # Pillow and qrcode load only where posters are drawn

    c = load_campaign(session, campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return poster.render(rules.title, "", invite_link("preview"), rules.poster_template)
