"""Signed webhooks: endpoints, the outbox written with each ledger entry, delivery with retries.

Each request carries
  X-Liebian-Timestamp: unix seconds
  X-Liebian-Delivery:  the delivery id (stable across retries and replays: receivers dedupe by it)
  X-Liebian-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>
Receivers recompute the signature over the raw body and reject stale timestamps.

Payloads carry ids and amounts only (person ids, never phones or names).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import urlparse

from sqlalchemy import Row, select, update
from sqlalchemy.orm import Session

from liebian import urlguard
from liebian.db.base import table_of, utcnow
from liebian.db.session import core, rowcount
from liebian.lazy import lazy_import
from liebian.privacy.crypto import decrypt, encrypt
from liebian.rewards.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint
from liebian.rewards.schemas import Delivery, DeliveryDetail
from liebian.rewards.service import LedgerError, transaction_of

if TYPE_CHECKING:
    import httpx
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    httpx = lazy_import("httpx")

EVENT_TYPES = (
    "reward.granted",
    "reward.approved",
    "reward.issued",
    "reward.redeemed",
    "reward.rejected",
    "reward.revoked",
    "reward.review_hold",
    "reward.review_cleared",
)
BACKOFF_BASE_S = 10
BACKOFF_MAX_S = 3600
MAX_TRIES = 8  # per round; a replay starts a new round
LEASE_S = 120  # a claimed delivery is invisible to other workers this long
TIMEOUT_S = 10.0  # the worker's client timeout (callers of deliver_due bring their own client)


@dataclass
class EndpointView:
    id: int
    url: str
    event_types: list[str]
    active: bool
    description: str
    created_at: datetime

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _endpoint_view(e: WebhookEndpoint) -> EndpointView:
    return EndpointView(e.id, e.url, e.event_types.split(","), e.active, e.description, e.created_at)


def event_type_for(entry: dict[str, Any]) -> str:
    if entry["kind"] == "grant":
        return "reward.granted"
    if entry["kind"] == "hold":
        return "reward.review_hold"
    if entry["kind"] == "unhold":
        return "reward.review_cleared"
    return f"reward.{entry['to_state']}"


def _check_url(url: str) -> str:
    parsed = urlparse(url or "")
    if parsed.scheme not in ("http", "https") or not parsed.netloc:
        raise LedgerError("invalid", f"url: {url!r} is not an http(s) URL", 422)
    if len(url) > 500:
        raise LedgerError("invalid", "url: longer than 500 characters", 422)
    return urlguard.check_url(url, "url")


def _check_events(event_types: list[str] | None) -> str:
    if not event_types or event_types == ["*"]:
        return "*"
    unknown = [t for t in event_types if t not in EVENT_TYPES]
    if unknown:
        raise LedgerError(
            "invalid",
            f"event_types: unknown {', '.join(unknown)} (known: {', '.join(EVENT_TYPES)} or *)",
            422,
        )
    return ",".join(dict.fromkeys(event_types))


def create_endpoint(
    session: Session,
    url: str,
    event_types: list[str] | None = None,
    *,
    secret: str | None = None,
    description: str = "",
) -> tuple[EndpointView, str]:
    """Register an endpoint. Returns the view and the signing secret (shown to the operator once)."""
    secret = secret or "whsec_" + secrets.token_hex(24)
    if len(secret) < 16:
        raise LedgerError("invalid", "secret: at least 16 characters", 422)
    endpoint = WebhookEndpoint(
        url=_check_url(url),
        secret_encrypted=encrypt(secret),
        event_types=_check_events(event_types),
        active=True,
        description=description[:200],
        created_at=utcnow(),
    )
    session.add(endpoint)
    session.flush()
    session.info.pop(_ENDPOINTS_KEY, None)
    return _endpoint_view(endpoint), secret


def _get_endpoint(session: Session, endpoint_id: int) -> WebhookEndpoint:
    e = session.get(WebhookEndpoint, endpoint_id)
    if e is None or e.deleted_at is not None:
        raise LedgerError("not_found", f"webhook endpoint {endpoint_id} does not exist", 404)
    return e


def get_endpoint(session: Session, endpoint_id: int) -> EndpointView:
    return _endpoint_view(_get_endpoint(session, endpoint_id))


def list_endpoints(session: Session) -> list[EndpointView]:
    rows = session.execute(
        select(WebhookEndpoint).where(WebhookEndpoint.deleted_at.is_(None)).order_by(WebhookEndpoint.id)
    ).scalars()
    return [_endpoint_view(e) for e in rows]


def update_endpoint(
    session: Session,
    endpoint_id: int,
    *,
    url: str | None = None,
    event_types: list[str] | None = None,
    active: bool | None = None,
    description: str | None = None,
) -> EndpointView:
    e = _get_endpoint(session, endpoint_id)
    if url is not None:
        e.url = _check_url(url)
    if event_types is not None:
        e.event_types = _check_events(event_types)
    if active is not None:
        e.active = active
    if description is not None:
        e.description = description[:200]
    session.flush()
    session.info.pop(_ENDPOINTS_KEY, None)
    return _endpoint_view(e)


def delete_endpoint(session: Session, endpoint_id: int) -> None:
    """Soft delete (the delivery log keeps pointing at it); its pending deliveries are cancelled."""
    e = _get_endpoint(session, endpoint_id)
    e.active = False
    e.deleted_at = utcnow()
    session.info.pop(_ENDPOINTS_KEY, None)
    session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.endpoint_id == endpoint_id, WebhookDelivery.status == "pending")
        .values(status="cancelled", last_error="endpoint deleted")
    )
    session.flush()


# --- the outbox --------------------------------------------------------------------------------


_W = table_of(WebhookEndpoint)
_ACTIVE_ENDPOINTS = select(_W.c.id, _W.c.event_types).where(_W.c.active.is_(True), _W.c.deleted_at.is_(None))
_INSERT_DELIVERY = table_of(WebhookDelivery).insert()
_ENDPOINTS_KEY = "webhook_endpoints"


def _active_endpoints(session: Session) -> Sequence[Row[Any, Any]]:
    """The active endpoints, read once per transaction (a referral's two grants append two entries);
    the endpoint functions above forget the list when they change one."""
    tx = transaction_of(session)
    held = session.info.get(_ENDPOINTS_KEY)
    if held is not None and tx is not None and held[0] is tx:
        cached: Sequence[Row[Any, Any]] = held[1]
        return cached
    endpoints = core(session, _ACTIVE_ENDPOINTS).all()
    session.info[_ENDPOINTS_KEY] = (transaction_of(session), endpoints)
    return endpoints


def enqueue_for_entry(session: Session, entry: dict[str, Any], reward: dict[str, Any]) -> int:
    """Queue one delivery per active endpoint subscribed to this entry's event (same transaction)."""
    endpoints = _active_endpoints(session)
    event_type = event_type_for(entry)
    targets = [eid for eid, types in endpoints if types == "*" or event_type in types.split(",")]
    if not targets:
        return 0
    ts: datetime = entry["ts"]
    payload = json.dumps(
        {
            "id": f"evt_{entry['seq']}",
            "type": event_type,
            "created_at": ts.isoformat(timespec="seconds") + "Z",
            "data": {
                "reward_id": reward["id"],
                "campaign_id": reward["campaign_id"],
                "person_id": reward["person_id"],
                "reward_code": reward["reward_code"],
                "value_fen": reward["value_fen"],
                "from_state": entry["from_state"],
                "state": entry["to_state"],
                "held_for_review": bool(reward["held_for_review"]),
                "source_ref": reward["source_ref"],
                "ledger_seq": entry["seq"],
                "entry_hash": entry["hash"],
            },
        },
        ensure_ascii=False,
        separators=(",", ":"),
        sort_keys=True,
    )
    session.execute(
        _INSERT_DELIVERY,
        [
            {
                "delivery_uid": "dlv_" + uuid.uuid4().hex,
                "endpoint_id": eid,
                "event_type": event_type,
                "ledger_seq": entry["seq"],
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "tries_in_round": 0,
                "next_attempt_at": ts,
                "last_error": "",
                "created_at": ts,
            }
            for eid in targets
        ],
    )
    return len(targets)


def sign(secret: str, timestamp: str, body: bytes) -> str:
    mac = hmac.new(secret.encode("utf-8"), timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """What a receiver does (also used by the tests' receiver)."""
    return hmac.compare_digest(sign(secret, timestamp, body), header or "")


def backoff(tries: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_S * 2 ** max(tries - 1, 0), BACKOFF_MAX_S))


def deliver_due(
    session: Session, now: datetime, client: httpx.Client, limit: int = 100, max_seconds: float | None = None
) -> int:
    """Post every due delivery once; returns the number of HTTP attempts made.

    Commits as it goes: a delivery is claimed (leased) and committed before the HTTP call, so no
    database lock is held while waiting on a receiver, and two workers never post the same one.
    `max_seconds` stops claiming new deliveries after that long (the rest wait for the next round).
    """
    started = time.monotonic()
    due = (
        session.execute(
            select(WebhookDelivery.id)
            .where(WebhookDelivery.status == "pending", WebhookDelivery.next_attempt_at <= now)
            .order_by(WebhookDelivery.next_attempt_at, WebhookDelivery.id)
            .limit(limit)
        )
        .scalars()
        .all()
    )
    session.commit()
    attempts = 0
    for delivery_id in due:
        if max_seconds is not None and time.monotonic() - started > max_seconds:
            break
        claimed = rowcount(
            session.execute(
                update(WebhookDelivery)
                .where(
                    WebhookDelivery.id == delivery_id,
                    WebhookDelivery.status == "pending",
                    WebhookDelivery.next_attempt_at <= now,
                )
                .values(next_attempt_at=now + timedelta(seconds=LEASE_S))
            )
        )
        session.commit()
        if not claimed:
            continue
        delivery = session.get_one(WebhookDelivery, delivery_id, populate_existing=True)
        endpoint = session.get(WebhookEndpoint, delivery.endpoint_id, populate_existing=True)
        if endpoint is None or not endpoint.active or endpoint.deleted_at is not None:
            delivery.status, delivery.last_error = "cancelled", "endpoint inactive"
            session.commit()
            continue
        _attempt(session, delivery, endpoint, now, client)
        attempts += 1
        session.commit()
    return attempts


def _attempt(
    session: Session,
    delivery: WebhookDelivery,
    endpoint: WebhookEndpoint,
    now: datetime,
    client: httpx.Client,
) -> None:
    body = delivery.payload.encode("utf-8")
    timestamp = str(int(now.replace(tzinfo=UTC).timestamp()))
    started = time.perf_counter()
    status_code, error = None, ""
    try:
        secret = decrypt(endpoint.secret_encrypted)
    except Exception as exc:  # a changed encryption key must show in the log, not stop the worker
        secret, error = (
            None,
            f"cannot decrypt the endpoint's secret ({type(exc).__name__}); re-create the endpoint",
        )
    if secret is not None:
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "liebian-webhooks/1",
            "X-Liebian-Timestamp": timestamp,
            "X-Liebian-Delivery": delivery.delivery_uid,
            "X-Liebian-Event": delivery.event_type,
            "X-Liebian-Signature": sign(secret, timestamp, body),
        }
        try:
            urlguard.check_before_send(endpoint.url)  # again: the name may point elsewhere now
            response = client.post(endpoint.url, content=body, headers=headers)
            status_code = response.status_code
            if not 200 <= status_code < 300:
                error = f"HTTP {status_code}: {response.text[:200]}"
        except urlguard.UnsafeURL as exc:
            error = exc.message[:500]
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:500] or type(exc).__name__
    duration_ms = int((time.perf_counter() - started) * 1000)
    delivery.attempts += 1
    delivery.tries_in_round += 1
    session.add(
        WebhookAttempt(
            delivery_id=delivery.id,
            attempt_no=delivery.attempts,
            at=now,
            status_code=status_code,
            error=error,
            duration_ms=duration_ms,
        )
    )
    delivery.last_status_code = status_code
    delivery.last_error = error
    if not error:
        delivery.status = "delivered"
        delivery.delivered_at = now
    elif delivery.tries_in_round >= MAX_TRIES:
        delivery.status = "dead"
    else:
        delivery.next_attempt_at = now + backoff(delivery.tries_in_round)


