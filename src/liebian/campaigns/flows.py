"""The campaign's work that crosses domains: a friend accepts an invite, qualifies, converts, is
refunded; a sharer claims; a fraud reviewer decides. (OneID merges: `merges`.)

Each flow calls OneID (`participants`), the risk checks the wiring gives it (`liebian.risk`,
`liebian.ports`), the budget and the ledger (`budget`), the warehouse outbox (`outbox`), and the
campaign type's strategy (`strategies`) for what the type does differently.

Lock order everywhere: referral → inviter counter → campaign row (budget) → ledger head.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from liebian import ports
from liebian.campaigns import followers, outbox, stages, variants
from liebian.campaigns.budget import Ask, Grant, bump, grant_all, release, unbump
from liebian.campaigns.common import (
    CampaignError,
    audit,
    inviter_spend_ok,
    live_rules,
    load_campaign,
    order_view,
    rules_of,
    stmt,
    to_json,
)
from liebian.campaigns.invites import invite_code, verify_code
from liebian.campaigns.models import Campaign, CampaignOrder, Invite, Referral
from liebian.campaigns.participants import keys_of, own_known, resolve_person
from liebian.campaigns.schemas import (
    AcceptRequest,
    CampaignRules,
    ConversionRequest,
    Participant,
)
from liebian.campaigns.strategies import Award, strategy_for
from liebian.db.base import utcnow
from liebian.db.session import core, rowcount
from liebian.identity import service as identity
from liebian.rewards import service as ledger
from liebian.risk import Assessment, RiskContext, assess

# ---------------------------------------------------------------- accept an invite


@dataclass
class AcceptResult:
    referral_id: int
    campaign_id: str
    version: int
    inviter_person_id: int
    friend_person_id: int
    state: str
    generation: int
    channel: str
    risk_score: int = 0
    signals: list[dict[str, Any]] = field(default_factory=list)
    grants: list[dict[str, Any]] = field(default_factory=list)
    reattributed: bool = False


_STATE_OF = {"allow": "accepted", "hold": "held", "block": "blocked"}


def _already_accepted() -> CampaignError:
    return CampaignError(
        409, "already_accepted", "this friend has already accepted an invite in this campaign", field="code"
    )


def _own_invite() -> CampaignError:
    return CampaignError(409, "own_invite", "an inviter cannot accept their own invite", field="code")


def _phone(req: Participant) -> str | None:
    return req.id if req.id_type == "phone" else req.other_ids.get("phone")


def _risk(session: Session, ctx: RiskContext) -> Assessment:
    return assess(session, ctx, ports.current().risk_checks)


def _signal_dicts(risk: Assessment) -> list[dict[str, Any]]:
    """The signals as `asdict` gives them (built directly: asdict deep-copies, a cost per accept)."""
    return [{"code": s.code, "score": s.score, "detail": s.detail} for s in risk.signals]


def accept_invite(session: Session, req: AcceptRequest, *, now: datetime | None = None) -> AcceptResult:
    """A friend arrives through an invite (signs up): attribute, check the rules and the risk checks."""
    now = now or utcnow()
    inv = verify_code(session, req.code, now)
    c = load_campaign(session, inv.campaign_id)
    rules = stages.admit(session, c, live_rules(session, c, now), req)  # pilot; region/store variant
    inviter = inv.inviter_person_id
    known = identity.lookup(session, keys_of(req, req.device_id))
    if inviter in known.values():
        raise _own_invite()
    own = own_known(req, known, rules.require_new_friend)  # device alone: not the friend
    existing = _earlier_referral(session, c, rules, inviter, own)
    if existing is not None:
        return _reattribute(session, existing, inv, c, rules, now)
    friend = resolve_person(session, req, source=f"campaign:{c.id}", device_id=req.device_id, known=known)
    if friend == inviter:
        raise _own_invite()
    parent = core(session, stmt(session, "parent"), {"b_cid": c.id, "b_pid": inviter}).first()
    group_id = strategy_for(rules.type).group_for(session, rules, inviter, parent, inv, now)
    ctx = RiskContext(
        stage="accept",
        campaign_id=c.id,
        version=c.version,
        rules=rules,
        inviter=inviter,
        friend=friend,
        device_id=req.device_id,
        ip=req.ip,
        user_agent=req.user_agent,
        phone=_phone(req),
        ts=now,
        friend_is_new=not own,
    )
    risk = _risk(session, ctx)
    generation = parent[1] + 1 if parent else 1
    referral_id = _insert_referral(session, c, inv, req, friend, parent, group_id, risk, now)
    variants.remember(session, c.id, referral_id, req, rules)
    state = _STATE_OF[risk.decision]
    _record_accept(session, c, inv, req, friend, referral_id, generation, risk, now)
    result = AcceptResult(
        referral_id=referral_id,
        campaign_id=c.id,
        version=c.version,
        inviter_person_id=inviter,
        friend_person_id=friend,
        state=state,
        generation=generation,
        channel=inv.channel,
        risk_score=risk.score,
        signals=_signal_dicts(risk),
    )
    if state != "blocked" and rules.qualifying_event.kind == "signup":
        ref = session.get_one(Referral, referral_id)
        _ok, result.grants = _qualify(
            session, ref, rules, source_ref=f"referral:{c.id}:{ref.id}", order_id=None, now=now
        )
    return result


def _earlier_referral(
    session: Session, c: Campaign, rules: CampaignRules, inviter: int, known: dict[identity.Key, int]
) -> Referral | None:
    """A friend already known to OneID: their referral in this campaign when last touch moves it to
    this inviter; refused when it cannot move or when the campaign wants new friends only."""
    if not known:
        return None
    existing = session.scalar(
        select(Referral).where(
            Referral.campaign_id == c.id, Referral.friend_person_id.in_(set(known.values()))
        )
    )
    if existing is not None:
        if existing.inviter_person_id == inviter or rules.attribution == "first_touch":
            raise _already_accepted()
        if existing.qualified_at is not None or existing.state in ("blocked", "refunded"):
            raise CampaignError(
                409, "already_qualified", "the friend is already attributed and qualified", field="code"
            )
        return existing
    if rules.require_new_friend:
        seen = sorted({k[0] for k in known})
        raise CampaignError(
            409, "friend_not_new", f"the friend is not new: {', '.join(seen)} seen before", field=seen[0]
        )
    return None


def _insert_referral(
    session: Session,
    c: Campaign,
    inv: Invite,
    req: AcceptRequest,
    friend: int,
    parent: Any,
    group_id: int | None,
    risk: Assessment,
    now: datetime,
) -> int:
    """The referral row, in the state the risk decision gives; a concurrent accept of the same
    friend that won the unique key makes this one `already_accepted`."""
    row = core(
        session,
        stmt(session, "insert_referral"),
        {
            "campaign_id": c.id,
            "version": c.version,
            "invite_id": inv.id,
            "inviter_person_id": inv.inviter_person_id,
            "friend_person_id": friend,
            "channel": inv.channel,
            "parent_referral_id": parent[0] if parent else None,
            "generation": parent[1] + 1 if parent else 1,
            "group_id": group_id,
            "state": _STATE_OF[risk.decision],
            "risk_score": risk.score,
            "risk_signals": to_json(_signal_dicts(risk)),
            "device_id": req.device_id,
            "ip": req.ip,
            "accepted_at": now,
            "counted": False,
            "note": "",
        },
    ).first()
    if row is None:
        raise _already_accepted()
    referral_id: int = row[0]  # RETURNING referrals.id
    return referral_id


def _record_accept(
    session: Session,
    c: Campaign,
    inv: Invite,
    req: AcceptRequest,
    friend: int,
    referral_id: int,
    generation: int,
    risk: Assessment,
    now: datetime,
) -> None:
    """The accept's warehouse event (with its referral edge unless blocked) and audit row."""
    state = _STATE_OF[risk.decision]
    outbox.record_event(
        session,
        event="invite_accept",
        ts=now,
        person_id=friend,
        campaign_id=c.id,
        code=invite_code(inv),
        channel=inv.channel,
        referrer=inv.inviter_person_id,
        device_id=req.device_id,
        ip=req.ip,
        props={"generation": generation, "state": state},
        key=f"accept:{referral_id}",
        edge=state != "blocked",
    )
    outbox.joined(session, friend, inv, now, blocked=state == "blocked")
    audit(
        session,
        "referral.accept",
        c.id,
        {
            "state": state,
            "version": c.version,
            "score": risk.score,
            "signals": [s.code for s in risk.signals],
        },
        entity="referral",
        entity_id=referral_id,
    )


