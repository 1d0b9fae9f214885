"""Verified conversions: a conversion reported with the public front-end key is recorded as
*pending* and qualifies only once a trusted source confirms its order.

Trusted sources, each recorded as a `VerifiedOrder` (one per order id):

- `operator`: a conversion reported with a key that is not the public one (the brand's order
  feed); it qualifies at once, as before, and confirms pending reports of the same order;
- `callback`: a shop's server posts the order to `POST /api/v1/orders/callback`, the body signed
  with HMAC-SHA256 under the shop's secret (`X-Liebian-Signature: sha256=<hex>`); secrets are
  created and revoked by operators and stored sealed (`liebian.privacy.crypto`);
- `import`: an order loaded into the warehouse by a file import or by the collector with a
  non-public key (`confirm_from_warehouse`, run by the job `campaigns-verify-orders`);
- WeCom's own qualifying event (an add through a 联系我 code) is reported by the server itself and
  is trusted like the operator's.

The trusted order decides: its amount, currency and status replace the public report's, and a
trusted order of another buyer rejects the report. A report no trusted order confirms within
`conversion_confirm_hours` is rejected with its reason and audited (`expire_pending`).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from pydantic import ValidationError
from sqlalchemy import Executable, Row, bindparam, select, update
from sqlalchemy.orm import Session

from liebian import fx
from liebian.campaigns import flows
from liebian.campaigns.common import CampaignError, audit, ins, load_campaign, order_view
from liebian.campaigns.models import CampaignOrder, OrderShop, VerifiedOrder
from liebian.campaigns.participants import resolve_person
from liebian.campaigns.schemas import ConversionRequest, OrderCallback
from liebian.config import get_settings
from liebian.db.base import table_of, utcnow
from liebian.db.session import core, rowcount
from liebian.engine import warehouse
from liebian.identity import service as identity
from liebian.privacy.crypto import decrypt, encrypt
from liebian.schemas import to_utc

PAID = "paid"
ENDED = ("refunded", "cancelled")
SIGNATURE_HEADER = "X-Liebian-Signature"


@dataclass(frozen=True)
class TrustedOrder:
    """An order as a trusted source reports it."""

    order_id: str
    source: str  # operator | callback | import | wecom
    person_id: int | None
    amount_fen: int
    currency: str
    status: str  # paid | refunded | cancelled
    ts: datetime
    event: str = "order"
    shop_id: str | None = None


# ---------------------------------------------------------------- reports


def report(
    session: Session, campaign_id: str, req: ConversionRequest, *, trusted: bool, now: datetime | None = None
) -> dict[str, Any]:
    """A conversion through the API: judged at once when the caller is trusted, else pending."""
    now = now or utcnow()
    req = fx.in_cny(req, to_utc(req.ts or now, naive_utc=True))  # another currency counts in CNY, or 422
    if trusted:
        return report_trusted(session, campaign_id, req, now=now)
    return report_pending(session, campaign_id, req, now=now)


def report_trusted(
    session: Session, campaign_id: str, req: ConversionRequest, *, now: datetime, source: str = "operator"
) -> dict[str, Any]:
    """The operator's order feed: the order becomes a trusted one (confirming pending reports of it
    in every campaign), then the conversion is judged as before."""
    # kept referenced: the identity map is weak, and the conversion below loads the campaign again
    campaign = load_campaign(session, campaign_id)
    person = resolve_person(session, req, source=f"campaign:{campaign_id}")
    ts = to_utc(req.ts or now, naive_utc=True)
    order = TrustedOrder(req.order_id, source, person, req.amount_fen, req.currency, PAID, ts, req.event)
    confirmed = record(session, order, now=now)
    result = flows.report_conversion(session, campaign.id, req, now=now, person=person)
    here = [c for c in confirmed if c["campaign_id"] == campaign_id]
    return here[0] if result["duplicate"] and here else result


def report_pending(
    session: Session, campaign_id: str, req: ConversionRequest, *, now: datetime
) -> dict[str, Any]:
    """The public key's report: recorded as pending, its context sealed, confirmed at once when a
    trusted order of it is known already."""
    rec = flows.receive_order(session, campaign_id, req, now=now, verified_by=None, status="pending")
    if isinstance(rec, dict):  # the same order id again
        return rec
    reason = f"awaiting confirmation of order {req.order_id} by a trusted source"
    session.execute(
        update(CampaignOrder)
        .where(CampaignOrder.id == rec.order_pk)
        .values(pending_detail=encrypt(req.model_dump_json()), reason=reason)
    )
    row = _order(session, rec.order_pk)
    known = session.scalar(select(VerifiedOrder).where(VerifiedOrder.order_id == req.order_id))
    if known is not None:
        return _apply(session, row, known, now)
    audit(session, "order.pending", campaign_id, {"order_id": req.order_id}, entity="order", entity_id=row.id)
    return {**order_view(row), "duplicate": False, "grants": []}


def _order(session: Session, order_pk: int) -> CampaignOrder:
    q = select(CampaignOrder).where(CampaignOrder.id == order_pk).execution_options(populate_existing=True)
    return session.scalars(q).one()


# ---------------------------------------------------------------- trusted orders


def record(session: Session, order: TrustedOrder, *, now: datetime | None = None) -> list[dict[str, Any]]:
    """Record a trusted order (or its later refund/cancellation) and apply it to every conversion
    reported with its id: pending ones are confirmed or rejected, qualified ones refunded. The
    views of the conversions it changed."""
    now = now or utcnow()
    known = _upsert(session, order, now)
    changed = []
    rows = session.scalars(_ORDERS_OF, {"b_order": order.order_id}).all()
    for row in rows:
        if row.status == "pending":
            changed.append(_apply(session, row, known, now))
        elif known.status in ENDED and row.status not in ("refunded", "rejected"):
            refunded = flows.refund(
                session, row.campaign_id, row.order_id, note=f"order {known.status} ({known.source})"
            )
            changed.append({**refunded, "grants": []})
    return changed


# Statements of a conversion's path, built once (per dialect where it differs): constructing them
# per call cost more than running them (`common.stmt` says the same of the referral hot path).
_ORDERS_OF = (
    select(CampaignOrder).where(CampaignOrder.order_id == bindparam("b_order")).order_by(CampaignOrder.id)
)
_VERIFIED_COLUMNS = (*TrustedOrder.__dataclass_fields__, "received_at", "updated_at")
_VO = table_of(VerifiedOrder)
_INSERT_VERIFIED: dict[str, Executable] = {}

# A trusted order as `_apply` reads it: the ORM row, or the row a new order's INSERT returned
Known = VerifiedOrder | Row[Any]


def _insert_verified(session: Session) -> Executable:
    """INSERT a trusted order unless its id is known, returning the new row's columns (a Core
    statement: returning the ORM object cost most of a conversion's statement time)."""
    dialect = session.get_bind().dialect.name
    built = _INSERT_VERIFIED.get(dialect)
    if built is None:
        built = _INSERT_VERIFIED[dialect] = (
            ins(session, _VO)  # the table, not the entity: Core rows come back, no ORM bulk path
            .values(**{k: bindparam(f"b_{k}") for k in _VERIFIED_COLUMNS})
            .on_conflict_do_nothing(index_elements=["order_id"])
            .returning(*_VO.c)
        )
    return built