def replay(session: Session, delivery_id: int, now: datetime | None = None) -> Delivery:
    """Queue a delivery again (delivered, dead or cancelled): same id and body, a fresh retry round."""
    delivery = session.get(WebhookDelivery, delivery_id)
    if delivery is None:
        raise LedgerError("not_found", f"delivery {delivery_id} does not exist", 404)
    endpoint = session.get(WebhookEndpoint, delivery.endpoint_id)
    if endpoint is None or endpoint.deleted_at is not None:
        raise LedgerError("endpoint_deleted", f"delivery {delivery_id}: its endpoint was deleted")
    delivery.status = "pending"
    delivery.tries_in_round = 0
    delivery.next_attempt_at = now or utcnow()
    session.flush()
    return delivery_view(delivery)


def delivery_view(d: WebhookDelivery) -> Delivery:
    return Delivery(
        id=d.id,
        delivery_uid=d.delivery_uid,
        endpoint_id=d.endpoint_id,
        event_type=d.event_type,
        ledger_seq=d.ledger_seq,
        status=d.status,
        attempts=d.attempts,
        next_attempt_at=d.next_attempt_at,
        last_status_code=d.last_status_code,
        last_error=d.last_error,
        created_at=d.created_at,
        delivered_at=d.delivered_at,
    )