def _reattribute(
    session: Session, ref: Referral, inv: Invite, c: Campaign, rules: CampaignRules, now: datetime
) -> AcceptResult:
    """Last touch: a not yet qualified friend within the claim window moves to the newer inviter."""
    if now - ref.accepted_at > timedelta(days=rules.claim_window_days):
        raise CampaignError(
            409, "claim_window_over", "the claim window of the first invite is over", field="code"
        )
    if ref.friend_person_id == inv.inviter_person_id:
        raise _own_invite()
    old = ref.inviter_person_id
    ref.inviter_person_id, ref.invite_id, ref.channel, ref.version = (
        inv.inviter_person_id,
        inv.id,
        inv.channel,
        c.version,
    )
    ref.accepted_at = now
    audit(
        session,
        "referral.reattribute",
        c.id,
        {"from": old, "to": inv.inviter_person_id},
        entity="referral",
        entity_id=ref.id,
    )
    outbox.record_event(
        session,
        event="invite_accept",
        ts=now,
        person_id=ref.friend_person_id,
        campaign_id=c.id,
        code=invite_code(inv),
        channel=inv.channel,
        referrer=inv.inviter_person_id,
        props={"reattributed_from": old},
        key=f"accept:{ref.id}:{inv.id}",
    )
    session.flush()
    return AcceptResult(
        referral_id=ref.id,
        campaign_id=c.id,
        version=ref.version,
        inviter_person_id=ref.inviter_person_id,
        friend_person_id=ref.friend_person_id,
        state=ref.state,
        generation=ref.generation,
        channel=ref.channel,
        reattributed=True,
    )


