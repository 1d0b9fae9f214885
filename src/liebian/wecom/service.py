"""WeCom (企业微信) integration: the callback receiver, contact-way (联系我) states, and the events.

A callback goes through three steps:

1. `open_envelope` (no store touched): timestamp within the replay window, the outer XML, the
   signature, AES decryption with the receiver-id check, the inner XML. Any failure raises
   `CallbackRejected` with a stable code and reason, which the API logs.
2. `enrich`: for customer events, `externalcontact/get` gives the unionid (when the app is set up
   with a secret); failures there are logged and processing goes on with the external_userid only.
3. `process` (one transaction): the nonce is recorded (a repeat is a replay and rejected), the
   event is recorded by the hash of its plaintext (a retry of a processed event changes nothing),
   then attribution, follow relations, group membership and OneID links are written, and the
   pipeline events are queued in `wecom_outbox`. Either all of it commits or none of it.

`flush_outbox` hands the queued events to the ingest collector (`liebian.ingest.service.ingest_items`,
the function behind `POST /api/v1/events/batch`) in batches, from the server's background thread
(`OutboxFlusher`, about a second after the callback) or `liebian wecom flush`; rows that cannot be
loaded now stay queued for the next round.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException
from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from liebian.campaigns import service as campaigns
from liebian.config import Settings, get_settings
from liebian.db.base import utcnow
from liebian.errors import DomainError
from liebian.identity import service as identity
from liebian.wecom import attribution
from liebian.wecom.client import WecomApiError, WecomClient
from liebian.wecom.crypto import CryptoError, MsgCrypt
from liebian.wecom.models import (
    WecomCallback,
    WecomFollow,
    WecomGroupMember,
    WecomNonce,
    WecomOutbox,
    WecomState,
)
from liebian.wecom.schemas import ContactWayCreate, ContactWayUpdate, Message

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


def _ins(session: Session, model):
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(model)


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


_clients: dict[tuple, WecomClient] = {}
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


def _check_params(msg_signature: str | None, timestamp: str | None, nonce: str | None, now: datetime) -> int:
    missing = [
        n for n, v in (("msg_signature", msg_signature), ("timestamp", timestamp), ("nonce", nonce)) if not v
    ]
    if missing:
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
    return ts


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
    ts = _check_params(msg_signature, timestamp, nonce, now)
    if not echostr:
        raise CallbackRejected(400, "missing_parameter", "missing query parameter(s): echostr")
    try:
        return msg_crypt().verify_url(msg_signature, timestamp, nonce, echostr), ts
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
    ts = _check_params(msg_signature, timestamp, nonce, now)
    if len(body) > MAX_BODY:
        raise CallbackRejected(413, "too_large", f"callback body of {len(body)} bytes (at most {MAX_BODY})")
    outer = _parse_xml(body, "the callback body")
    encrypt = (outer.findtext("Encrypt") or "").strip()
    if not encrypt:
        raise CallbackRejected(400, "malformed_xml", "the callback body has no <Encrypt> element")
    try:
        plain = msg_crypt().decrypt_msg(msg_signature, timestamp, nonce, encrypt)
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
        nonce=nonce,
        timestamp=ts,
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


# ---------------------------------------------------------------- step 3: processing


def claim_nonce(session: Session, nonce: str, ts: int, now: datetime) -> None:
    window = get_settings().wecom_replay_window_seconds
    session.execute(delete(WecomNonce).where(WecomNonce.expires_at < now))
    expires = datetime.fromtimestamp(ts, UTC).replace(tzinfo=None) + timedelta(seconds=window)
    row = session.execute(
        _ins(session, WecomNonce)
        .values(nonce=nonce, expires_at=max(expires, now))
        .on_conflict_do_nothing()
        .returning(WecomNonce.nonce)
    ).first()
    if row is None:
        raise CallbackRejected(403, "replayed_nonce", "this nonce was used already within the replay window")


def process(session: Session, msg: Message, now: datetime | None = None) -> dict:
    """Apply one callback event in the caller's transaction; the outcome recorded for it."""
    now = now or utcnow()
    claim_nonce(session, msg.nonce, msg.timestamp, now)
    f = msg.fields
    row = session.execute(
        _ins(session, WecomCallback)
        .values(
            event_key=msg.key,
            event=msg.event,
            change_type=msg.change_type,
            external_userid=f.get("ExternalUserID") or None,
            staff_userid=f.get("UserID") or None,
            chat_id=f.get("ChatId") or None,
            state=(f.get("State") or None),
            outcome="processing",
            detail="{}",
            created_at=msg.created_at,
            received_at=now,
        )
        .on_conflict_do_nothing()
        .returning(WecomCallback.id)
    ).first()
    if row is None:
        return {"outcome": "duplicate", "event": msg.event, "change_type": msg.change_type}
    handler = _HANDLERS.get((msg.event, msg.change_type)) or _HANDLERS.get((msg.event, "*"))
    if handler is None:
        result = {"outcome": "ignored", "reason": f"no handler for {msg.event}/{msg.change_type or '-'}"}
    else:
        result = handler(session, msg, now)
    session.execute(
        update(WecomCallback)
        .where(WecomCallback.id == row[0])
        .values(outcome=result["outcome"][:32], detail=json.dumps(result, default=str, ensure_ascii=False))
    )
    return {"event": msg.event, "change_type": msg.change_type, **result}


