"""Complaints (投诉) and data-subject requests: intake, owner, the response clock, resolution.

One case table holds both kinds; each case gets a deadline when it is received (complaints:
`Settings.complaint_deadline_hours`, per category in `complaint_category_hours`; data-subject
requests: the legal deadline of privacy/subject_requests.py). `run_clock` reminds the owner once
`complaint_remind_fraction` of the window has passed and escalates a case past its deadline through
the alert channels (monitor/notifications), again every `complaint_escalate_every_hours` while it
stays open. Every change is in the audit log. No personal data in clear: the person is kept as its
pseudonymous id, the text with identifiers masked (privacy/pii.py), and notifications carry the
case number, kind, category and deadline only.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from liebian.auth.service import audit, get_user
from liebian.complaints.models import Complaint
from liebian.config import get_settings
from liebian.db.base import utcnow
from liebian.errors import DomainError
from liebian.identity import service as identity
from liebian.monitor import notifications
from liebian.privacy import pii
from liebian.privacy.subject_requests import SUBJECT_REQUEST_CATEGORIES, legal_deadline

CHANNELS = (
    "wecom",
    "miniprogram",
    "app",
    "web",
    "phone",
    "email",
    "store",
    "douyin",
    "xiaohongshu",
    "weibo",
    "other",
)
COMPLAINT_CATEGORIES = (
    "reward",
    "product",
    "food_safety",
    "service",
    "delivery",
    "refund",
    "campaign_rules",
    "privacy",
    "harassment",
    "other",
)
# A complaint may be closed as upheld or rejected (or withdrawn by the person); a data-subject
# request as fulfilled or rejected (or withdrawn).
RESOLUTIONS = {
    "complaint": ("upheld", "rejected", "withdrawn"),
    "subject_request": ("fulfilled", "rejected", "withdrawn"),
}
SYSTEM_ACTOR = "system:complaints"


class ComplaintError(DomainError):
    default_status = 422


@dataclass(frozen=True)
class Intake:
    """A case as received (validated at the edge by schemas.ComplaintIn)."""

    kind: str
    channel: str
    category: str
    text: str
    person_id: int | None = None
    id_type: str | None = None
    id_value: str | None = None
    owner: str | None = None
    received_at: datetime | None = None


def categories(kind: str) -> tuple[str, ...]:
    """The categories of a kind: complaints' own plus any the settings give a deadline to."""
    if kind == "subject_request":
        return SUBJECT_REQUEST_CATEGORIES
    extra = tuple(c for c in get_settings().complaint_category_hours if c not in COMPLAINT_CATEGORIES)
    return COMPLAINT_CATEGORIES + extra


def deadline(kind: str, category: str, received_at: datetime) -> datetime:
    """When a case of this kind and category received at `received_at` (naive UTC) is due."""
    if kind == "subject_request":
        return legal_deadline(received_at)
    settings = get_settings()
    hours = settings.complaint_category_hours.get(category, settings.complaint_deadline_hours)
    return received_at + timedelta(hours=hours)


def _check(field: str, value: str, allowed: tuple[str, ...]) -> str:
    if value not in allowed:
        raise ComplaintError("invalid", f"{field}: {value!r} is not one of {', '.join(allowed)}", field=field)
    return value


def _person(session: Session, intake: Intake) -> int | None:
    """The person id of the case: the given id (followed through merges) or the identifier's
    person, founded if liebian has not seen it yet (the identifier is stored hashed by identity)."""
    if intake.person_id is not None:
        pid = identity.current_person(session, intake.person_id)
        if pid is None:
            raise ComplaintError(
                "not_found", f"person_id: {intake.person_id} does not exist", 404, field="person_id"
            )
        return pid
    if intake.id_type is None or intake.id_value is None:
        return None
    raw = identity.RawIdentifier(intake.id_type, intake.id_value)
    return identity.resolve(session, [raw], source="complaint")[raw.key]


def _check_owner(session: Session, owner: str) -> str:
    user = get_user(session, owner)
    if user is None or not user.active:
        raise ComplaintError("invalid", f"owner: no active console user {owner!r}", field="owner")
    return user.username


def state_of(case: Complaint, now: datetime) -> str:
    if case.status == "resolved":
        return "resolved"
    if case.due_at <= now:
        return "overdue"
    return "due_soon" if now >= _remind_at(case) else "open"