def _upsert(session: Session, order: TrustedOrder, now: datetime) -> Known:
    """The order's one trusted record: created, or moved on from paid to refunded/cancelled (never
    back); another buyer's order under the same id is refused."""
    values = {f"b_{k}": getattr(order, k) for k in TrustedOrder.__dataclass_fields__}
    # a new order comes back whole from its INSERT (RETURNING): no second read; a known one is read
    # (and locked) after, as an ORM object (it may move on below)
    created = core(
        session, _insert_verified(session), {**values, "b_received_at": now, "b_updated_at": now}
    ).first()
    if created is not None:  # new: the buyer is this order's
        _audit_verified(session, order, created.status, created.id)
        return created
    q = select(VerifiedOrder).where(VerifiedOrder.order_id == order.order_id).with_for_update()
    known = session.scalars(q.execution_options(populate_existing=True)).one()
    if not _same_person(session, known.person_id, order.person_id):
        raise CampaignError(
            409, "order_conflict", f"order {order.order_id} is another buyer's order", field="order_id"
        )
    moved = known.status == PAID and order.status in ENDED
    if not moved:
        return known  # known already, nothing new to audit
    known.status, known.updated_at = order.status, now
    session.flush()
    _audit_verified(session, order, known.status, known.id)
    return known


def _audit_verified(session: Session, order: TrustedOrder, status: str, row_id: int) -> None:
    audit(
        session,
        "order.verified",
        None,
        {"order_id": order.order_id, "source": order.source, "status": status, "shop": order.shop_id},
        actor=order.source,
        entity="verified_order",
        entity_id=row_id,
    )


def _same_person(session: Session, a: int | None, b: int | None) -> bool:
    if a is None or b is None or a == b:
        return True
    return identity.current_person(session, a) == identity.current_person(session, b)