# ---------------------------------------------------------------- qualification and rewards


LEDGER_FINAL_BAD = (ledger.REJECTED, ledger.REVOKED)


@dataclass
class _Giver:
    """Grants the awards of one qualification, in the order the strategy hands them over: collected,
    then granted together by `flush` (`budget.grant_all`: a few statements for all of them)."""

    session: Session
    campaign_id: str
    campaign_type: str
    source_ref: str
    hold_until: datetime
    held: bool
    grants: list[Grant] = field(default_factory=list)
    live: dict[int, set[str]] = field(default_factory=dict)  # person → reasons of live rewards
    asks: list[Ask] = field(default_factory=list)  # handed over, not granted yet

    def holds_live(self, person_id: int, reason: str) -> bool:
        """A live reward of this reason in the campaign? (Qualifications of one inviter queue on the
        inviter's counter row, locked by this one.)"""
        if person_id not in self.live:
            self.flush()  # the rewards asked for so far are among those read
            self.live[person_id] = {
                r.reason
                for r in ledger.rewards_for(self.session, person_id)
                if r.campaign_id == self.campaign_id and r.state not in LEDGER_FINAL_BAD
            }
        return reason in self.live[person_id]

    def __call__(self, award: Award) -> None:
        if award.reward is None:
            return
        reason = f"{self.campaign_type}:{award.role}"
        if award.once:
            if self.holds_live(award.person_id, reason):
                return
            self.live[award.person_id].add(reason)
        held = self.held if award.held is None else award.held
        self.asks.append(
            Ask(
                award.person_id,
                award.reward,
                award.role,
                award.key,
                self.source_ref,
                self.hold_until,
                held,
                reason,
            )
        )

    def flush(self) -> list[Grant]:
        """Grant the awards handed over since the last flush; returns every grant so far."""
        if self.asks:
            asks, self.asks = self.asks, []
            self.grants += grant_all(self.session, self.campaign_id, asks)
        return self.grants


def _count_inviter(
    session: Session, ref: Referral, rules: CampaignRules, notes: list[dict[str, Any]]
) -> int | None:
    """Raise the inviter's counter for this referral: its new value, or None (with a note) when the
    inviter does not count it; `counted`, set optimistically when qualifying, is then undone."""
    inviter = ref.inviter_person_id
    count = None
    if not inviter_spend_ok(session, rules, inviter):
        notes.append({"role": "inviter", "state": "referrer_spend_below_threshold"})
    else:
        count = bump(session, ref.campaign_id, "inviter", str(inviter), rules.per_inviter_cap)
        if count is None:
            notes.append({"role": "inviter", "state": "inviter_cap_reached"})
    if count is None:
        core(session, stmt(session, "uncount"), {"b_id": ref.id})
        set_committed_value(ref, "counted", False)
    return count