def _remind_at(case: Complaint) -> datetime:
    window = case.due_at - case.received_at
    return case.received_at + window * get_settings().complaint_remind_fraction


def view(case: Complaint, now: datetime | None = None) -> dict[str, Any]:
    return {
        "id": case.id,
        "kind": case.kind,
        "channel": case.channel,
        "category": case.category,
        "person_id": case.person_id,
        "text": case.text,
        "owner": case.owner,
        "status": case.status,
        "state": state_of(case, now or utcnow()),
        "received_at": case.received_at,
        "due_at": case.due_at,
        "reminded_at": case.reminded_at,
        "escalated_at": case.escalated_at,
        "escalations": case.escalations,
        "resolution": case.resolution,
        "resolution_reason": case.resolution_reason,
        "resolved_by": case.resolved_by,
        "resolved_at": case.resolved_at,
        "created_by": case.created_by,
    }


def create(
    session: Session, intake: Intake, *, actor: str, ip: str = "", now: datetime | None = None
) -> dict[str, Any]:
    """Record a complaint or a data-subject request; its clock starts at `received_at` (or now)."""
    now = now or utcnow()
    kind = _check("kind", intake.kind, ("complaint", "subject_request"))
    channel = _check("channel", intake.channel, CHANNELS)
    category = _check("category", intake.category, categories(kind))
    if not intake.text.strip():
        raise ComplaintError("invalid", "text: say what the complaint or request is about", field="text")
    received = intake.received_at or now
    person_id = _person(session, intake)
    if kind == "subject_request" and person_id is None:
        raise ComplaintError(
            "invalid", "person_id: a data-subject request names its person", field="person_id"
        )
    case = Complaint(
        kind=kind,
        channel=channel,
        category=category,
        person_id=person_id,
        text=pii.scrub(intake.text.strip(), "hash") or "",
        owner=_check_owner(session, intake.owner) if intake.owner else "",
        status="open",
        received_at=received,
        due_at=deadline(kind, category, received),
        escalations=0,
        created_by=actor[:128],
    )
    session.add(case)
    session.flush()
    audit(
        session,
        actor,
        f"{kind}.create",
        f"complaint:{case.id}",
        {"channel": channel, "category": category, "owner": case.owner, "due_at": case.due_at},
        ip,
    )
    return view(case, now)


def _case(session: Session, case_id: int) -> Complaint:
    case = session.get(Complaint, case_id)
    if case is None:
        raise ComplaintError("not_found", f"complaint {case_id} does not exist", 404)
    return case


def get(session: Session, case_id: int, now: datetime | None = None) -> dict[str, Any]:
    return view(_case(session, case_id), now)


