"""WeCom (企业微信) integration: the callback receiver, contact-way (联系我) states, and the events.

A callback goes through three steps:

1. `open_envelope` (no store touched): timestamp within the replay window, the outer XML, the
   signature, AES decryption with the receiver-id check, the inner XML. Any failure raises
   `CallbackRejected` with a stable code and reason, which the API logs.
2. `enrich`: for customer events, `externalcontact/get` gives the unionid (when the app is set up
   with a secret); failures there are logged and processing goes on with the external_userid only.
3. `processing.process` (one transaction): the nonce is recorded (a repeat is a replay and
   rejected), the event is recorded by the hash of its plaintext (a retry of a processed event
   changes nothing), then attribution, follow relations, group membership and OneID links are
   written, and the pipeline events are queued in `wecom_outbox`. Either all of it commits or none.

`flush_outbox` hands the queued events to the ingest collector (`liebian.ingest.service.ingest_items`,
the function behind `POST /api/v1/events/batch`) in batches, from the server's background thread
(`outbox_flusher`, about a second after the callback) or `liebian wecom flush`; rows that cannot be
loaded now stay queued for the next round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import UTC, datetime

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sqlalchemy import delete, func, select
from sqlalchemy.orm import Session

from liebian.campaigns import invites
from liebian.campaigns import service as campaigns
from liebian.config import Settings, get_settings
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine.outbox import OutboxFlusher
from liebian.errors import DomainError
from liebian.ingest import service as ingest
from liebian.wecom.client import WecomApiError, WecomClient
from liebian.wecom.crypto import CryptoError, MsgCrypt
from liebian.wecom.models import (
    WecomCallback,
    WecomFollow,
    WecomGroupMember,
    WecomOutbox,
    WecomState,
)
from liebian.wecom.schemas import (
    CallbackOut,
    ContactWayCreate,
    ContactWayOut,
    ContactWayUpdate,
    FollowOut,
    GroupMemberOut,
    Message,
)

log = logging.getLogger(__name__)

CUSTOMER_EVENTS = ("add_external_contact", "edit_external_contact", "del_external_contact", "del_follow_user")
MAX_BODY = 64 * 1024  # WeCom's callbacks are a few hundred bytes


class CallbackRejected(DomainError):
    """A callback refused before it is applied (WeCom is answered in plain text, see wecom/api.py)."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(code, message, status)


class WecomError(DomainError):
    """A contact-way request refused here (before or after asking WeCom)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None):
        errors = [{"field": field, "reason": message}] if field else []
        super().__init__(code, message, status, field=field, errors=errors)


# ---------------------------------------------------------------- configuration


def msg_crypt(settings: Settings | None = None) -> MsgCrypt:
    s = settings or get_settings()
    if not (s.wecom_corp_id and s.wecom_token and s.wecom_encoding_aes_key):
        raise CallbackRejected(
            503,
            "not_configured",
            "WeCom callbacks are not configured: set LIEBIAN_WECOM_CORP_ID, LIEBIAN_WECOM_TOKEN and "
            "LIEBIAN_WECOM_ENCODING_AES_KEY",
        )
    try:
        return MsgCrypt(
            s.wecom_token.get_secret_value(), s.wecom_encoding_aes_key.get_secret_value(), s.wecom_corp_id
        )
    except CryptoError as exc:
        raise CallbackRejected(503, "not_configured", f"WeCom settings: {exc.message}") from None


_clients: dict[tuple[str, str, str], WecomClient] = {}
_clients_lock = threading.Lock()


def get_client(settings: Settings | None = None) -> WecomClient | None:
    """The API client of the configured app (one per process, so the access token is shared), or
    None when no secret is set."""
    s = settings or get_settings()
    if not (s.wecom_corp_id and s.wecom_secret):
        return None
    secret = s.wecom_secret.get_secret_value()
    key = (s.wecom_corp_id, s.wecom_api_base, hashlib.sha256(secret.encode()).hexdigest())
    with _clients_lock:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = WecomClient(s.wecom_corp_id, secret, s.wecom_api_base)
        return client


# ---------------------------------------------------------------- step 1: the envelope


@dataclass(frozen=True)
class _Params:
    """A callback's query parameters, all present and checked."""

    msg_signature: str
    timestamp: str
    nonce: str
    ts: int  # the timestamp as a number


