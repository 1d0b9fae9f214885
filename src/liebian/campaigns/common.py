"""What every part of the campaign engine shares: its error, the statements of the referral hot
path (built once per dialect), the audit trail written at commit, and loading a campaign with the
rules of its version.

Concurrency: every limit (per-inviter, per-device, per-IP, budget, stock, group completion, a
referral's qualification) moves by one conditional UPDATE (`… SET used = used + 1 WHERE … AND
used + 1 <= cap`) or an INSERT that ignores a unique conflict, never by reading a count and
writing it back, so it holds with many workers on SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any, TypeVar

import orjson
from pydantic import ValidationError
from sqlalchemy import Executable, Row, Table, bindparam, event, func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session
from sqlalchemy.orm.util import identity_key

from liebian.campaigns.models import (
    Campaign,
    CampaignAudit,
    CampaignOrder,
    CampaignVersion,
    CapCounter,
    Invite,
    Referral,
    Reservation,
    StagePlan,
)
from liebian.campaigns.schemas import CampaignRules
from liebian.db.base import Base, table_of, utcnow
from liebian.db.session import insert_rows
from liebian.errors import DomainError

LAUNCHED = ("scheduled", "live")


class CampaignError(DomainError):
    """A request the engine refuses: HTTP status, a stable code, and the fields at fault."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        field: str | None = None,
        errors: list[dict[str, Any]] | None = None,
    ):
        super().__init__(code, message, status)
        self.field = field
        self.errors = errors or ([{"field": field, "reason": message}] if field else [])

    def as_dict(self) -> dict[str, Any]:
        return {"detail": self.message, "code": self.code, "errors": self.errors}

    body = as_dict  # the name the routers and the CLI use


# ---------------------------------------------------------------- small helpers


def ins(session: Session, model: type[Base] | Table) -> postgresql.Insert | sqlite.Insert:
    """INSERT for the session's dialect (both have `on_conflict_do_nothing`/`_do_update`)."""
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(model)


def to_json(value: Any) -> str:
    return orjson.dumps(value, default=str).decode()


# Statements of the referral hot path (accept, conversion, grant), built once per dialect:
# constructing and compiling SQLAlchemy expressions costs more than SQLite takes to run them.
# Executed as Core statements, they do not synchronise loaded objects: the callers set or expire
# the attributes they change.
_C, _REF, _ORD, _CNT, _RES = (
    table_of(Campaign),
    table_of(Referral),
    table_of(CampaignOrder),
    table_of(CapCounter),
    table_of(Reservation),
)