def _person(session: Session, external_userid: str, unionid: str | None) -> int:
    """The person of an external contact, linked with its unionid (OneID)."""
    ext = identity.RawIdentifier("external_userid", external_userid)
    raws = [ext] + ([identity.RawIdentifier("unionid", unionid)] if unionid else [])
    persons = identity.resolve(session, raws, source="wecom")
    if unionid and len(set(persons.values())) > 1:
        report = identity.link(
            session, [identity.LinkEvidence(ext, raws[1], source="wecom:externalcontact/get")]
        )
        if report.conflicts:
            log.warning("WeCom OneID link conflict: %s", "; ".join(report.conflicts))
        persons = identity.lookup(session, [r.key for r in raws])
    return persons[ext.key]


def _emit(
    session: Session,
    msg: Message,
    *,
    event: str,
    external_userid: str,
    suffix: str = "",
    campaign_id: str | None = None,
    invite_code: str | None = None,
    props: dict | None = None,
) -> None:
    """Queue one pipeline event (generic events format; extra keys become props)."""
    item = {
        "event_id": f"wecom:{msg.key[:40]}{suffix}",
        "ts": msg.created_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "user_id": external_userid,
        "id_type": "external_userid",
        "event": event,
        "channel": "wecom",
    }
    if campaign_id:
        item["campaign_id"] = campaign_id
    if invite_code:
        item["invite_code"] = invite_code
    for k, v in (props or {}).items():
        if v is not None and v != "":
            item[k] = v if isinstance(v, str | int | float | bool) else json.dumps(v, default=str)
    session.add(WecomOutbox(payload=json.dumps(item, ensure_ascii=False), created_at=utcnow()))


