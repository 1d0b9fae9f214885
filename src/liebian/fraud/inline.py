"""Inline risk checks, run by the campaign engine when an invite is accepted and when a conversion is
reported. They implement the neutral risk seam (`liebian.risk`): `RISK_CHECKS` is what
`liebian.bootstrap` wires into the campaign flows. Each rule returns RiskSignals with a stable
reason code (reasons.py); the campaign's policy adds the scores up and decides allow / hold / block.

The campaign's own limits are rules here too, each in one place: `rule_cap` (per-device and per-IP
caps counted exactly by the campaign's cap counters, the per-inviter cap from sightings) and
`rule_circular` (the friend upstream of the inviter in the campaign's tree, or an inviter of the
inviter in any campaign).

Every call records a sighting (fraud_sightings) after the rules ran: velocity, bursts, IP+UA
matches, cross-campaign cycles and cap hits count earlier sightings, never the current one.

The rules know everything known, not only what the campaign engine saw: devices and addresses of
imported events (`fraud_known_uses`, filled on import by `fraud.known`) count for DEVICE_NOT_NEW,
DEVICE_BURST and IP_BURST beside the sightings, read by index in the same one statement.

Medium signals combine (docs/fraud.md, "Combined signals"): IP_UA_CLUSTER (several new accounts
from one address with one identical user agent) is weak alone, and with VELOCITY or IP_BURST the
sum reaches the hold threshold; coworkers on an office address with their own phones and a KOC's
friends on diverse devices stay accepted.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import bindparam, func, select, union
from sqlalchemy.orm import Session

from liebian.campaigns import visits
from liebian.campaigns.budget import bump
from liebian.campaigns.models import Referral
from liebian.config import get_settings
from liebian.db.base import table_of
from liebian.db.session import core
from liebian.fraud.known import value_hash
from liebian.fraud.models import FraudKnownUse, FraudSighting
from liebian.fraud.reasons import REASONS
from liebian.identity import service as identity
from liebian.identity.keys import IdentifierError
from liebian.identity.models import Person
from liebian.privacy.crypto import normalize_phone
from liebian.risk import RiskCheck, RiskContext, RiskSignal


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
            "SELF_CLICKS": 25,
            "IP_UA_CLUSTER": 20,  # alone under the hold threshold; with VELOCITY or IP_BURST over it
        }
    )
    ip_ua_cluster_min: int = 3  # accounts (this one included) on one IP + user agent inside ip_burst_window
    self_clicks_max: int = 2  # the inviter's own clicks on their links in the campaign; more is a signal


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
    if person is None:
        return None
    known = session.info.get("fraud_current")  # filled by inline_check for inviter and friend
    if known is not None and person in known:
        return known[person]
    return identity.current_person(session, person) or person


_P, _S, _K = table_of(Person), table_of(FraudSighting), table_of(FraudKnownUse)
# The statement of counts below names its tables by short aliases: with the full names its text on
# PostgreSQL is over 4 KiB, which psycopg does not keep parsed (it parsed it again on every accept,
# ~0.1 ms: issue #23, tests/campaigns/test_campaigns_statement_budget.py).
_SA, _KA, _PA = _S.alias("fs"), _K.alias("fk"), _P.alias("pe")
_CURRENT = select(_P.c.id, _P.c.merged_into).where(_P.c.id.in_(bindparam("ids", expanding=True)))
_INSERT_SIGHTING = _S.insert()
NONE = -1  # stands for a missing person id in the counts below (person ids are positive)


def _counting(*where, distinct_persons: bool = False):
    what = func.count(func.distinct(_SA.c.person_id)) if distinct_persons else func.count()
    return select(what).select_from(_SA).where(*where).scalar_subquery()


def _distinct_persons(sighted, kind: str, bind: str, since: str):
    """Distinct other persons on a device or an address inside a window: sighted by the campaign
    engine, or seen in imported events (a known use whose span overlaps the window)."""
    persons = union(
        select(_SA.c.person_id.label("p")).where(
            _ACCEPT,
            sighted == bindparam(bind),
            _SA.c.ts > bindparam(since),
            _SA.c.ts <= bindparam("ts"),
        ),
        select(_KA.c.person_id.label("p")).where(
            _KA.c.kind == kind,
            _KA.c.value_hash == bindparam(f"{bind}_h"),
            _KA.c.last_seen > bindparam(since),
            _KA.c.first_seen <= bindparam("ts"),
            _KA.c.person_id != bindparam("friend"),
        ),
    ).subquery()
    return (
        select(func.count(func.distinct(persons.c.p)))
        .where(persons.c.p != bindparam("friend"))
        .scalar_subquery()
    )


def _current_of(bind: str):
    """The person a person id stands for now (its survivor if merged, else itself), in SQL: as
    `_CURRENT` reads it, one hop (merges point at the final survivor)."""
    merged = select(_PA.c.merged_into).where(_PA.c.id == bindparam(bind)).scalar_subquery()
    return func.coalesce(merged, bindparam(bind))


# Every count of earlier sightings the rules use, in one statement (each subquery uses its index),
# with the current persons of friend and inviter (read here, not in a statement of their own).
# A missing value is bound as NULL (or NONE for person ids) and matches nothing, as the rules skip
# those cases anyway.
_ACCEPT = _SA.c.stage == "accept"
_FRIEND_NOW, _INVITER_NOW = _current_of("friend"), _current_of("inviter")
_COUNTS = select(
    _counting(
        _ACCEPT, _SA.c.inviter_person_id == bindparam("inviter"), _SA.c.ts > bindparam("velocity_since"),
        _SA.c.ts <= bindparam("ts"),
    ).label("velocity"),
    _distinct_persons(_SA.c.device_id, "device", "device", "device_since").label("device_burst"),
    _distinct_persons(_SA.c.ip, "ip", "ip", "ip_since").label("ip_burst"),
    _counting(
        _ACCEPT, _SA.c.ip == bindparam("ip"), _SA.c.ua_hash == bindparam("ua"), _SA.c.person_id != bindparam("friend"),
        _SA.c.ts > bindparam("ip_since"), _SA.c.ts <= bindparam("ts"), distinct_persons=True,
    ).label("ip_ua_cluster"),
    _counting(
        _ACCEPT, _SA.c.campaign_id == bindparam("campaign"), _SA.c.inviter_person_id == bindparam("inviter")
    ).label("cap"),
    _counting(
        _ACCEPT, _SA.c.inviter_person_id == bindparam("friend"), _SA.c.person_id == bindparam("inviter")
    ).label("circular"),
    _counting(_SA.c.person_id == bindparam("inviter"), _SA.c.device_id == bindparam("device")).label(
        "inviter_device"
    ),
    _counting(
        _SA.c.person_id == bindparam("inviter"), _SA.c.ip == bindparam("ip"), _SA.c.ua_hash == bindparam("ua")
    ).label("ip_ua"),
    _counting(
        _SA.c.device_id == bindparam("device"), _SA.c.person_id.is_not(None),
        _SA.c.person_id != _FRIEND_NOW, _SA.c.person_id != _INVITER_NOW,
    ).label("device_others"),
    select(func.count()).select_from(_KA).where(
        _KA.c.kind == "device", _KA.c.value_hash == bindparam("device_h"),
        _KA.c.person_id != _FRIEND_NOW, _KA.c.person_id != _INVITER_NOW,
    ).scalar_subquery().label("device_known_others"),
    visits.self_clicks_counted("campaign", "inviter").label("self_clicks"),
    _FRIEND_NOW.label("friend_now"),
    _INVITER_NOW.label("inviter_now"),
)  # fmt: skip


def _sightings(session: Session, ctx: RiskContext) -> dict[str, int]:
    """Counts of earlier sightings for this context (kept in the session, with the context they
    were counted for, while inline_check runs)."""
    cached: tuple[RiskContext, dict[str, int]] | None = session.info.get("fraud_counts")
    if cached is not None and cached[0] is ctx:
        return cached[1]
    row = core(
        session,
        _COUNTS,
        {
            "inviter": NONE if ctx.inviter is None else ctx.inviter,
            "friend": NONE if ctx.friend is None else ctx.friend,
            "campaign": ctx.campaign_id,
            "device": ctx.device_id or None,
            "ip": ctx.ip or None,
            "device_h": value_hash("device", ctx.device_id),
            "ip_h": value_hash("ip", ctx.ip),
            "ua": ua_hash(ctx.user_agent),
            "ts": ctx.ts,
            "velocity_since": ctx.ts - CONFIG.velocity_window,
            "device_since": ctx.ts - CONFIG.device_burst_window,
            "ip_since": ctx.ts - CONFIG.ip_burst_window,
        },
    ).one()
    return {k: int(v or 0) for k, v in row._mapping.items()}


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
        elif code == "SHARED_DEVICE" and ctx.device_id and _sightings(session, ctx)["inviter_device"]:
            out.append(_signal(code, "the inviter used this device before"))
    return out


def rule_ip_ua(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """IP together with user agent seen for the inviter (an IP alone is an office or a carrier NAT)."""
    if ctx.inviter is None or not ctx.ip or ua_hash(ctx.user_agent) is None:
        return []
    seen = _sightings(session, ctx)["ip_ua"]
    return [_signal("SHARED_IP_UA", "the inviter was seen with this IP and user agent")] if seen else []


def rule_velocity(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    if ctx.stage != "accept" or ctx.inviter is None:
        return []
    n = _sightings(session, ctx)["velocity"]
    if n + 1 > CONFIG.velocity_max:
        minutes = CONFIG.velocity_window.total_seconds() / 60
        return [_signal("VELOCITY", f"{n + 1} accepts for this inviter within {minutes:g} min")]
    return []


def rule_bursts(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """Distinct other accounts accepting from this device (24 h) or IP (1 h), this one included."""
    if ctx.stage != "accept":
        return []
    out = []
    if ctx.device_id:
        n = _sightings(session, ctx)["device_burst"] + 1
        if n > CONFIG.device_burst_max:
            out.append(_signal("DEVICE_BURST", f"{n} new accounts from this device"))
    if ctx.ip:
        n = _sightings(session, ctx)["ip_burst"] + 1
        if n > CONFIG.ip_burst_max:
            out.append(_signal("IP_BURST", f"{n} new accounts from this IP"))
    return out


def rule_ip_ua_cluster(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """Accounts accepting from one address with one identical user agent inside the IP window, this
    one included: a script or an emulator farm. Coworkers on an office address use their own
    phones (their user agents differ), so IP alone never counts here."""
    if ctx.stage != "accept" or not ctx.ip or ua_hash(ctx.user_agent) is None:
        return []
    n = _sightings(session, ctx)["ip_ua_cluster"] + 1
    if n >= CONFIG.ip_ua_cluster_min:
        minutes = CONFIG.ip_burst_window.total_seconds() / 60
        return [
            _signal("IP_UA_CLUSTER", f"{n} accounts from this IP with one user agent within {minutes:g} min")
        ]
    return []


def is_virtual_phone(phone: str | None, prefixes: list[str] | None = None) -> bool:
    if not phone:
        return False
    digits = normalize_phone(phone)
    prefixes = get_settings().fraud_virtual_prefixes if prefixes is None else prefixes
    return len(digits) == 11 and any(digits.startswith(p) for p in prefixes)


def rule_virtual_phone(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    if ctx.phone and is_virtual_phone(ctx.phone):
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
    counts = _sightings(session, ctx)
    if counts["device_known_others"]:
        return [_signal("DEVICE_NOT_NEW", "the device appears in imported events of another account")]
    if (owner is not None and owner not in mine) or counts["device_others"]:
        return [_signal("DEVICE_NOT_NEW", "the device was used by another account before")]
    return []


# The campaign's own limits block whatever the policy (a score of 100 reaches the default block_at);
# their codes are the campaign engine's, older than the reason catalogue, and kept as they are.
LIMIT_SCORE = 100


def rule_cap(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """The campaign's caps at accept. Per device and per IP they are exact: the campaign's cap
    counters move by one conditional UPDATE here, and a friend over the cap is `device_cap` /
    `ip_cap`. The per-inviter cap is enforced when friends qualify; accepts beyond it are CAP_HIT."""
    if ctx.stage != "accept":
        return []
    out = []
    for scope, value, cap in (
        ("device", ctx.device_id, ctx.rules.per_device_cap),
        ("ip", ctx.ip, ctx.rules.per_ip_cap),
    ):
        if value and cap is not None and bump(session, ctx.campaign_id, scope, value, cap) is None:
            out.append(RiskSignal(f"{scope}_cap", LIMIT_SCORE, f"more than {cap} friends from one {scope}"))
    cap = ctx.rules.per_inviter_cap
    if ctx.inviter is not None and cap is not None:
        n = _sightings(session, ctx)["cap"]
        if n >= cap:
            out.append(_signal("CAP_HIT", f"friend {n + 1} for an inviter capped at {cap}"))
    return out


def rule_circular(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """A circular referral, one signal: the friend is upstream of the inviter in this campaign's
    referral tree (`circular_referral`), or else invited the inviter before in any campaign (A→B,
    then B→A: CIRCULAR, from sightings)."""
    if ctx.stage != "accept" or ctx.inviter is None or ctx.friend is None:
        return []
    if not ctx.friend_is_new and _upstream(session, ctx.campaign_id, ctx.inviter, ctx.friend):
        return [RiskSignal("circular_referral", LIMIT_SCORE, "the friend is upstream of the inviter")]
    back = _sightings(session, ctx)["circular"]
    return [_signal("CIRCULAR", "the friend invited the inviter before")] if back else []


def rule_self_clicks(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """The inviter opened their own links over and over (the campaign's visits know their own
    clicks, which never count): padding clicks to unlock a share reward is a sign of a farmer."""
    if ctx.stage != "accept" or ctx.inviter is None:
        return []
    n = _sightings(session, ctx)["self_clicks"]  # visits.self_clicks, read with the other counts
    if n > CONFIG.self_clicks_max:
        return [_signal("SELF_CLICKS", f"the inviter opened their own link {n} times")]
    return []


def _upstream(session: Session, campaign_id: str, inviter: int, friend: int) -> bool:
    """Whether `friend` brought `inviter` into the campaign, directly or further up the chain."""
    person: int | None = inviter
    seen: set[int] = set()
    while person is not None and person not in seen:
        seen.add(person)
        parent = session.scalar(
            select(Referral.inviter_person_id).where(
                Referral.campaign_id == campaign_id, Referral.friend_person_id == person
            )
        )
        if parent == friend:
            return True
        person = parent
    return False


# The campaign's limits first: their counters move before anything else is read (lock order:
# referral → counters → campaign row), and their signals lead the list as they always did.
RULES = (
    rule_cap,
    rule_circular,
    rule_same_person,
    rule_shared_with_inviter,
    rule_ip_ua,
    rule_velocity,
    rule_bursts,
    rule_ip_ua_cluster,
    rule_virtual_phone,
    rule_new_device,
    rule_self_clicks,
)


def inline_check(session: Session, ctx: RiskContext) -> list[RiskSignal]:
    """All rules, then remember this sighting: the fraud domain's one RiskCheck.

    Inviter and friend are read once (one statement for both) and the counts of earlier sightings
    once (`_sightings`, when a rule needs one), for all the rules."""
    ids = [p for p in (ctx.inviter, ctx.friend) if p is not None]
    known: dict[int, int] = {}
    counted = ctx.stage == "accept" or ctx.device_id or (ctx.ip and ctx.user_agent)
    if counted:  # the counts bring the current persons along
        counts = _sightings(session, ctx)
        session.info["fraud_counts"] = (ctx, counts)
        now = {ctx.friend: counts["friend_now"], ctx.inviter: counts["inviter_now"]}
        known = {pid: now[pid] for pid in ids}
    elif ids:
        known = {pid: merged or pid for pid, merged in core(session, _CURRENT, {"ids": ids})}
    session.info["fraud_current"] = known
    try:
        signals: list[RiskSignal] = []
        for rule in RULES:
            signals.extend(rule(session, ctx))
    finally:
        session.info.pop("fraud_current", None)
        session.info.pop("fraud_counts", None)
    core(
        session,
        _INSERT_SIGHTING,
        {
            "ts": ctx.ts,
            "stage": ctx.stage,
            "campaign_id": ctx.campaign_id,
            "inviter_person_id": ctx.inviter,
            "person_id": ctx.friend,
            "device_id": ctx.device_id,
            "ip": ctx.ip,
            "ua_hash": ua_hash(ctx.user_agent),
        },
    )
    return signals


# What the wiring gives the campaign flows (`liebian.ports.Wiring.risk_checks`).
RISK_CHECKS: tuple[RiskCheck, ...] = (inline_check,)