def _build_statements(
    insert: Callable[[Table], postgresql.Insert] | Callable[[Table], sqlite.Insert],
) -> dict[str, Executable]:
    b = bindparam
    counter = insert(_CNT).values(
        campaign_id=b("b_cid"), scope=b("b_scope"), key=b("b_key"), used=b("b_n"), updated_at=b("b_now")
    )
    raise_by = {"used": _CNT.c.used + counter.excluded.used, "updated_at": counter.excluded.updated_at}
    conflict = ["campaign_id", "scope", "key"]
    return {
        # one statement per counter: insert it, or raise it unless that passes the cap
        "bump": counter.on_conflict_do_update(
            index_elements=conflict, set_=raise_by, where=_CNT.c.used + counter.excluded.used <= b("b_cap")
        ).returning(_CNT.c.used),
        "bump_uncapped": counter.on_conflict_do_update(index_elements=conflict, set_=raise_by).returning(
            _CNT.c.used
        ),
        "reserve": insert(_RES).on_conflict_do_nothing().returning(_RES.c.id),
        # several reservations in one INSERT: the new ones come back with their keys
        "reserve_keyed": insert(_RES).on_conflict_do_nothing().returning(_RES.c.idempotency_key, _RES.c.id),
        # b_value fen and b_n units of stock, all or nothing
        "take_budget": update(_C)
        .where(
            _C.c.id == b("b_cid"),
            or_(_C.c.budget_fen.is_(None), _C.c.budget_used_fen + b("b_value") <= _C.c.budget_fen),
            or_(_C.c.stock.is_(None), _C.c.stock_used + b("b_n") <= _C.c.stock),
        )
        .values(budget_used_fen=_C.c.budget_used_fen + b("b_value"), stock_used=_C.c.stock_used + b("b_n")),
        "reservation_reward": update(_RES).where(_RES.c.id == b("b_id")).values(reward_id=b("b_reward")),
        "qualify": update(_REF)
        .where(_REF.c.id == b("b_id"), _REF.c.qualified_at.is_(None))
        .values(qualified_at=b("b_now"), qualifying_order=b("b_order"), counted=b("b_counted")),
        "uncount": update(_REF).where(_REF.c.id == b("b_id")).values(counted=False),
        "insert_referral": insert(_REF).on_conflict_do_nothing().returning(_REF.c.id),
        "insert_order": insert(_ORD).on_conflict_do_nothing().returning(_ORD.c.id),
        # the order's row as it is now comes back (its view): no read after
        "order_outcome": update(_ORD)
        .where(_ORD.c.id == b("b_id"))
        .values(status=b("b_status"), reason=b("b_reason"), referral_id=b("b_ref"))
        .returning(*(_ORD.c[k] for k in ORDER_VIEW)),
        "parent": select(_REF.c.id, _REF.c.generation, _REF.c.group_id).where(
            _REF.c.campaign_id == b("b_cid"), _REF.c.friend_person_id == b("b_pid")
        ),
        "referral_of_friend": select(Referral).where(
            Referral.campaign_id == b("b_cid"), Referral.friend_person_id == b("b_pid")
        ),
        # the campaign's stage plan (or none) comes along: an accept asks for it next (stages.admit)
        "invite_by_token": select(Invite, Campaign, StagePlan)
        .join(Campaign, Campaign.id == Invite.campaign_id)
        .outerjoin(StagePlan, StagePlan.campaign_id == Campaign.id)
        .where(Invite.token == b("b_token")),
    }


_statements: dict[str, dict[str, Executable]] = {}


def stmt(session: Session, name: str) -> Executable:
    dialect = session.get_bind().dialect.name
    built = _statements.get(dialect)
    if built is None:
        built = _statements[dialect] = _build_statements(
            pg_insert if dialect == "postgresql" else sqlite_insert
        )
    return built[name]


def expire_campaign(session: Session, campaign_id: str) -> None:
    """A loaded campaign's budget and stock changed by a Core UPDATE: read them again when used."""
    for obj in session.identity_map.values():
        if isinstance(obj, Campaign) and obj.id == campaign_id:
            session.expire(obj, ["budget_used_fen", "stock_used"])


def audit(
    session: Session,
    action: str,
    campaign_id: str | None,
    detail: dict[str, Any] | None = None,
    *,
    actor: str | None = None,
    entity: str = "campaign",
    entity_id: str | int = "",
) -> None:
    """One audit row per state change, written at the transaction's commit (one INSERT for all rows
    of a request) and dropped with its rollback. `liebian.auth` has no audit service yet: the table
    campaign_audit stands in. Without an explicit actor the row names who the request's session
    acts for (`session.info["actor"]`, set by the API: the API key or user), else "system"."""
    session.info.setdefault("campaign_audit", []).append(
        {
            "ts": utcnow(),
            "actor": (actor or session.info.get("actor") or "system")[:64],
            "action": action,
            "campaign_id": campaign_id,
            "entity": entity,
            "entity_id": str(entity_id),
            "detail": to_json(detail or {}),
        }
    )


@event.listens_for(Session, "before_commit")
def _write_audit(session: Session) -> None:
    session.info.pop("campaign_refs", None)
    rows = session.info.pop("campaign_audit", None)
    if rows:
        insert_rows(session, table_of(CampaignAudit), rows)


@event.listens_for(Session, "after_rollback")
def _drop_audit(session: Session) -> None:
    session.info.pop("campaign_audit", None)
    session.info.pop("campaign_refs", None)


_rules_cache: dict[tuple[str, int], CampaignRules] = {}


def clear_rules_cache() -> None:
    """Forget the rules read so far (tests that rewrite stored rules)."""
    _rules_cache.clear()