def _check_params(
    msg_signature: str | None, timestamp: str | None, nonce: str | None, now: datetime
) -> _Params:
    if not (msg_signature and timestamp and nonce):
        missing = [
            n
            for n, v in (("msg_signature", msg_signature), ("timestamp", timestamp), ("nonce", nonce))
            if not v
        ]
        raise CallbackRejected(400, "missing_parameter", f"missing query parameter(s): {', '.join(missing)}")
    if len(nonce) > 64:
        raise CallbackRejected(400, "bad_nonce", "nonce longer than 64 characters")
    try:
        ts = int(timestamp)
    except ValueError:
        raise CallbackRejected(
            400, "bad_timestamp", f"timestamp {timestamp[:20]!r} is not an integer"
        ) from None
    window = get_settings().wecom_replay_window_seconds
    skew = now.replace(tzinfo=UTC).timestamp() - ts
    if abs(skew) > window:
        raise CallbackRejected(
            403, "stale_timestamp", f"timestamp is {int(skew)} s away from now (allowed ±{window} s): replay?"
        )
    return _Params(msg_signature, timestamp, nonce, ts)


def _parse_xml(text: str | bytes, what: str) -> ET.Element:
    try:
        root = SafeET.fromstring(text)
    except (ET.ParseError, DefusedXmlException, ValueError) as exc:
        raise CallbackRejected(400, "malformed_xml", f"{what} is not well-formed XML: {exc}") from None
    return root


def verify_url(
    msg_signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    echostr: str | None,
    now: datetime | None = None,
) -> tuple[str, int]:
    """The URL-verification GET: the decrypted echostr (the app answers it verbatim)."""
    now = now or utcnow()
    params = _check_params(msg_signature, timestamp, nonce, now)
    if not echostr:
        raise CallbackRejected(400, "missing_parameter", "missing query parameter(s): echostr")
    try:
        return msg_crypt().verify_url(
            params.msg_signature, params.timestamp, params.nonce, echostr
        ), params.ts
    except CryptoError as exc:
        raise CallbackRejected(403 if exc.code == "bad_signature" else 400, exc.code, exc.message) from None


def open_envelope(
    msg_signature: str | None,
    timestamp: str | None,
    nonce: str | None,
    body: bytes,
    now: datetime | None = None,
) -> Message:
    """Check and decrypt a POSTed callback; the parsed event (nothing is stored here)."""
    now = now or utcnow()
    params = _check_params(msg_signature, timestamp, nonce, now)
    if len(body) > MAX_BODY:
        raise CallbackRejected(413, "too_large", f"callback body of {len(body)} bytes (at most {MAX_BODY})")
    outer = _parse_xml(body, "the callback body")
    encrypt = (outer.findtext("Encrypt") or "").strip()
    if not encrypt:
        raise CallbackRejected(400, "malformed_xml", "the callback body has no <Encrypt> element")
    try:
        plain = msg_crypt().decrypt_msg(params.msg_signature, params.timestamp, params.nonce, encrypt)
    except CryptoError as exc:
        raise CallbackRejected(403 if exc.code == "bad_signature" else 400, exc.code, exc.message) from None
    inner = _parse_xml(plain, "the decrypted message")
    fields = {child.tag: (child.text or "").strip() for child in inner if len(child) == 0}
    members = [(i.text or "").strip() for i in inner.findall("MemChangeList/Item") if (i.text or "").strip()]
    if not members and fields.get("MemChangeList"):  # the older comma-separated form
        members = [m.strip() for m in fields["MemChangeList"].split(",") if m.strip()]
    event = fields.get("Event", "")
    if fields.get("MsgType") != "event" or not event:
        raise CallbackRejected(
            400, "malformed_event", "the decrypted message is not an event (MsgType/Event)"
        )
    try:
        created = datetime.fromtimestamp(int(fields.get("CreateTime", "")), UTC).replace(tzinfo=None)
    except ValueError:
        raise CallbackRejected(400, "malformed_event", "CreateTime is missing or not an integer") from None
    change = fields.get("ChangeType", "")
    if event == "change_external_contact":
        need = ["UserID", "ExternalUserID"] if change in CUSTOMER_EVENTS else []
    elif event == "change_external_chat":
        need = ["ChatId"]
    else:
        need = []
    missing = [n for n in need if not fields.get(n)]
    if missing:
        raise CallbackRejected(400, "malformed_event", f"{event}/{change} lacks {', '.join(missing)}")
    return Message(
        key=hashlib.sha256(plain.encode()).hexdigest(),
        event=event,
        change_type=change,
        created_at=created,
        fields=fields,
        members=members,
        nonce=params.nonce,
        timestamp=params.ts,
    )