def _qualify(
    session: Session,
    ref: Referral,
    rules: CampaignRules,
    *,
    source_ref: str,
    order_id: str | None,
    now: datetime,
    ordered: tuple[int, datetime] | None = None,
) -> tuple[bool, list[dict[str, Any]]]:
    """The friend met the qualifying event: count it once and grant what the version's rules give.
    `ordered`: the order row's amount and time, when the caller wrote them (`followers.qualified`)."""
    if now - ref.accepted_at > timedelta(days=rules.claim_window_days):
        return False, [{"role": "friend", "state": "outside_claim_window"}]
    kind = strategy_for(rules.type)
    counts = kind.counts_inviter
    won = rowcount(
        core(
            session,
            stmt(session, "qualify"),
            {"b_id": ref.id, "b_now": now, "b_order": order_id, "b_counted": counts},
        )
    )
    if not won:
        return False, []
    for name, value in (("qualified_at", now), ("qualifying_order", order_id), ("counted", counts)):
        set_committed_value(ref, name, value)
    held = ref.state == "held"
    give = _Giver(
        session, ref.campaign_id, kind.name, source_ref, now + timedelta(days=rules.hold_days), held
    )
    notes: list[dict[str, Any]] = []
    count = _count_inviter(session, ref, rules, notes) if counts else None
    give(Award(ref.friend_person_id, rules.friend_reward, "friend", f"friend:{ref.id}"))
    if count is not None:
        kind.on_counted(rules, ref, count, give)
    kind.after_qualify(session, ref, rules, give, now)
    give.flush()
    followers.qualified(session, ref, rules, source_ref, order_id, ordered)
    outbox.qualified(session, ref, order_id, now)
    audit(
        session,
        "referral.qualify",
        ref.campaign_id,
        {"order_id": order_id, "count": count, "grants": [g.reward_id for g in give.grants]},
        entity="referral",
        entity_id=ref.id,
    )
    return True, [asdict(g) for g in give.grants] + notes


# ---------------------------------------------------------------- conversions and refunds


def report_conversion(
    session: Session,
    campaign_id: str,
    req: ConversionRequest,
    *,
    now: datetime | None = None,
    verified_by: str = "operator",
    person: int | None = None,
) -> dict[str, Any]:
    """A conversion from a trusted source (operator key, WeCom), judged at once; idempotent by order
    id. (A public-key report waits for a trusted order: `campaigns.verification`.) `person`: the
    participant's person when the caller resolved it in this transaction already."""
    now = now or utcnow()
    received = receive_order(session, campaign_id, req, now=now, verified_by=verified_by, person=person)
    if isinstance(received, dict):  # the same order id again
        return received
    return conclude_order(session, received, req, now=now)


@dataclass(frozen=True)
class Received:
    """A conversion's new order row: its campaign, row id, participant and order time."""

    campaign: Campaign
    order_pk: int
    person: int
    ts: datetime


def receive_order(
    session: Session,
    campaign_id: str,
    req: ConversionRequest,
    *,
    now: datetime,
    verified_by: str | None,
    status: str = "received",
    person: int | None = None,
) -> Received | dict[str, Any]:
    """Record the reported order (`status` pending: awaiting a trusted order); for an order id
    reported before, that order's view instead (or 409 when reported for another participant)."""
    c = load_campaign(session, campaign_id)
    if c.status == "draft":
        raise CampaignError(409, "campaign_not_live", f"campaign {c.id} is a draft", field="campaign_id")
    if person is None:
        person = resolve_person(session, req, source=f"campaign:{c.id}")
    ts = req.ts or now
    if ts.tzinfo is not None:
        ts = ts.astimezone(UTC).replace(tzinfo=None)
    order_pk = _insert_order(session, c, req, person, ts, now, verified_by=verified_by, status=status)
    if isinstance(order_pk, dict):
        return order_pk
    return Received(c, order_pk, person, ts)


def conclude_order(
    session: Session, rec: Received, req: ConversionRequest, *, now: datetime
) -> dict[str, Any]:
    """Judge a received (or now confirmed) order: its referral's rules, the risk checks, qualification."""
    c, person, ts = rec.campaign, rec.person, rec.ts
    ref = session.scalar(stmt(session, "referral_of_friend"), {"b_cid": c.id, "b_pid": person})
    status, reason = "unattributed", ""
    grants: list[dict[str, Any]] = []
    if ref is not None:
        status, reason, grants = _judge_and_qualify(session, c, ref, req, person, ts, now)
    o = core(
        session,
        stmt(session, "order_outcome"),
        {"b_id": rec.order_pk, "b_status": status, "b_reason": reason, "b_ref": ref.id if ref else None},
    ).one()  # RETURNING the order's view columns
    audit(
        session,
        "order.report",
        c.id,
        {"order_id": req.order_id, "status": status},
        entity="order",
        entity_id=rec.order_pk,
    )
    outbox.concluded(session, rec.order_pk, c.id, req, person, ts, status)
    return {**order_view(o), "duplicate": False, "grants": grants}