def list_deliveries(
    session: Session, *, status: str | None = None, endpoint_id: int | None = None, limit: int = 100
) -> list[Delivery]:
    query = select(WebhookDelivery).order_by(WebhookDelivery.id.desc()).limit(limit)
    if status:
        query = query.where(WebhookDelivery.status == status)
    if endpoint_id is not None:
        query = query.where(WebhookDelivery.endpoint_id == endpoint_id)
    return [delivery_view(d) for d in session.execute(query).scalars()]


def get_delivery(session: Session, delivery_id: int) -> DeliveryDetail:
    """A delivery with its body and the log of its attempts."""
    d = session.get(WebhookDelivery, delivery_id)
    if d is None:
        raise LedgerError("not_found", f"delivery {delivery_id} does not exist", 404)
    attempts = (
        session.execute(
            select(WebhookAttempt)
            .where(WebhookAttempt.delivery_id == delivery_id)
            .order_by(WebhookAttempt.attempt_no)
        )
        .scalars()
        .all()
    )
    log = [
        {"attempt_no": a.attempt_no, "at": a.at, "status_code": a.status_code, "error": a.error,
         "duration_ms": a.duration_ms}
        for a in attempts
    ]  # fmt: skip
    return DeliveryDetail(**dict(delivery_view(d)), payload=json.loads(d.payload), log=log)