def _on_add(session: Session, msg: Message, now: datetime) -> dict:
    f = msg.fields
    ext, staff, state_key = f["ExternalUserID"], f["UserID"], f.get("State") or None
    welcome = bool(f.get("WelcomeCode"))
    st = session.scalar(select(WecomState).where(WecomState.state == state_key)) if state_key else None
    result: dict = {"outcome": "recorded", "state": state_key}
    if state_key and st is None:
        result["reason"] = f"state {state_key!r} is not a liebian contact way"
    attributed: dict = {}
    if st is not None and st.kind == "invite" and st.invite_code:
        attributed = attribution.attribute_add(
            session,
            invite_code=st.invite_code,
            external_userid=ext,
            unionid=msg.unionid,
            region=st.region,
            store=st.store,
        )
        result.update(attributed)
    person = _person(session, ext, msg.unionid)  # registers/links when the engine did not
    follow = session.scalar(
        select(WecomFollow).where(WecomFollow.external_userid == ext, WecomFollow.staff_userid == staff)
    )
    if follow is None:
        follow = WecomFollow(external_userid=ext, staff_userid=staff, added_at=msg.created_at)
        session.add(follow)
    follow.person_id, follow.state, follow.deleted_at, follow.deleted_by = person, state_key, None, None
    follow.added_at = msg.created_at
    follow.welcome_code_received = welcome
    if attributed.get("referral_id") and attributed.get("outcome") == "attributed":
        follow.campaign_id, follow.referral_id = attributed["campaign_id"], attributed["referral_id"]
    elif st is not None and st.campaign_id and follow.campaign_id is None:
        follow.campaign_id = st.campaign_id
    session.flush()
    result["person_id"] = person
    result["welcome_code"] = "received" if welcome else "absent"
    _emit(
        session,
        msg,
        event="add_external_contact",
        external_userid=ext,
        campaign_id=st.campaign_id if st else None,
        invite_code=st.invite_code if st else None,
        props={
            "wecom_staff": staff,
            "state": state_key,
            "campaign_channel": st.channel if st else None,
            "attribution": attributed.get("outcome") or ("channel" if st else "none"),
            "attribution_code": attributed.get("code"),
            "inviter_person_id": attributed.get("inviter_person_id"),
            "referral_id": attributed.get("referral_id"),
            "unionid_known": bool(msg.unionid),
            "welcome_code": welcome,
        },
    )
    return result


def _on_delete(session: Session, msg: Message, now: datetime) -> dict:
    """del_follow_user: the customer deleted the staff member (churn). del_external_contact: the staff
    member deleted the customer (the brand's decision; Source=DELETE_BY_TRANSFER on a handover)."""
    f = msg.fields
    ext, staff = f["ExternalUserID"], f["UserID"]
    by_customer = msg.change_type == "del_follow_user"
    follow = session.scalar(
        select(WecomFollow).where(WecomFollow.external_userid == ext, WecomFollow.staff_userid == staff)
    )
    if follow is None:  # a relation from before liebian was connected
        follow = WecomFollow(
            external_userid=ext,
            staff_userid=staff,
            added_at=msg.created_at,
            person_id=_person(session, ext, None),
        )
        session.add(follow)
    follow.deleted_at = msg.created_at
    follow.deleted_by = "customer" if by_customer else "staff"
    session.flush()
    remaining = session.scalars(
        select(WecomFollow.staff_userid).where(
            WecomFollow.external_userid == ext, WecomFollow.deleted_at.is_(None)
        )
    ).all()
    result: dict = {"outcome": "recorded", "deleted_by": follow.deleted_by, "still_following": len(remaining)}
    campaign_effect: dict = {}
    if by_customer and not remaining:
        # Every campaign the friend was brought into through WeCom, not only this staff member's.
        rows = session.execute(
            select(WecomFollow.campaign_id, WecomFollow.referral_id)
            .where(WecomFollow.external_userid == ext, WecomFollow.referral_id.is_not(None))
            .distinct()
        ).all()
        for campaign_id, referral_id in rows:
            campaign_effect[campaign_id] = attribution.churn(
                session, campaign_id=campaign_id, external_userid=ext, referral_id=referral_id
            )
        result["outcome"] = "churned"
        result["campaigns"] = campaign_effect
    _emit(
        session,
        msg,
        event=msg.change_type,
        external_userid=ext,
        campaign_id=follow.campaign_id,
        props={
            "wecom_staff": staff,
            "deleted_by": follow.deleted_by,
            "source": f.get("Source"),
            "churn": by_customer and not remaining,
            "campaign_effect": {k: v["outcome"] for k, v in campaign_effect.items()} or None,
        },
    )
    return result


