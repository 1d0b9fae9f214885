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
from datetime import UTC, datetime, timedelta

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
from liebian.campaigns.schemas import CampaignRules, Participant, Reward
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.display import display_zone
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
        "poster_url": poster_url(code, inv.expires_at),
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
        # its stage plan, or None: read in the same query, for stages.admit in this transaction
        session.info.setdefault("stage_plans", {})[row[0].campaign_id] = row[2]
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


# --- posters ------------------------------------------------------------------------------------
# A poster's URL is signed (HMAC under the app's key, domain-separated from invite codes) and expires
# with its invite, so an H5 page's <img> shows it without an API key and nobody can mint one.


def _poster_sig(code: str, exp: int) -> str:
    msg = f"poster|{code}|{exp}".encode()
    return _b32(hmac.new(keys().hmac_key, msg, hashlib.sha256).digest()[:10])


def poster_path(code: str, expires_at: datetime) -> str:
    """The signed path of an invite's poster, expiring with the invite: /p/{code}.png?exp=…&sig=…"""
    exp = int(expires_at.replace(tzinfo=UTC).timestamp())
    return f"/p/{code}.png?exp={exp}&sig={_poster_sig(code, exp)}"


def poster_url(code: str, expires_at: datetime) -> str:
    """The poster's signed URL on the public address (what an H5 page's <img> shows)."""
    return get_settings().public_url.rstrip("/") + poster_path(code, expires_at)


def check_poster_link(code: str, exp: int, sig: str, now: datetime | None = None) -> None:
    """403 unless `sig` signs (code, exp) and `exp` has not passed."""
    if not hmac.compare_digest(_poster_sig(code.strip().lower(), exp), (sig or "").strip().lower()):
        raise CampaignError(
            403, "bad_poster_signature", "the poster link's signature does not match", field="sig"
        )
    if (now or utcnow()).replace(tzinfo=UTC).timestamp() > exp:
        raise CampaignError(403, "expired_poster_link", "the poster link has expired", field="exp")


def _deadline_text(rules: CampaignRules) -> str:
    if not (rules.poster.show_deadline and rules.end_at):
        return ""
    end = rules.end_at if rules.end_at.tzinfo else rules.end_at.replace(tzinfo=UTC)
    return f"活动截止 {end.astimezone(display_zone()):%Y-%m-%d %H:%M}"


def _yuan(fen: int) -> str:
    return f"¥{fen / 100:,.2f}".replace(".00", "")


def reward_text(rules: CampaignRules) -> str:
    """What the poster promises: the operator's text, else written from the rewards (the first two
    tiers, the inviter's and the friend's reward, or the best reward)."""
    if rules.poster.reward_text:
        return rules.poster.reward_text

    def named(r: Reward) -> str:
        return r.name or _yuan(r.value_fen)

    if rules.tiers:
        return "，".join(f"邀 {t.threshold} 人得 {named(t.reward)}" for t in rules.tiers[:2])
    if rules.inviter_reward or rules.friend_reward:
        parts = [f"你得 {named(rules.inviter_reward)}"] if rules.inviter_reward else []
        parts += [f"好友得 {named(rules.friend_reward)}"] if rules.friend_reward else []
        return "，".join(parts)
    best = max(rules.rewards(), key=lambda r: r.value_fen, default=None)
    return f"最高得 {named(best)}" if best else ""


def render_poster(rules: CampaignRules, nickname: str, link: str) -> bytes:
    """A poster of these rules for one inviter (or the preview: no nickname, a sample link)."""
    from liebian.campaigns import poster  # Pillow and qrcode load only where posters are drawn

    design = rules.poster
    return poster.render(
        rules.title, nickname, link, rules.poster_template, reward=reward_text(rules),
        deadline=_deadline_text(rules), brand=design.brand, background=design.background,
        pattern=design.pattern, show_avatar=design.show_avatar,
    )  # fmt: skip


def poster_png(session: Session, code: str) -> bytes:
    """The share poster of an invite: brand, title, reward, the inviter's nickname, a QR code of the
    link, the deadline."""
    inv = verify_code(session, code)
    c = load_campaign(session, inv.campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return render_poster(rules, inv.nickname, invite_link(invite_code(inv)))


def poster_preview(session: Session, campaign_id: str) -> bytes:
    """The campaign's poster as its participants will get it, for the operator to check before
    launch: the current version's rules, a placeholder nickname and a sample link."""
    c = load_campaign(session, campaign_id)
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    return render_poster(rules, "", invite_link("preview"))