def _insert_order(
    session: Session,
    c: Campaign,
    req: ConversionRequest,
    person: int,
    ts: datetime,
    now: datetime,
    *,
    verified_by: str | None,
    status: str,
) -> int | dict[str, Any]:
    """The order's row id; for an order id reported before, that order's view (or 409 when it was
    reported for another participant)."""
    row = core(
        session,
        stmt(session, "insert_order"),
        {
            "campaign_id": c.id,
            "order_id": req.order_id,
            "person_id": person,
            "event": req.event,
            "amount_fen": req.amount_fen,
            "currency": req.currency,
            "verified_by": verified_by,
            "pending_detail": None,
            "status": status,
            "reason": "",
            "region": req.region,
            "store": req.store,
            "ts": ts,
            "created_at": now,
        },
    ).first()
    if row is not None:
        order_pk: int = row[0]  # RETURNING campaign_orders.id
        return order_pk
    existing = session.execute(
        select(CampaignOrder).where(CampaignOrder.campaign_id == c.id, CampaignOrder.order_id == req.order_id)
    ).scalar_one()  # the row whose unique key made the insert do nothing
    if existing.person_id != person:
        raise CampaignError(
            409,
            "order_conflict",
            f"order {req.order_id} was reported for another participant",
            field="order_id",
        )
    return {**order_view(existing), "duplicate": True, "grants": []}


def _judge_and_qualify(
    session: Session,
    c: Campaign,
    ref: Referral,
    req: ConversionRequest,
    person: int,
    ts: datetime,
    now: datetime,
) -> tuple[str, str, list[dict[str, Any]]]:
    """A conversion of a referred friend: (status, reason, grants) after the rules of the referral's
    version, the risk checks (block, or hold the referral) and qualification."""
    rules = variants.for_referral(session, ref, rules_of(session, c.id, ref.version))
    status, reason = _judge(rules, ref, req, ts)
    if status != "qualifying":
        return status, reason, []
    ctx = RiskContext(
        stage="conversion",
        campaign_id=c.id,
        version=ref.version,
        rules=rules,
        inviter=ref.inviter_person_id,
        friend=person,
        device_id=req.device_id,
        ip=req.ip,
        user_agent=req.user_agent,
        phone=_phone(req),
        payment_account=req.payment_account,
        ts=now,
        referral_id=ref.id,
    )
    risk = _risk(session, ctx)
    if risk.decision == "block":
        return "blocked", ", ".join(s.code for s in risk.signals), []
    if risk.decision == "hold" and ref.state == "accepted":
        session.execute(
            update(Referral)
            .where(Referral.id == ref.id)
            .values(state="held", risk_score=Referral.risk_score + risk.score)
        )
        ref.state = "held"
    ok, grants = _qualify(
        session,
        ref,
        rules,
        source_ref=_order_ref(c.id, req.order_id),
        order_id=req.order_id,
        now=now,
        ordered=(req.amount_fen, ts),  # the order row's, as receive_order or the confirmation wrote them
    )
    reason = ", ".join(g["state"] for g in grants if g["state"] != "granted")
    if not ok and not grants:
        reason = "the referral qualified already"
    return ("qualified" if ok else "not_qualifying"), reason, grants


def _judge(rules: CampaignRules, ref: Referral, req: ConversionRequest, ts: datetime) -> tuple[str, str]:
    if ref.state in ("blocked", "refunded", "duplicate"):
        return "not_qualifying", f"referral is {ref.state}"
    if rules.regions and req.region not in rules.regions:
        return "out_of_scope", f"region {req.region!r} is outside {', '.join(rules.regions)}"
    if rules.stores and req.store not in rules.stores:
        return "out_of_scope", f"store {req.store!r} is outside the campaign's stores"
    q = rules.qualifying_event
    if q.kind == "signup":
        return "not_qualifying", "qualified at signup"
    if q.kind == "order_min_amount" and req.currency != "CNY":
        return "not_qualifying", f"an amount in {req.currency} is not compared with a minimum in CNY"
    if q.kind == "custom":
        ok = req.event == q.event_name
    else:
        ok = req.event == "order" and (q.kind != "order_min_amount" or req.amount_fen >= q.min_amount_fen)
    if not ok:
        return "not_qualifying", f"not a qualifying {q.kind} event"
    if ts < ref.accepted_at - timedelta(minutes=5):
        return "not_qualifying", "the order is older than the invite"
    return "qualifying", ""