def _on_edit(session: Session, msg: Message, now: datetime) -> dict:
    f = msg.fields
    person = _person(session, f["ExternalUserID"], msg.unionid)
    _emit(
        session,
        msg,
        event="edit_external_contact",
        external_userid=f["ExternalUserID"],
        props={"wecom_staff": f["UserID"], "unionid_known": bool(msg.unionid)},
    )
    return {"outcome": "recorded", "person_id": person}


def _is_external(member_id: str) -> bool:
    # WeCom's external_userids begin with "wo" (WeChat users) or "wm"; staff userids are the corp's own.
    return member_id.startswith(("wo", "wm"))


def _on_chat(session: Session, msg: Message, now: datetime) -> dict:
    f = msg.fields
    chat = f["ChatId"]
    detail = f.get("UpdateDetail", "")
    if msg.change_type == "dismiss":
        left = session.execute(
            update(WecomGroupMember)
            .where(WecomGroupMember.chat_id == chat, WecomGroupMember.left_at.is_(None))
            .values(left_at=msg.created_at)
        ).rowcount
        return {"outcome": "recorded", "chat_id": chat, "dismissed": True, "members_left": left}
    if msg.change_type != "update" or detail not in ("add_member", "del_member"):
        return {
            "outcome": "ignored",
            "chat_id": chat,
            "reason": f"chat change {msg.change_type}/{detail or '-'}",
        }
    joining = detail == "add_member"
    scene = f.get("JoinScene" if joining else "QuitScene")
    scene_int = int(scene) if scene and scene.isdigit() else None
    if not msg.members:
        return {
            "outcome": "recorded",
            "chat_id": chat,
            "reason": "no MemChangeList: member ids unknown, count only",
            "count": f.get("MemChangeCnt"),
        }
    events = 0
    for member in msg.members:
        kind = "external" if _is_external(member) else "staff"
        session.execute(
            _ins(session, WecomGroupMember)
            .values(chat_id=chat, member_id=member, member_kind=kind)
            .on_conflict_do_nothing()
        )
        values = (
            {"joined_at": msg.created_at, "left_at": None, "join_scene": scene_int}
            if joining
            else {"left_at": msg.created_at, "quit_scene": scene_int}
        )
        session.execute(
            update(WecomGroupMember)
            .where(WecomGroupMember.chat_id == chat, WecomGroupMember.member_id == member)
            .values(**values)
        )
        if kind == "external":
            _person(session, member, None)
            _emit(
                session,
                msg,
                event="group_join" if joining else "group_leave",
                external_userid=member,
                suffix=f":{member}",
                props={"chat_id": chat, "group_id": chat, "scene": scene_int},
            )
            events += 1
    return {"outcome": "recorded", "chat_id": chat, "members": len(msg.members), "events": events}


_HANDLERS = {
    ("change_external_contact", "add_external_contact"): _on_add,
    ("change_external_contact", "del_follow_user"): _on_delete,
    ("change_external_contact", "del_external_contact"): _on_delete,
    ("change_external_contact", "edit_external_contact"): _on_edit,
    ("change_external_chat", "*"): _on_chat,
}


# ---------------------------------------------------------------- the pipeline


_flush_lock = threading.Lock()


def flush_outbox(limit: int = 1000) -> int:
    """Hand queued WeCom events to the ingest collector; the number of events handed over.

    Idempotent: the collector deduplicates by event_id, so a crash between ingest and delete only
    repeats work. Items the collector rejects are kept in the warehouse's `rejects` table by it.
    """
    from liebian.db.session import session_scope
    from liebian.ingest import service as ingest

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


class OutboxFlusher:
    """A background thread handing queued events to the collector every `interval` seconds, in
    batches, off the callback's request path (one per server process)."""

    def __init__(self, interval: float = 1.0):
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wecom-outbox-flush", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.flush_once()

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
    from sqlalchemy import func

    return session.scalar(select(func.count()).select_from(WecomOutbox)) or 0


# ---------------------------------------------------------------- contact ways (联系我)


