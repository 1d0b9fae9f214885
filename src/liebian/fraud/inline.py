"""Inline risk checks, run by the campaign engine when an invite is accepted and when a conversion is
reported (`campaigns.service.RISK_CHECKS`). Each rule returns RiskSignals with a stable reason code
(reasons.py); the campaign's policy adds the scores up and decides allow / hold / block.

`register()` appends `inline_check` to RISK_CHECKS once; importing `liebian.fraud` calls it, so the
server (which imports fraud.api), the CLI and the scheduler all run with the checks in place.

Every call records a sighting (fraud_sightings) after the rules ran: velocity, bursts, IP+UA
matches, cross-campaign cycles and cap hits count earlier sightings, never the current one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from liebian.campaigns.service import RISK_CHECKS, RiskContext, RiskSignal
from liebian.config import get_settings
from liebian.fraud.models import FraudSighting
from liebian.fraud.reasons import REASONS
from liebian.identity import service as identity
from liebian.identity.keys import IdentifierError
from liebian.privacy.crypto import normalize_phone


@dataclass
class InlineConfig:
    """Thresholds and the score each reason adds (policy default: hold at 50, block at 100)."""

    velocity_window: timedelta = timedelta(minutes=10)
    velocity_max: int = 5  # accepts per inviter inside the window; more is a signal
    device_burst_window: timedelta = timedelta(hours=24)
    device_burst_max: int = 3  # distinct new accounts per device inside the window
    ip_burst_window: timedelta = timedelta(hours=1)
    ip_burst_max: int = 10  # distinct new accounts per IP inside the window (IP alone: weak)
    scores: dict[str, int] = field(
        default_factory=lambda: {
            "SAME_PERSON": 100,
            "SHARED_DEVICE": 60,
            "SHARED_PHONE": 80,
            "SHARED_PAYMENT": 80,
            "SHARED_IP_UA": 30,
            "VELOCITY": 40,
            "DEVICE_BURST": 50,
            "IP_BURST": 30,
            "VIRTUAL_PHONE": 50,
            "DEVICE_NOT_NEW": 50,
            "CAP_HIT": 30,
            "CIRCULAR": 100,
        }
    )


CONFIG = InlineConfig()


def ua_hash(user_agent: str | None) -> str | None:
    if not user_agent or not user_agent.strip():
        return None
    return hashlib.sha256(user_agent.strip().encode("utf-8")).hexdigest()[:16]


def _signal(code: str, detail: str) -> RiskSignal:
    assert code in REASONS, code
    return RiskSignal(code, CONFIG.scores[code], detail)


def _person_of(session: Session, id_type: str, raw: str | None) -> int | None:
    if not raw:
        return None
    try:
        key = identity.key_of(id_type, raw)
    except IdentifierError:
        return None  # the campaign engine rejects malformed identifiers itself
    return identity.lookup(session, [key]).get(key)


def _current(session: Session, person: int | None) -> int | None:
    return None if person is None else identity.current_person(session, person) or person


# ------------------------------------------------------------------ rules


def rule_same_person(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    if ctx.inviter is None or ctx.friend is None:
        return []
    if ctx.inviter == ctx.friend or _current(session, ctx.inviter) == _current(session, ctx.friend):
        return [_signal("SAME_PERSON", "inviter and friend resolve to one person")]
    return []


def rule_shared_with_inviter(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """The friend's device id, phone or payment account already belongs to the inviter."""
    if ctx.inviter is None:
        return []
    inviter = _current(session, ctx.inviter)
    out = []
    for id_type, raw, code in (
        ("device_id", ctx.device_id, "SHARED_DEVICE"),
        ("phone", ctx.phone, "SHARED_PHONE"),
        ("payment_account", ctx.payment_account, "SHARED_PAYMENT"),
    ):
        owner = _current(session, _person_of(session, id_type, raw))
        if owner is not None and owner == inviter and owner != _current(session, ctx.friend):
            out.append(_signal(code, f"{id_type} registered to the inviter"))
        elif code == "SHARED_DEVICE" and ctx.device_id:
            seen = session.scalar(
                select(func.count())
                .select_from(FraudSighting)
                .where(FraudSighting.person_id == ctx.inviter, FraudSighting.device_id == ctx.device_id)
            )
            if seen:
                out.append(_signal(code, "the inviter used this device before"))
    return out