def _apply(session: Session, row: CampaignOrder, known: Known, now: datetime) -> dict[str, Any]:
    """A pending conversion meets its trusted order: confirmed (judged with the trusted amount,
    currency and time) or rejected with the reason."""
    if known.status != PAID:
        return reject(session, row, f"the order is {known.status} ({known.source})")
    if not _same_person(session, known.person_id, row.person_id):
        return reject(session, row, f"order {row.order_id} belongs to another buyer ({known.source})")
    if known.event != row.event:
        return reject(session, row, f"the trusted record is a {known.event!r} event, not {row.event!r}")
    req = ConversionRequest.model_validate_json(decrypt(row.pending_detail or "")).model_copy(
        update={"amount_fen": known.amount_fen, "currency": known.currency, "ts": known.ts}
    )
    won = rowcount(
        session.execute(
            update(CampaignOrder)
            .where(CampaignOrder.id == row.id, CampaignOrder.status == "pending")
            .values(
                status="received",
                amount_fen=known.amount_fen,
                currency=known.currency,
                ts=known.ts,
                verified_by=known.source,
                pending_detail=None,
            )
        )
    )
    if not won:  # another confirmation took it
        return {**order_view(_order(session, row.id)), "duplicate": True, "grants": []}
    c = load_campaign(session, row.campaign_id)
    rec = flows.Received(c, row.id, row.person_id, known.ts)
    # judged as of the report (claim window, hold), as if a trusted source had reported it then
    return flows.conclude_order(session, rec, req, now=min(row.created_at, now))


def reject(session: Session, row: CampaignOrder, reason: str, *, actor: str = "system") -> dict[str, Any]:
    """A pending conversion is rejected (once), with its reason, and audited."""
    won = rowcount(
        session.execute(
            update(CampaignOrder)
            .where(CampaignOrder.id == row.id, CampaignOrder.status == "pending")
            .values(status="rejected", reason=reason, pending_detail=None)
        )
    )
    if won:
        audit(
            session,
            "order.reject",
            row.campaign_id,
            {"order_id": row.order_id, "reason": reason},
            actor=actor,
            entity="order",
            entity_id=row.id,
        )
    return {**order_view(_order(session, row.id)), "duplicate": not won, "grants": []}


def expire_pending(session: Session, now: datetime | None = None) -> int:
    """Reject the pending conversions no trusted source confirmed within the configured time."""
    now = now or utcnow()
    hours = get_settings().conversion_confirm_hours
    due = session.scalars(
        select(CampaignOrder)
        .where(CampaignOrder.status == "pending", CampaignOrder.created_at < now - timedelta(hours=hours))
        .order_by(CampaignOrder.id)
        .limit(1000)
    ).all()
    reason = f"no trusted source confirmed the order within {hours:g} hours"
    return sum(not reject(session, row, reason)["duplicate"] for row in due)


def confirm_known(session: Session, now: datetime | None = None) -> int:
    """A repair: pending conversions whose trusted order is recorded already (a report and its
    confirmation that crossed in concurrent transactions) are confirmed or rejected now."""
    rows = session.execute(
        select(CampaignOrder, VerifiedOrder)
        .join(VerifiedOrder, VerifiedOrder.order_id == CampaignOrder.order_id)
        .where(CampaignOrder.status == "pending")
        .order_by(CampaignOrder.id)
        .limit(1000)
    ).all()
    now = now or utcnow()
    return sum(not _apply(session, row, known, now)["duplicate"] for row, known in rows)


def pending_order_ids(session: Session, limit: int = 5000) -> list[str]:
    return list(
        session.scalars(
            select(CampaignOrder.order_id)
            .where(CampaignOrder.status == "pending")
            .distinct()
            .order_by(CampaignOrder.order_id)
            .limit(limit)
        )
    )


# Orders in the warehouse from an import or the collector, except those the public key sent.
_WAREHOUSE_ORDERS = """
    SELECT o.order_id, o.person_id, o.amount_fen, o.currency, o.status, o.ts
    FROM orders o JOIN import_batches b ON b.batch_id = o.batch_id
    WHERE list_contains($ids, o.order_id) AND b.source NOT LIKE 'api:public%'
"""


def confirm_from_warehouse(session: Session, now: datetime | None = None) -> int:
    """Pending conversions whose order reached the warehouse through an import or the collector
    (not with the public key) are confirmed by it (source `import`). How many orders were found."""
    ids = pending_order_ids(session)
    if not ids or not warehouse.warehouse_path().exists():
        return 0
    with warehouse.connect(read_only=True) as con:
        rows = con.execute(_WAREHOUSE_ORDERS, {"ids": ids}).fetchall()
    for order_id, person_id, amount_fen, currency, status, ts in rows:
        record(
            session, TrustedOrder(order_id, "import", person_id, amount_fen, currency, status, ts), now=now
        )
    return len(rows)