def list_cases(
    session: Session,
    *,
    status: str | None = None,
    kind: str | None = None,
    owner: str | None = None,
    limit: int = 500,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """Cases, the soonest deadline first."""
    q = select(Complaint)
    if status:
        q = q.where(Complaint.status == _check("status", status, ("open", "resolved")))
    if kind:
        q = q.where(Complaint.kind == _check("kind", kind, ("complaint", "subject_request")))
    if owner:
        q = q.where(Complaint.owner == owner)
    now = now or utcnow()
    rows = session.scalars(q.order_by(Complaint.due_at, Complaint.id).limit(limit))
    return [view(c, now) for c in rows]


def due(session: Session, now: datetime | None = None) -> list[dict[str, Any]]:
    """What is due: every open case, overdue first, then by deadline."""
    now = now or utcnow()
    cases = list_cases(session, status="open", now=now, limit=10_000)
    order = {"overdue": 0, "due_soon": 1, "open": 2}
    return sorted(cases, key=lambda c: (order[c["state"]], c["due_at"], c["id"]))


def assign(session: Session, case_id: int, owner: str, *, actor: str, ip: str = "") -> dict[str, Any]:
    case = _case(session, case_id)
    if case.status != "open":
        raise ComplaintError("case_closed", f"complaint {case_id} is resolved", 409)
    before = case.owner
    case.owner = _check_owner(session, owner)
    session.flush()
    audit(
        session, actor, f"{case.kind}.assign", f"complaint:{case.id}", {"from": before, "to": case.owner}, ip
    )
    return view(case)


def resolve(
    session: Session,
    case_id: int,
    resolution: str,
    reason: str,
    *,
    actor: str,
    ip: str = "",
    now: datetime | None = None,
) -> dict[str, Any]:
    """Close a case with its outcome and the reason given to the person (PII masked, audited)."""
    case = _case(session, case_id)
    if case.status != "open":
        raise ComplaintError("case_closed", f"complaint {case_id} is resolved", 409)
    _check("resolution", resolution, RESOLUTIONS[case.kind])
    if not reason.strip():
        raise ComplaintError("invalid", "reason: say why (it is audited)", field="reason")
    now = now or utcnow()
    case.status = "resolved"
    case.resolution = resolution
    case.resolution_reason = pii.scrub(reason.strip(), "hash") or ""
    case.resolved_by = actor[:128]
    case.resolved_at = now
    session.flush()
    audit(
        session,
        actor,
        f"{case.kind}.resolve",
        f"complaint:{case.id}",
        {"resolution": resolution, "on_time": now <= case.due_at, "reason": case.resolution_reason},
        ip,
    )
    return view(case, now)


# --- the clock ---------------------------------------------------------------------------------

# (session, alert-shaped view, event) -> deliveries; the monitor's channels by default
Notify = Callable[[Session, dict[str, Any], str], object]

EVENT_LEVEL = {"reminder": "重要", "escalated": "紧急"}
KIND_ZH = {"complaint": "投诉", "subject_request": "个人信息权利请求"}


def _alert_view(case: Complaint, event: str) -> dict[str, Any]:
    """The person-free notification of a case (the monitor's alert shape; no text, no person)."""
    state = "即将超时 due soon" if event == "reminder" else "已超时 overdue"
    return {
        "id": None,  # not a monitor alert: its delivery log row has no alert
        "kind": "complaint",
        "metric": f"{case.kind}:{case.category}",
        "scope": {},
        "level": EVENT_LEVEL[event],
        "status": case.status,
        "title": f"{KIND_ZH[case.kind]} #{case.id} {state}（负责人 owner: {case.owner or '未分配 unassigned'}）",
        "observed": None,
        "expected": None,
        "threshold": None,
        "period": case.received_at.strftime("%Y-%m-%d %H:%M"),
        "suggested_action": "resolve_complaint",
        "auto_action": "",
        "occurrences": case.escalations,
        "first_seen": case.received_at.isoformat(),
        "due_at": case.due_at.isoformat(),
        "escalations": case.escalations,
        "root_cause": "",
    }


def _send(session: Session, notify: Notify | None, case: Complaint, event: str) -> None:
    view_ = _alert_view(case, event)
    if notify is not None:
        notify(session, view_, event)
    else:
        notifications.notify_alert(session, view_, event)


def run_clock(
    session: Session, now: datetime | None = None, *, notify: Notify | None = None
) -> dict[str, list[int]]:
    """Remind the owners of open cases near their deadline and escalate those past it."""
    now = now or utcnow()
    every = timedelta(hours=get_settings().complaint_escalate_every_hours)
    reminded: list[int] = []
    escalated: list[int] = []
    open_cases = session.scalars(
        select(Complaint).where(Complaint.status == "open").order_by(Complaint.id)
    ).all()  # read first: the loop writes (audit entries, deliveries) in the same session
    for case in open_cases:
        if case.due_at <= now:
            if case.escalated_at is not None and case.escalated_at + every > now:
                continue
            case.escalations += 1
            case.escalated_at = now
            session.flush()
            audit(
                session,
                SYSTEM_ACTOR,
                f"{case.kind}.escalate",
                f"complaint:{case.id}",
                {"due_at": case.due_at, "escalations": case.escalations, "owner": case.owner},
            )
            _send(session, notify, case, "escalated")
            escalated.append(case.id)
        elif case.reminded_at is None and now >= _remind_at(case):
            case.reminded_at = now
            session.flush()
            audit(
                session, SYSTEM_ACTOR, f"{case.kind}.remind", f"complaint:{case.id}", {"due_at": case.due_at}
            )
            _send(session, notify, case, "reminder")
            reminded.append(case.id)
    return {"reminded": reminded, "escalated": escalated}