def _order_ref(campaign_id: str, order_id: str) -> str:
    return f"order:{campaign_id}:{order_id}"


def refund(
    session: Session, campaign_id: str, order_id: str, *, note: str = "", actor: str = "system"
) -> dict[str, Any]:
    """A refunded order: within the hold its rewards are revoked (clawback) and the counts given back."""
    now = utcnow()
    c = load_campaign(session, campaign_id)
    o = session.scalar(
        select(CampaignOrder).where(CampaignOrder.campaign_id == c.id, CampaignOrder.order_id == order_id)
    )
    if o is None:
        raise CampaignError(
            404, "unknown_order", f"no order {order_id!r} was reported in campaign {c.id}", field="order_id"
        )
    was = o.status
    won = rowcount(
        session.execute(
            update(CampaignOrder)
            .where(CampaignOrder.id == o.id, CampaignOrder.status != "refunded")
            .values(status="refunded", refunded_at=now)
        )
    )
    if not won:
        return {**order_view(o), "revoked": [], "duplicate": True}
    revoked: list[int] = []
    ref = session.get(Referral, o.referral_id) if o.referral_id else None
    if was == "qualified" and ref is not None and ref.qualifying_order == order_id:
        rules = rules_of(session, c.id, ref.version)
        if ref.qualified_at is not None and now <= ref.qualified_at + timedelta(days=rules.hold_days):
            revoked = _claw_back(session, c, ref, order_id, actor=actor, note=note)
    followers.refunded(session, o, _order_ref(c.id, order_id), actor=actor)
    outbox.refunded(session, o, now)
    audit(
        session,
        "order.refund",
        c.id,
        {"order_id": order_id, "revoked": revoked},
        actor=actor,
        entity="order",
        entity_id=o.id,
    )
    session.refresh(o)
    return {**order_view(o), "revoked": revoked, "duplicate": False}


def _claw_back(
    session: Session, c: Campaign, ref: Referral, order_id: str, *, actor: str, note: str
) -> list[int]:
    """Within the hold: the referral is refunded and uncounted, its rewards revoked, their budget
    given back. The ids of the revoked rewards."""
    uncounted = rowcount(
        session.execute(
            update(Referral).where(Referral.id == ref.id, Referral.counted.is_(True)).values(counted=False)
        )
    )
    session.execute(update(Referral).where(Referral.id == ref.id).values(state="refunded"))
    if uncounted:
        unbump(session, c.id, "inviter", str(ref.inviter_person_id))
    load_campaign(session, c.id, lock=True)
    views = ledger.revoke_for_source(
        session,
        _order_ref(c.id, order_id),
        idempotency_key=f"refund:{c.id}:{order_id}",
        actor=actor,
        note=note or "order refunded within the hold",
    )
    for v in views:  # also the ledger's subscriber's job; a reservation is released once
        release(session, v.id)
    return [v.id for v in views]


# ---------------------------------------------------------------- fraud review


def review_referral(session: Session, referral_id: int, approved: bool, *, actor: str, note: str = "") -> str:
    """Apply a fraud reviewer's decision to a held referral and return its state afterwards.

    Approved → accepted (rewards it earns from now on are not held); rejected → blocked and no
    longer counted towards the inviter's tiers. Referrals not held are left as they are.
    """
    target = "accepted" if approved else "blocked"
    values: dict[str, Any] = {"state": target, "note": note or f"fraud review: {target}"}
    if not approved:
        values["counted"] = False
    changed = rowcount(
        session.execute(
            update(Referral).where(Referral.id == referral_id, Referral.state == "held").values(**values)
        )
    )
    ref = session.get(Referral, referral_id)
    if ref is None:
        raise CampaignError(404, "not_found", f"referral {referral_id} does not exist", "referral_id")
    session.refresh(ref)
    if changed:
        audit(
            session,
            "referral_reviewed",
            ref.campaign_id,
            {"from": "held", "to": target, "note": note},
            actor=actor,
            entity="referral",
            entity_id=referral_id,
        )
    return ref.state
