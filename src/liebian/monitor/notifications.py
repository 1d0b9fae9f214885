"""Who is told about an alert: the notification channels (targets kept encrypted), sending with its
delivery log, and the escalation of open alerts past their response deadline (notified again)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian import urlguard
from liebian.db.base import utcnow
from liebian.monitor import notify
from liebian.monitor.models import Alert, Delivery, NotifyChannel
from liebian.monitor.service import (
    CHANNEL_KINDS,
    DEADLINE_HOURS,
    LEVELS,
    MonitorError,
    alert_view,
    audit,
    invalid,
)
from liebian.privacy import crypto


def escalate_due(
    session: Session, now: datetime | None = None, *, notify_fn: Callable[..., Any] | None = None
) -> list[dict]:
    """Escalate every open alert whose response deadline has passed (one level up, new deadline)."""
    now = now or utcnow()
    out = []
    for a in session.scalars(
        select(Alert).where(Alert.status == "open", Alert.due_at <= now).order_by(Alert.id)
    ):
        before = a.level
        a.level = LEVELS[min(LEVELS.index(a.level) + 1, len(LEVELS) - 1)]
        a.escalations += 1
        a.escalated_at = now
        a.due_at = now + timedelta(hours=DEADLINE_HOURS[a.level])
        session.flush()
        audit(
            session,
            "system:monitor",
            "monitor.alert.escalate",
            f"alert:{a.id}",
            {"from": before, "to": a.level},
        )
        view = alert_view(a)
        out.append(view)
        (notify_fn or notify_alert)(session, view, "escalated")
    return out


def _crypto():

    return crypto


def add_channel(
    session: Session,
    name: str,
    kind: str,
    target: str,
    secret: str = "",
    min_level: str = "一般",
    *,
    actor: str,
) -> dict:
    if kind not in CHANNEL_KINDS:
        raise invalid("kind", f"{kind!r} is not one of {', '.join(CHANNEL_KINDS)}")
    if min_level not in LEVELS:
        raise invalid("min_level", f"{min_level!r} is not one of {', '.join(LEVELS)}")
    target = (target or "").strip()
    if kind == "email":
        addrs = [x.strip() for x in target.split(",") if x.strip()]
        bad = [x for x in addrs if "@" not in x]
        if not addrs or bad:
            raise invalid("target", f"e-mail channels need comma-separated addresses; bad: {bad or target!r}")
    elif not target.startswith(("http://", "https://")):
        raise invalid("target", f"{kind} channels need an http(s) URL")
    else:
        urlguard.check_url(target, "target")
    if kind == "dingtalk" and secret and not secret.startswith("SEC"):
        raise invalid("secret", "a DingTalk 加签 secret starts with SEC")
    if session.scalar(select(NotifyChannel).where(NotifyChannel.name == name)):
        raise MonitorError(409, "exists", f"name: a channel named {name!r} exists", "name")
    c = NotifyChannel(
        name=name, kind=kind, target_encrypted=_crypto().encrypt(target),
        secret_encrypted=_crypto().encrypt(secret) if secret else "", min_level=min_level,
    )  # fmt: skip
    session.add(c)
    session.flush()
    audit(session, actor, "monitor.channel.create", f"channel:{c.id}", {"name": name, "kind": kind})
    return channel_view(c)


def channel_view(c: NotifyChannel) -> dict:
    target = _crypto().decrypt(c.target_encrypted)
    # the URL's query (robot access_token / key) is a credential: show host and path only
    shown = target if c.kind == "email" else target.split("?", 1)[0] + ("?…" if "?" in target else "")
    return {"id": c.id, "name": c.name, "kind": c.kind, "target": shown, "signed": bool(c.secret_encrypted),
            "min_level": c.min_level, "enabled": c.enabled}  # fmt: skip


def list_channels(session: Session) -> list[dict]:
    return [channel_view(c) for c in session.scalars(select(NotifyChannel).order_by(NotifyChannel.id))]


def _channel(session: Session, channel_id: int) -> NotifyChannel:
    c = session.get(NotifyChannel, channel_id)
    if c is None:
        raise MonitorError(404, "not_found", f"channel {channel_id} not found")
    return c


def remove_channel(session: Session, channel_id: int, *, actor: str) -> dict:
    """Stop notifying a channel. It is disabled, not deleted: its deliveries keep their log."""
    c = _channel(session, channel_id)
    c.enabled = False
    session.flush()
    audit(session, actor, "monitor.channel.remove", f"channel:{c.id}", {"name": c.name})
    return channel_view(c)


def test_channel(session: Session, channel_id: int, *, actor: str, now: datetime | None = None) -> dict:
    """Send a test message (event "test", no alert behind it) through one channel; the delivery is
    logged like any other and returned."""
    c = _channel(session, channel_id)
    if not c.enabled:
        raise MonitorError(409, "bad_state", f"channel {channel_id} is removed")
    now = now or utcnow()
    probe: dict[str, Any] = {"id": None, "kind": "test", "metric": "test", "scope": {}, "level": "紧急", "title": "liebian 测试消息 / test message",
             "observed": None, "expected": None, "threshold": None, "period": now.strftime("%Y-%m-%d %H:%M"),
             "suggested_action": "none", "due_at": now.isoformat(), "auto_action": "", "root_cause": ""}  # fmt: skip
    audit(session, actor, "monitor.channel.test", f"channel:{c.id}", {"name": c.name})
    return notify_alert(session, probe, "test", channel_ids=[c.id])[0]


# Tests shorten the backoff; production waits 1 s, 2 s between the three attempts.
SEND_OPTIONS: dict[str, Any] = {"attempts": 3, "backoff": 1.0}


def notify_alert(
    session: Session, alert: dict, event: str, channel_ids: Iterable[int] | None = None
) -> list[dict]:
    """Send `alert` to every enabled channel whose min_level it reaches; log each delivery."""
    q = select(NotifyChannel).where(NotifyChannel.enabled.is_(True))
    if channel_ids is not None:
        q = q.where(NotifyChannel.id.in_(list(channel_ids)))
    view = notify.public_view(alert, event)
    out = []
    for c in session.scalars(q.order_by(NotifyChannel.id)):
        if LEVELS.index(alert["level"]) < LEVELS.index(c.min_level):
            continue
        crypto = _crypto()
        secret = crypto.decrypt(c.secret_encrypted) if c.secret_encrypted else ""
        result = notify.send(c.kind, crypto.decrypt(c.target_encrypted), secret, view, **SEND_OPTIONS)
        d = Delivery(
            alert_id=alert.get("id"), channel_id=c.id, event=event, status=result.status,
            attempts=result.attempts, http_status=result.http_status, error=result.error[:2000],
        )  # fmt: skip
        session.add(d)
        session.flush()
        out.append(delivery_view(d, c.name))
    return out


def delivery_view(d: Delivery, channel: str | None = None) -> dict:
    return {
        "id": d.id, "alert_id": d.alert_id, "channel_id": d.channel_id, "channel": channel, "event": d.event,
        "status": d.status, "attempts": d.attempts, "http_status": d.http_status, "error": d.error,
        "created_at": d.created_at.isoformat() if d.created_at else None,
    }  # fmt: skip


def list_deliveries(session: Session, alert_id: int | None = None, limit: int = 200) -> list[dict]:
    names = dict(session.execute(select(NotifyChannel.id, NotifyChannel.name)).all())
    q = select(Delivery)
    if alert_id is not None:
        q = q.where(Delivery.alert_id == alert_id)
    return [
        delivery_view(d, names.get(d.channel_id))
        for d in session.scalars(q.order_by(Delivery.id.desc()).limit(limit))
    ]
