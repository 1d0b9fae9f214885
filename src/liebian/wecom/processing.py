"""Step 3 of a WeCom callback, `process` (one transaction): the nonce is recorded (a repeat is a replay
and rejected), the event is recorded by the hash of its plaintext (a retry of a processed event changes
nothing), then the event's handler writes attribution, follow relations, group membership and OneID
links, and queues the pipeline events in `wecom_outbox`. Either all of it commits or none of it.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.identity import service as identity
from liebian.wecom import attribution
from liebian.wecom.models import (
    WecomCallback,
    WecomFollow,
    WecomGroupMember,
    WecomNonce,
    WecomOutbox,
    WecomState,
)
from liebian.wecom.schemas import Message
from liebian.wecom.service import CallbackRejected, log


def _ins(session: Session, model):
    return (pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert)(model)


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