def rule_ip_ua(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """IP together with user agent seen for the inviter (an IP alone is an office or a carrier NAT)."""
    ua = ua_hash(ctx.user_agent)
    if ctx.inviter is None or not ctx.ip or ua is None:
        return []
    seen = session.scalar(
        select(func.count())
        .select_from(FraudSighting)
        .where(
            FraudSighting.person_id == ctx.inviter, FraudSighting.ip == ctx.ip, FraudSighting.ua_hash == ua
        )
    )
    return [_signal("SHARED_IP_UA", "the inviter was seen with this IP and user agent")] if seen else []


def _accepts_seen(session: Session, *conditions) -> int:
    """Earlier invite acceptances recorded by the inline checks that match the conditions."""
    return session.scalar(
        select(func.count()).select_from(FraudSighting).where(FraudSighting.stage == "accept", *conditions)
    )


def rule_velocity(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    if ctx.stage != "accept" or ctx.inviter is None:
        return []
    n = _accepts_seen(
        session,
        FraudSighting.inviter_person_id == ctx.inviter,
        FraudSighting.ts > ctx.ts - CONFIG.velocity_window,
        FraudSighting.ts <= ctx.ts,
    )
    if n + 1 > CONFIG.velocity_max:
        minutes = CONFIG.velocity_window.total_seconds() / 60
        return [_signal("VELOCITY", f"{n + 1} accepts for this inviter within {minutes:g} min")]
    return []


def _new_accounts(session: Session, ctx: RiskContext, column, value: str, window: timedelta) -> int:
    earlier = session.scalar(
        select(func.count(func.distinct(FraudSighting.person_id))).where(
            FraudSighting.stage == "accept",
            column == value,
            FraudSighting.person_id != ctx.friend,
            FraudSighting.ts > ctx.ts - window,
            FraudSighting.ts <= ctx.ts,
        )
    )
    return int(earlier or 0) + 1


def rule_bursts(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    if ctx.stage != "accept":
        return []
    out = []
    if ctx.device_id:
        n = _new_accounts(session, ctx, FraudSighting.device_id, ctx.device_id, CONFIG.device_burst_window)
        if n > CONFIG.device_burst_max:
            out.append(_signal("DEVICE_BURST", f"{n} new accounts from this device"))
    if ctx.ip:
        n = _new_accounts(session, ctx, FraudSighting.ip, ctx.ip, CONFIG.ip_burst_window)
        if n > CONFIG.ip_burst_max:
            out.append(_signal("IP_BURST", f"{n} new accounts from this IP"))
    return out


def is_virtual_phone(phone: str | None, prefixes: list[str] | None = None) -> bool:
    if not phone:
        return False
    digits = normalize_phone(phone)
    prefixes = get_settings().fraud_virtual_prefixes if prefixes is None else prefixes
    return len(digits) == 11 and any(digits.startswith(p) for p in prefixes)


def rule_virtual_phone(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    if is_virtual_phone(ctx.phone):
        return [_signal("VIRTUAL_PHONE", f"prefix {normalize_phone(ctx.phone)[:3]}")]
    return []


def rule_new_device(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """New-device requirement of campaigns for new users (`require_new_friend`): the device must not
    belong to anyone but the friend (or the inviter, which SHARED_DEVICE reports). The engine already
    refuses devices registered in OneID; sightings also know devices seen at conversions."""
    if ctx.stage != "accept" or not ctx.device_id or not getattr(ctx.rules, "require_new_friend", True):
        return []
    mine = {_current(session, ctx.friend), _current(session, ctx.inviter)}
    owner = _current(session, _person_of(session, "device_id", ctx.device_id))
    others = session.scalar(
        select(func.count())
        .select_from(FraudSighting)
        .where(
            FraudSighting.device_id == ctx.device_id,
            FraudSighting.person_id.is_not(None),
            FraudSighting.person_id.not_in([p for p in mine if p is not None] or [-1]),
        )
    )
    if (owner is not None and owner not in mine) or others:
        return [_signal("DEVICE_NOT_NEW", "the device was used by another account before")]
    return []


def rule_cap(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    cap = getattr(ctx.rules, "per_inviter_cap", None)
    if ctx.stage != "accept" or ctx.inviter is None or cap is None:
        return []
    n = _accepts_seen(
        session, FraudSighting.campaign_id == ctx.campaign_id, FraudSighting.inviter_person_id == ctx.inviter
    )
    if n >= cap:
        return [_signal("CAP_HIT", f"friend {n + 1} for an inviter capped at {cap}")]
    return []


def rule_circular(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """The friend invited the inviter before, in any campaign (A→B, then B→A)."""
    if ctx.stage != "accept" or ctx.inviter is None or ctx.friend is None:
        return []
    back = _accepts_seen(
        session, FraudSighting.inviter_person_id == ctx.friend, FraudSighting.person_id == ctx.inviter
    )
    return [_signal("CIRCULAR", "the friend invited the inviter before")] if back else []


RULES = (
    rule_same_person,
    rule_shared_with_inviter,
    rule_ip_ua,
    rule_velocity,
    rule_bursts,
    rule_virtual_phone,
    rule_new_device,
    rule_cap,
    rule_circular,
)


def inline_check(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """All rules, then remember this sighting. The RiskCheck registered with the campaign engine."""
    signals: list[RiskSignal] = []
    for rule in RULES:
        signals.extend(rule(session, ctx))
    session.add(
        FraudSighting(
            ts=ctx.ts,
            stage=ctx.stage,
            campaign_id=ctx.campaign_id,
            inviter_person_id=ctx.inviter,
            person_id=ctx.friend,
            device_id=ctx.device_id,
            ip=ctx.ip,
            ua_hash=ua_hash(ctx.user_agent),
        )
    )
    session.flush()
    return signals


def register() -> None:
    """Plug the inline checks into the campaign engine (idempotent)."""
    if inline_check not in RISK_CHECKS:
        RISK_CHECKS.append(inline_check)