def rules_of(session: Session, campaign_id: str, version: int, *, cache: bool = True) -> CampaignRules:
    """The rules of one version. Launched versions never change, so they are cached per process."""
    key = (campaign_id, version)
    if cache and key in _rules_cache:
        return _rules_cache[key]
    text = session.scalar(
        select(CampaignVersion.rules).where(
            CampaignVersion.campaign_id == campaign_id, CampaignVersion.version == version
        )
    )
    if text is None:
        raise CampaignError(404, "unknown_version", f"campaign {campaign_id} has no version {version}")
    # stored before rule times carried a zone, a naive time there is UTC (later ones end in Z)
    try:  # stored rules passed the edge once: its time ranges (which move with the clock) do not apply
        rules = CampaignRules.model_validate_json(text, context={"stored": True, "naive_utc": True})
    except ValidationError as exc:  # written before the edge bounded a field, or by hand
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise CampaignError(
            409, "stored_rules_invalid", f"campaign {campaign_id} v{version}: {problems}; edit the rules"
        ) from None
    if cache:
        _rules_cache[key] = rules
    return rules


_CAMPAIGN_BY_ID = select(Campaign).where(Campaign.id == bindparam("b_id"))


def load_campaign(session: Session, campaign_id: str, *, lock: bool = False) -> Campaign:
    if lock:
        q = select(Campaign).where(Campaign.id == campaign_id).with_for_update()
        c = session.scalar(q.execution_options(populate_existing=True))
    elif identity_key(Campaign, campaign_id) in session.identity_map:
        # sessions live for one request: the identity map (filled by verify_code) is fresh
        c = session.get(Campaign, campaign_id)
    else:  # a statement built once: Session.get builds its SELECT on every call
        c = session.scalars(_CAMPAIGN_BY_ID, {"b_id": campaign_id}).first()
    if c is None:
        raise CampaignError(404, "unknown_campaign", f"no campaign {campaign_id!r}", field="campaign_id")
    return c


_Section = TypeVar("_Section")


def section(rules: CampaignRules, value: _Section | None, name: str) -> _Section:
    """A part of the rules the campaign's type needs (`rules.group` of a group_buy campaign…).
    Publishing refuses rules without it (each strategy's `problems`), so a missing one is a bug."""
    if value is None:
        raise RuntimeError(f"a {rules.type} campaign without its {name} rules")
    return value


def effective_status(c: Campaign, rules: CampaignRules, now: datetime) -> str:
    """The stored status, moved on by the clock: scheduled → live at start, live → ended after end."""
    status = c.status
    if status in LAUNCHED and rules.end_at and now > rules.end_at:
        return "ended"
    if status == "scheduled" and (rules.start_at is None or now >= rules.start_at):
        return "live"
    return status


def live_rules(session: Session, c: Campaign, now: datetime) -> CampaignRules:
    rules = rules_of(session, c.id, c.version, cache=c.status != "draft")
    status = effective_status(c, rules, now)
    if status != "live":
        raise CampaignError(409, "campaign_not_live", f"campaign {c.id} is {status}", field="campaign_id")
    return rules


# The columns of an order's view, in its order.
ORDER_VIEW = ("order_id", "campaign_id", "person_id", "referral_id", "event", "amount_fen", "currency",
              "verified_by", "status", "reason", "ts")  # fmt: skip


def order_view(o: CampaignOrder | Row[Any]) -> dict[str, Any]:
    """An order's view, from its ORM row or a result row of the `ORDER_VIEW` columns."""
    return {k: getattr(o, k) for k in ORDER_VIEW}


def inviter_spend_ok(session: Session, rules: CampaignRules, inviter: int) -> bool:
    """Whether the inviter spent the minimum the rules ask of a referrer (confirmed, not refunded)."""
    if rules.referrer_min_spend_fen <= 0:
        return True
    spent = session.execute(
        select(func.coalesce(func.sum(CampaignOrder.amount_fen), 0)).where(
            CampaignOrder.person_id == inviter,
            CampaignOrder.event == "order",
            CampaignOrder.status.not_in(("refunded", "pending", "rejected")),  # only confirmed orders
        )
    ).scalar_one()
    return spent >= rules.referrer_min_spend_fen