# ---------------------------------------------------------------- signed shop callbacks


def create_shop(session: Session, shop_id: str, *, actor: str) -> dict[str, Any]:
    """A shop that may post signed order callbacks; its secret is shown once."""
    secret = "shsec_" + secrets.token_urlsafe(32)
    done = session.execute(
        ins(session, OrderShop)
        .values(shop_id=shop_id, secret_sealed=encrypt(secret), created_at=utcnow(), revoked_at=None)
        .on_conflict_do_nothing()
        .returning(OrderShop.shop_id)
    ).first()
    if done is None:
        raise CampaignError(409, "shop_exists", f"shop {shop_id!r} exists already", field="shop_id")
    audit(session, "shop.create", None, {"shop_id": shop_id}, actor=actor, entity="shop", entity_id=shop_id)
    return {**_shop_view(session.get_one(OrderShop, shop_id)), "secret": secret}


def list_shops(session: Session) -> list[dict[str, Any]]:
    return [_shop_view(s) for s in session.scalars(select(OrderShop).order_by(OrderShop.shop_id))]


def revoke_shop(session: Session, shop_id: str, *, actor: str) -> dict[str, Any]:
    shop = session.get(OrderShop, shop_id)
    if shop is None:
        raise CampaignError(404, "unknown_shop", f"no shop {shop_id!r}", field="shop_id")
    if shop.revoked_at is None:
        shop.revoked_at = utcnow()
        audit(
            session, "shop.revoke", None, {"shop_id": shop_id}, actor=actor, entity="shop", entity_id=shop_id
        )
    session.flush()
    return _shop_view(shop)


def _shop_view(shop: OrderShop) -> dict[str, Any]:
    return {"shop_id": shop.shop_id, "created_at": shop.created_at, "revoked_at": shop.revoked_at}


def sign(secret: str, body: bytes) -> str:
    """The signature header's value for a body: `sha256=` and the hex HMAC-SHA256."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def check_signature(session: Session, shop_id: str, body: bytes, signature: str | None) -> None:
    """Refuse (401) a callback without a signature, of an unknown or revoked shop, or whose
    signature is not the body's HMAC-SHA256 under the shop's secret."""
    if not signature:
        raise CampaignError(
            401, "missing_signature", f"{SIGNATURE_HEADER} is missing: sign the body with the shop's secret"
        )
    shop = session.get(OrderShop, shop_id)
    if shop is None or shop.revoked_at is not None:
        raise CampaignError(401, "unknown_shop", f"shop {shop_id!r} is unknown or revoked", field="shop_id")
    expected = sign(decrypt(shop.secret_sealed), body)
    given = signature.strip()
    if not given.startswith("sha256="):
        given = "sha256=" + given
    if not hmac.compare_digest(expected, given.lower()):
        raise CampaignError(
            401,
            "bad_signature",
            f"{SIGNATURE_HEADER} is not the HMAC-SHA256 of the body under shop {shop_id!r}'s secret",
        )


def order_callback(session: Session, body: bytes, signature: str | None) -> dict[str, Any]:
    """A signed order callback: checked, then recorded as a trusted order (source `callback`)."""
    try:
        cb = OrderCallback.model_validate_json(body)
    except ValidationError as exc:
        check_signature(session, _shop_of(body), body, signature)  # unsigned garbage is a 401
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "body"
        raise CampaignError(422, "invalid", f"{where}: {first['msg']}", field=where) from None
    check_signature(session, cb.shop_id, body, signature)
    buyer = resolve_person(session, cb.buyer, source=f"shop:{cb.shop_id}")
    ts = to_utc(cb.ts, naive_utc=True) if cb.ts else utcnow()
    cb = fx.in_cny(cb, ts)  # another currency counts in CNY, or 422
    order = TrustedOrder(
        cb.order_id, "callback", buyer, cb.amount_fen, cb.currency, cb.status, ts, shop_id=cb.shop_id
    )
    confirmed = record(session, order)
    known = session.scalars(select(VerifiedOrder).where(VerifiedOrder.order_id == cb.order_id)).one()
    return {
        "order_id": known.order_id,
        "source": known.source,
        "shop_id": known.shop_id,
        "status": known.status,
        "amount_fen": known.amount_fen,
        "currency": known.currency,
        "ts": known.ts,
        "confirmed": confirmed,
    }


def _shop_of(body: bytes) -> str:
    """The shop a malformed body names, to check its signature before saying what is wrong."""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return ""
    shop = parsed.get("shop_id") if isinstance(parsed, dict) else None
    return shop if isinstance(shop, str) else ""