# ---------------------------------------------------------------- step 2: enrichment


def enrich(msg: Message, client: WecomClient | None) -> Message:
    """The unionid of the customer from `externalcontact/get` (add and edit events)."""
    if client is None or msg.event != "change_external_contact":
        return msg
    if msg.change_type not in ("add_external_contact", "edit_external_contact"):
        return msg
    try:
        body = client.get_external_contact(msg.fields["ExternalUserID"])
        msg.unionid = (body.get("external_contact") or {}).get("unionid") or None
    except WecomApiError as exc:
        log.warning("WeCom externalcontact/get failed, going on without unionid: %s", exc)
    return msg


# ---------------------------------------------------------------- the pipeline


_flush_lock = threading.Lock()


def flush_outbox(limit: int = 1000) -> int:
    """Hand queued WeCom events to the ingest collector; the number of events handed over.

    Idempotent: the collector deduplicates by event_id, so a crash between ingest and delete only
    repeats work. Items the collector rejects are kept in the warehouse's `rejects` table by it.
    """

    done = 0
    with _flush_lock:
        while True:
            with session_scope() as s:
                rows = s.execute(
                    select(WecomOutbox.id, WecomOutbox.payload).order_by(WecomOutbox.id).limit(limit)
                ).all()
            if not rows:
                return done
            summary, outcomes = ingest.ingest_items(
                "events", [json.loads(p) for _, p in rows], source="wecom"
            )
            for o in outcomes:
                if o.status == "rejected":
                    log.error(
                        "WeCom event rejected by the collector (batch %s): %s", summary.batch_id, o.errors
                    )
            with session_scope() as s:
                s.execute(delete(WecomOutbox).where(WecomOutbox.id.in_([r[0] for r in rows])))
            done += len(rows)
            if len(rows) < limit:
                return done


def outbox_flusher(interval: float = 1.0) -> OutboxFlusher:
    """The server's thread handing queued events to the collector every `interval` seconds, in
    batches, off the callback's request path (one per server process)."""
    return OutboxFlusher("wecom-outbox-flush", flush_outbox, interval=interval)

    def flush_once(self) -> None:
        try:
            flush_outbox()
        except Exception:  # keep serving; the events stay queued for the next round
            log.exception("handing WeCom events to the collector failed; they stay queued")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.flush_once()


def pending_events(session: Session) -> int:

    return session.scalar(select(func.count()).select_from(WecomOutbox)) or 0


# ---------------------------------------------------------------- contact ways (联系我)


def new_state() -> str:
    # "lb" + 12 base32 characters (60 bits): well inside WeCom's 30-character limit
    import base64

    return "lb" + base64.b32encode(os.urandom(8)).decode().rstrip("=").lower()[:12]


def _state_view(st: WecomState) -> ContactWayOut:
    return ContactWayOut(
        state=st.state,
        kind=st.kind,
        campaign_id=st.campaign_id,
        invite_code=st.invite_code,
        inviter_person_id=st.inviter_person_id,
        channel=st.channel,
        region=st.region,
        store=st.store,
        config_id=st.config_id,
        qr_code=st.qr_code,
        users=json.loads(st.staff),
        remark=st.remark,
        created_at=st.created_at,
        deleted_at=st.deleted_at,
    )


def _need_client(client: WecomClient | None) -> WecomClient:
    if client is None:
        raise WecomError(
            503,
            "not_configured",
            "the WeCom API is not configured: set LIEBIAN_WECOM_CORP_ID and LIEBIAN_WECOM_SECRET",
        )
    return client


def create_contact_way(
    session: Session, req: ContactWayCreate, client: WecomClient | None = None
) -> ContactWayOut:
    """A state for an inviter's invite (campaign + inviter) or a channel, and — unless
    `create_in_wecom` is false — the 联系我 code in WeCom that carries it."""
    state = req.state or new_state()
    if session.scalar(select(WecomState.id).where(WecomState.state == state)) is not None:
        raise WecomError(409, "state_exists", f"state {state!r} is taken", field="state")
    if req.campaign_id:
        campaigns.get_campaign(session, req.campaign_id)  # 404 for an unknown campaign
    st = WecomState(
        state=state,
        kind="invite" if req.inviter else "channel",
        campaign_id=req.campaign_id,
        channel=req.channel,
        region=req.region,
        store=req.store,
        staff=json.dumps(req.users),
        remark=req.remark,
        created_at=utcnow(),
    )
    if req.inviter is not None:
        assert req.campaign_id  # the request's schema requires it with an inviter
        inv = invites.get_invite(session, req.campaign_id, req.inviter, channel=req.channel)
        st.invite_code, st.inviter_person_id = inv["code"], inv["inviter_person_id"]
    session.add(st)
    session.flush()
    if req.create_in_wecom:
        made = _need_client(client).add_contact_way(
            state=state, users=req.users, remark=req.remark, skip_verify=req.skip_verify
        )
        st.config_id, st.qr_code = made["config_id"], made["qr_code"]
        session.flush()
    return _state_view(st)