def new_state() -> str:
    # "lb" + 12 base32 characters (60 bits): well inside WeCom's 30-character limit
    import base64

    return "lb" + base64.b32encode(os.urandom(8)).decode().rstrip("=").lower()[:12]


def _state_view(st: WecomState) -> dict:
    return {
        "state": st.state,
        "kind": st.kind,
        "campaign_id": st.campaign_id,
        "invite_code": st.invite_code,
        "inviter_person_id": st.inviter_person_id,
        "channel": st.channel,
        "region": st.region,
        "store": st.store,
        "config_id": st.config_id,
        "qr_code": st.qr_code,
        "users": json.loads(st.staff),
        "remark": st.remark,
        "created_at": st.created_at,
        "deleted_at": st.deleted_at,
    }


def _need_client(client: WecomClient | None) -> WecomClient:
    if client is None:
        raise WecomError(
            503,
            "not_configured",
            "the WeCom API is not configured: set LIEBIAN_WECOM_CORP_ID and LIEBIAN_WECOM_SECRET",
        )
    return client


def create_contact_way(session: Session, req: ContactWayCreate, client: WecomClient | None = None) -> dict:
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
        inv = campaigns.get_invite(session, req.campaign_id, req.inviter, channel=req.channel)
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


def get_state(session: Session, state: str) -> dict:
    return _state_view(_state(session, state))


def list_states(session: Session, campaign_id: str | None = None) -> list[dict]:
    q = select(WecomState).order_by(WecomState.id)
    if campaign_id:
        q = q.where(WecomState.campaign_id == campaign_id)
    return [_state_view(s) for s in session.scalars(q)]


def update_contact_way(
    session: Session, state: str, req: ContactWayUpdate, client: WecomClient | None = None
) -> dict:
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


def delete_contact_way(session: Session, state: str, client: WecomClient | None = None) -> dict:
    """Delete the code in WeCom. The mapping stays so that late callbacks are still attributed."""
    st = _state(session, state)
    if st.deleted_at is None:
        if st.config_id:
            _need_client(client).del_contact_way(st.config_id)
        st.deleted_at = utcnow()
        session.flush()
    return _state_view(st)


# ---------------------------------------------------------------- reading


def follows(session: Session, external_userid: str) -> list[dict]:
    rows = session.scalars(
        select(WecomFollow).where(WecomFollow.external_userid == external_userid).order_by(WecomFollow.id)
    )
    return [
        {
            "external_userid": r.external_userid,
            "wecom_staff": r.staff_userid,
            "person_id": r.person_id,
            "state": r.state,
            "campaign_id": r.campaign_id,
            "referral_id": r.referral_id,
            "welcome_code_received": r.welcome_code_received,
            "added_at": r.added_at,
            "deleted_at": r.deleted_at,
            "deleted_by": r.deleted_by,
        }
        for r in rows
    ]


def group_members(session: Session, chat_id: str) -> list[dict]:
    rows = session.scalars(
        select(WecomGroupMember)
        .where(WecomGroupMember.chat_id == chat_id)
        .order_by(WecomGroupMember.member_id)
    )
    return [
        {
            "chat_id": r.chat_id,
            "member_id": r.member_id,
            "member_kind": r.member_kind,
            "joined_at": r.joined_at,
            "left_at": r.left_at,
            "in_group": r.left_at is None and r.joined_at is not None,
        }
        for r in rows
    ]


def callbacks(session: Session, limit: int = 100) -> list[dict]:
    rows = session.scalars(select(WecomCallback).order_by(WecomCallback.id.desc()).limit(limit))
    return [
        {
            "id": r.id,
            "event": r.event,
            "change_type": r.change_type,
            "external_userid": r.external_userid,
            "wecom_staff": r.staff_userid,
            "chat_id": r.chat_id,
            "state": r.state,
            "outcome": r.outcome,
            "detail": json.loads(r.detail),
            "created_at": r.created_at,
            "received_at": r.received_at,
        }
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
    "process",
    "update_contact_way",
    "verify_url",
]