def _state(session: Session, state: str) -> WecomState:
    st = session.scalar(select(WecomState).where(WecomState.state == state))
    if st is None:
        raise WecomError(404, "unknown_state", f"no contact way with state {state!r}", field="state")
    return st


def get_state(session: Session, state: str) -> ContactWayOut:
    return _state_view(_state(session, state))


def list_states(session: Session, campaign_id: str | None = None) -> list[ContactWayOut]:
    q = select(WecomState).order_by(WecomState.id)
    if campaign_id:
        q = q.where(WecomState.campaign_id == campaign_id)
    return [_state_view(s) for s in session.scalars(q)]


def update_contact_way(
    session: Session, state: str, req: ContactWayUpdate, client: WecomClient | None = None
) -> ContactWayOut:
    st = _state(session, state)
    if st.deleted_at is not None:
        raise WecomError(409, "deleted", f"the contact way {state!r} was deleted", field="state")
    if st.config_id:
        _need_client(client).update_contact_way(
            st.config_id, users=req.users, remark=req.remark, skip_verify=req.skip_verify
        )
    if req.users is not None:
        st.staff = json.dumps(req.users)
    if req.remark is not None:
        st.remark = req.remark
    session.flush()
    return _state_view(st)


def delete_contact_way(session: Session, state: str, client: WecomClient | None = None) -> ContactWayOut:
    """Delete the code in WeCom. The mapping stays so that late callbacks are still attributed."""
    st = _state(session, state)
    if st.deleted_at is None:
        if st.config_id:
            _need_client(client).del_contact_way(st.config_id)
        st.deleted_at = utcnow()
        session.flush()
    return _state_view(st)


# ---------------------------------------------------------------- reading


def follows(session: Session, external_userid: str) -> list[FollowOut]:
    rows = session.scalars(
        select(WecomFollow).where(WecomFollow.external_userid == external_userid).order_by(WecomFollow.id)
    )
    return [
        FollowOut(
            external_userid=r.external_userid,
            wecom_staff=r.staff_userid,
            person_id=r.person_id,
            state=r.state,
            campaign_id=r.campaign_id,
            referral_id=r.referral_id,
            welcome_code_received=r.welcome_code_received,
            added_at=r.added_at,
            deleted_at=r.deleted_at,
            deleted_by=r.deleted_by,
        )
        for r in rows
    ]


def group_members(session: Session, chat_id: str) -> list[GroupMemberOut]:
    rows = session.scalars(
        select(WecomGroupMember)
        .where(WecomGroupMember.chat_id == chat_id)
        .order_by(WecomGroupMember.member_id)
    )
    return [
        GroupMemberOut(
            chat_id=r.chat_id,
            member_id=r.member_id,
            member_kind=r.member_kind,
            joined_at=r.joined_at,
            left_at=r.left_at,
            in_group=r.left_at is None and r.joined_at is not None,
        )
        for r in rows
    ]


def callbacks(session: Session, limit: int = 100) -> list[CallbackOut]:
    rows = session.scalars(select(WecomCallback).order_by(WecomCallback.id.desc()).limit(limit))
    return [
        CallbackOut(
            id=r.id,
            event=r.event,
            change_type=r.change_type,
            external_userid=r.external_userid,
            wecom_staff=r.staff_userid,
            chat_id=r.chat_id,
            state=r.state,
            outcome=r.outcome,
            detail=json.loads(r.detail),
            created_at=r.created_at,
            received_at=r.received_at,
        )
        for r in rows
    ]


def epoch(now: datetime | None = None) -> str:
    return str(int((now or utcnow()).replace(tzinfo=UTC).timestamp()))


__all__ = [
    "CallbackRejected",
    "WecomError",
    "callbacks",
    "create_contact_way",
    "delete_contact_way",
    "enrich",
    "flush_outbox",
    "follows",
    "get_client",
    "get_state",
    "group_members",
    "list_states",
    "msg_crypt",
    "open_envelope",
    "update_contact_way",
    "verify_url",
]
