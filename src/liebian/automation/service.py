"""Journeys: trigger → waits and branches → actions, with a cap, quiet hours and consent before each.

Order of checks before an action (see `_act`): consent ("marketing", newest record decides) → quiet
hours (display zone; the enrolment waits until they end) → the cross-channel frequency cap (contact
actions only: a tag or a campaign-audience mark contacts nobody). The cap is a ledger of slots with a
unique (person, window, slot) key, claimed with INSERT … ON CONFLICT DO NOTHING in the same
transaction that moves the enrolment on — so two workers, two journeys or two channels can never
contact one person more than the cap allows, on SQLite and PostgreSQL alike.

Each enrolment is advanced by a conditional UPDATE on its `version`: a worker that lost the race
changes nothing. The webhook is sent after that transaction commits; a failed send keeps its slot
(the person may have been reached) and is logged as failed.

Hold-out: a deterministic hash of (journey, person) puts `holdout_pct` % in the control arm; they
are enrolled (so conversion is measured) but never actioned. Lift = treatment rate / control rate − 1.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from liebian import urlguard
from liebian.automation.models import ContactSlot, Journey, JourneyAction, JourneyEnrollment, JourneyMark
from liebian.automation.schemas import Action, Condition, JourneyDefinition, JourneyOut
from liebian.campaigns import service as campaigns
from liebian.config import get_settings
from liebian.db.base import Base, utcnow
from liebian.db.session import rowcount, session_scope
from liebian.engine import warehouse
from liebian.errors import DomainError, code_for
from liebian.lazy import lazy_import
from liebian.predict import service as predict
from liebian.privacy import service as privacy
from liebian.privacy.crypto import decrypt, encrypt
from liebian.tags import service as tags

if TYPE_CHECKING:
    import duckdb
    import httpx
    import pandas as pd
else:  # deferred for start-up time: imported on first use (liebian/lazy.py)
    duckdb = lazy_import("duckdb")
    httpx = lazy_import("httpx")
    pd = lazy_import("pandas")

log = logging.getLogger("liebian.automation")
MAX_STEPS_PER_PASS = 50  # a branch loop cannot spin forever inside one pass


class AutomationError(DomainError):
    """A refused journey request; the body always names the field (as the app's 422s do)."""

    def __init__(self, message: str, status: int = 422, field: str = ""):
        errors = [{"field": field, "reason": message}]
        super().__init__(code_for(status), message, status, field=field, errors=errors)


# ------------------------------------------------------------------ definitions


SEALED = "sealed:"  # webhook secrets are stored AES-GCM encrypted and never shown


def _secrets(data: dict[str, Any], fn: Callable[[str], str]) -> dict[str, Any]:
    for step in data["steps"]:
        action = step.get("action")
        if action and action.get("secret"):
            action["secret"] = fn(action["secret"])
    return data


def _seal(d: JourneyDefinition) -> str:

    return json.dumps(_secrets(d.model_dump(mode="json", by_alias=True), lambda v: SEALED + encrypt(v)))


def _check_urls(d: JourneyDefinition) -> None:
    """Webhook actions post to the outside only (liebian.urlguard); the 422 names the step."""
    for i, step in enumerate(d.steps):
        if step.action is not None and step.action.url is not None:
            urlguard.check_url(str(step.action.url), f"definition.steps[{i}].action.url")


def _definition(j: Journey) -> JourneyDefinition:

    data = _secrets(
        json.loads(j.definition), lambda v: decrypt(v[len(SEALED) :]) if v.startswith(SEALED) else v
    )
    return JourneyDefinition.model_validate(data)


def journey_view(session: Session, j: Journey) -> JourneyOut:
    return JourneyOut(
        id=j.id,
        name=j.name,
        status=j.status,
        definition=_secrets(json.loads(j.definition), lambda v: "********"),
        created_at=j.created_at.isoformat(),
        last_scan_at=j.last_scan_at.isoformat() if j.last_scan_at else None,
    )


def create_journey(session: Session, name: str, definition: JourneyDefinition | dict[str, Any]) -> JourneyOut:
    if isinstance(definition, dict):
        definition = JourneyDefinition.model_validate(definition)
    quiet_hours(definition.quiet_hours)  # reject a bad override now, not at the first action
    _check_urls(definition)
    if session.scalar(select(Journey.id).where(Journey.name == name)) is not None:
        raise AutomationError(f"name: a journey named {name!r} exists", 409, "name")
    j = Journey(name=name, definition=_seal(definition), status="active")
    session.add(j)
    session.flush()
    return journey_view(session, j)


def _journey(session: Session, journey_id: int) -> Journey:
    j = session.get(Journey, journey_id)
    if j is None:
        raise AutomationError(f"journey_id: journey {journey_id} does not exist", 404, "journey_id")
    return j


def get_journey(session: Session, journey_id: int) -> JourneyOut:
    return journey_view(session, _journey(session, journey_id))


def list_journeys(session: Session) -> list[JourneyOut]:
    return [journey_view(session, j) for j in session.scalars(select(Journey).order_by(Journey.id))]


def set_status(session: Session, journey_id: int, status: str) -> JourneyOut:
    if status not in ("active", "paused"):
        raise AutomationError(f"status: {status!r} is not active or paused", field="status")
    j = _journey(session, journey_id)
    j.status = status
    return journey_view(session, j)


# ------------------------------------------------------------------ quiet hours, cap, consent


def quiet_hours(text: str | None = None) -> tuple[int, int] | None:
    """Parse 'START-END' (hours 0–23, display zone); '' means no quiet hours."""
    text = get_settings().automation_quiet_hours if text is None else text
    if not text.strip():
        return None
    try:
        start, end = (int(x) for x in text.split("-"))
    except ValueError as exc:
        raise AutomationError(
            f"quiet_hours: {text!r} is not START-END in hours", field="quiet_hours"
        ) from exc
    if not (0 <= start <= 23 and 0 <= end <= 23) or start == end:
        raise AutomationError(f"quiet_hours: {text!r} needs two different hours 0–23", field="quiet_hours")
    return start, end


def quiet_until(now: datetime, quiet: tuple[int, int] | None) -> datetime | None:
    """When `now` (naive UTC) falls in quiet hours: the naive-UTC moment they end; else None."""
    if quiet is None:
        return None
    zone = ZoneInfo(get_settings().timezone)
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    start, end = quiet
    h = local.hour
    inside = (start <= h or h < end) if start > end else (start <= h < end)
    if not inside:
        return None
    end_local = local.replace(hour=end, minute=0, second=0, microsecond=0)
    if end_local <= local:
        end_local += timedelta(days=1)
    return end_local.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def cap_window(now: datetime, window_days: int) -> int:
    """The cap window of a moment: display-zone day number // window_days."""
    zone = ZoneInfo(get_settings().timezone)
    local = now.replace(tzinfo=ZoneInfo("UTC")).astimezone(zone)
    return local.date().toordinal() // window_days


def _insert(session: Session) -> Callable[[type[Base]], postgresql.Insert | sqlite.Insert]:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def claim_contact(
    session: Session,
    person_id: int,
    channel: str,
    source: str = "",
    now: datetime | None = None,
    cap: int | None = None,
    window_days: int | None = None,
) -> bool:
    """Take one of the person's contact slots in the current window, across all channels.

    True when a slot was free (the contact may go out), False when the cap is reached. Atomic: the
    unique key admits one writer per slot; a concurrent transaction waits and then sees the row.
    """
    settings = get_settings()
    cap = cap or settings.automation_cap_contacts
    window = cap_window(now or utcnow(), window_days or settings.automation_cap_window_days)
    insert = _insert(session)
    for slot in range(cap):
        stmt = (
            insert(ContactSlot)
            .values(
                person_id=person_id, window=window, slot=slot, channel=channel[:32], source=source[:128],
                at=now or utcnow(),
            )
            .on_conflict_do_nothing(index_elements=["person_id", "window", "slot"])
            .returning(ContactSlot.id)
        )  # fmt: skip
        if session.execute(stmt).first() is not None:  # RETURNING: rowcount is -1 on psycopg
            return True
    return False


def contacts(session: Session, person_id: int) -> list[dict[str, Any]]:
    rows = session.scalars(
        select(ContactSlot).where(ContactSlot.person_id == person_id).order_by(ContactSlot.id)
    )
    return [
        {"window": r.window, "channel": r.channel, "source": r.source, "at": r.at.isoformat()} for r in rows
    ]


def _has_consent(session: Session, person_id: int) -> bool:

    return privacy.has_consent(session, person_id, "marketing")


# ------------------------------------------------------------------ triggers and entry


def in_control(journey_id: int, person_id: int, holdout_pct: int) -> bool:
    """Deterministic: the same person is always in the same arm of the same journey."""
    digest = hashlib.sha256(f"journey:{journey_id}:{person_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % 100 < holdout_pct


def _candidates(session: Session, j: Journey, d: JourneyDefinition, now: datetime) -> list[int]:
    t = d.trigger
    if t.type == "segment":
        out: list[int] = []
        while True:
            page = tags.members(session, t.tag, limit=10000, offset=len(out))
            out.extend(page)
            if len(page) < 10000:
                return out
    if t.type == "churn_risk":
        feats = predict.person_features()
        scores = predict.churn_scores(feats)
        if scores is None:
            raise AutomationError(
                "trigger: no churn model yet; run `liebian predict churn` first", 409, "trigger"
            )
        return [int(p) for p in feats.loc[scores > t.threshold, "person_id"]]
    with warehouse.connect(read_only=True) as con:
        if t.type == "event":
            since = j.last_scan_at or now - timedelta(hours=t.lookback_hours)
            rows = con.execute(
                "SELECT DISTINCT person_id FROM events WHERE event = ? AND ts > ? AND ts <= ?",
                [t.event, since, now],
            ).fetchall()
        else:  # silence: active before, nothing in the last N days
            rows = con.execute(
                "SELECT person_id FROM events WHERE ts <= ? GROUP BY person_id HAVING max(ts) < ?",
                [now, now - timedelta(days=t.days)],
            ).fetchall()
    return [int(r[0]) for r in rows]


def enter(session: Session, journey_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Enrol every person the trigger selects and who was never in this journey."""
    now = now or utcnow()
    j = _journey(session, journey_id)
    if j.status != "active":
        return {"journey_id": j.id, "entered": 0, "control": 0, "skipped": "paused"}
    d = _definition(j)
    people = _candidates(session, j, d, now)
    entered, control = _enrol(session, j, d, people, now)
    j.last_scan_at = now
    return {"journey_id": j.id, "candidates": len(people), "entered": entered, "control": control}


def enrol(
    session: Session, journey_id: int, person_ids: Sequence[int], now: datetime | None = None
) -> dict[str, Any]:
    """Enrol chosen persons (a list from the console, e.g. a funnel's drop-offs) into an active
    journey, beside its trigger: the same hold-out, and never twice (as `enter`)."""
    now = now or utcnow()
    j = _journey(session, journey_id)
    if j.status != "active":
        raise AutomationError(f"journey: {journey_id} is not active", 409, "journey_id")
    entered, control = _enrol(session, j, _definition(j), person_ids, now)
    return {"journey_id": j.id, "candidates": len(person_ids), "entered": entered, "control": control}


def _enrol(
    session: Session, j: Journey, d: JourneyDefinition, people: Sequence[int], now: datetime
) -> tuple[int, int]:
    insert = _insert(session)
    entered = control = 0
    for pid in people:
        held = in_control(j.id, pid, d.holdout_pct)
        stmt = (
            insert(JourneyEnrollment)
            .values(
                journey_id=j.id, person_id=pid, arm="control" if held else "treatment",
                status="held_out" if held else "active", step=0, version=0, next_at=now, entered_at=now,
                exit_reason="",
            )
            .on_conflict_do_nothing(index_elements=["journey_id", "person_id"])
            .returning(JourneyEnrollment.id)
        )  # fmt: skip
        if session.execute(stmt).first() is not None:
            entered += 1
            control += held
    return entered, control


# ------------------------------------------------------------------ advancing enrolments


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[object]) -> int:
    row = con.execute(sql, params).fetchone()
    return int(row[0]) if row else 0


def _condition(session: Session, e: JourneyEnrollment, cond: Condition) -> bool:
    if cond.tag is not None:
        return any(t.tag == cond.tag for t in tags.person_tags(session, e.person_id))
    with warehouse.connect(read_only=True) as con:
        n = _count(
            con,
            "SELECT count(*) FROM events WHERE person_id = ? AND event = ? AND ts >= ?",
            [e.person_id, cond.event, e.entered_at],
        )
        if cond.event == "order_paid" and not n:
            n = _count(
                con,
                "SELECT count(*) FROM orders WHERE person_id = ? AND status = 'paid' AND ts >= ?",
                [e.person_id, e.entered_at],
            )
    return n > 0


def _log(
    session: Session, e: JourneyEnrollment, step: int, a: Action, outcome: str, detail: str = ""
) -> None:
    session.add(
        JourneyAction(
            journey_id=e.journey_id, enrollment_id=e.id, person_id=e.person_id, step=step, action=a.type,
            channel=a.channel, outcome=outcome, detail=detail[:2000], at=utcnow(),
        )
    )  # fmt: skip


def _move(session: Session, e: JourneyEnrollment, **values: object) -> bool:
    """Conditional UPDATE on the version this worker read: False when another worker moved it first."""
    result = session.execute(
        update(JourneyEnrollment)
        .where(JourneyEnrollment.id == e.id, JourneyEnrollment.version == e.version)
        .values(version=e.version + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return rowcount(result) == 1


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """HMAC-SHA256 over `timestamp.body`, hex — the receiver recomputes it with the shared secret."""
    return hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def _send_webhook(a: Action, body: dict[str, Any], key: str) -> tuple[bool, str]:
    raw = json.dumps(body, ensure_ascii=False, sort_keys=True).encode()
    ts = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "X-Liebian-Timestamp": ts,
        "X-Liebian-Signature": "sha256=" + sign(a.secret or "", ts, raw),
        "Idempotency-Key": key,
    }
    try:
        urlguard.check_before_send(str(a.url), "action.url")  # again: the name may point elsewhere now
        r = httpx.post(str(a.url), content=raw, headers=headers, timeout=10)
    except urlguard.UnsafeURL as exc:
        return False, exc.message
    except httpx.HTTPError as exc:
        return False, f"{type(exc).__name__}: {exc}"
    return r.is_success, f"HTTP {r.status_code}"


def _mark(session: Session, e: JourneyEnrollment, a: Action) -> str:
    if a.name is None:  # unreachable: the schema requires a name on tag and campaign actions
        raise AutomationError(f"a {a.type} action needs a name", field="name")
    if a.type == "campaign":
        campaigns.get_campaign(session, a.name)  # raises when it does not exist
    stmt = (
        _insert(session)(JourneyMark)
        .values(kind=a.type, name=a.name, person_id=e.person_id, journey_id=e.journey_id, at=utcnow())
        .on_conflict_do_nothing(index_elements=["kind", "name", "person_id"])
    )
    session.execute(stmt)
    return f"{a.type} {a.name}"


def _advance_one(
    enrollment_id: int, d: JourneyDefinition, now: datetime, quiet: tuple[int, int] | None
) -> list[str]:
    outcomes: list[str] = []
    for _ in range(MAX_STEPS_PER_PASS):
        send: tuple[Action, dict[str, Any], str, int, int] | None = None
        with session_scope() as s:
            e = s.get(JourneyEnrollment, enrollment_id)
            if e is None or e.status != "active" or e.next_at > now:
                return outcomes
            if e.step >= len(d.steps):
                _move(s, e, status="done")
                return outcomes
            step = d.steps[e.step]
            if step.wait:
                _move(s, e, step=e.step + 1, next_at=now + timedelta(hours=step.wait.hours))
                return outcomes
            if step.branch:
                b = step.branch
                target = b.then if _condition(s, e, b.if_) else b.else_
                if target == "exit":
                    _move(s, e, status="done", exit_reason="branch")
                    return outcomes
                if not _move(s, e, step=e.step + 1 if target == "next" else target):
                    return outcomes
                continue
            a = step.action
            if a is None:  # unreachable: a step is a wait, a branch or an action (the schema checks)
                raise AutomationError(f"journey step {e.step} has nothing to do", field="steps")
            if not _has_consent(s, e.person_id):
                if _move(s, e, status="exited", exit_reason="no_consent"):
                    _log(s, e, e.step, a, "no_consent")
                    outcomes.append("no_consent")
                return outcomes
            if a.type != "webhook":
                try:
                    detail, outcome = _mark(s, e, a), "sent"
                except Exception as exc:  # e.g. the campaign was deleted: log it, go on
                    detail, outcome = getattr(exc, "message", None) or repr(exc), "failed"
                if _move(s, e, step=e.step + 1):
                    _log(s, e, e.step, a, outcome, detail)
                    outcomes.append(outcome)
                continue
            until = quiet_until(now, quiet)
            if until is not None:
                if _move(s, e, next_at=until):
                    _log(s, e, e.step, a, "quiet_hours", f"postponed to {until.isoformat()}")
                    outcomes.append("quiet_hours")
                return outcomes
            source = f"journey:{e.journey_id}:step:{e.step}"
            if not claim_contact(s, e.person_id, a.channel, source, now):
                if _move(s, e, step=e.step + 1):
                    _log(s, e, e.step, a, "capped")
                    outcomes.append("capped")
                continue
            if not _move(s, e, step=e.step + 1):
                s.rollback()  # another worker took this step: give the slot back
                return outcomes
            body = {
                "journey_id": e.journey_id, "person_id": e.person_id, "channel": a.channel,
                "step": e.step, "payload": a.payload, "sent_at": now.isoformat(),
            }  # fmt: skip
            send = (a, body, f"journey-{e.journey_id}-{e.id}-{e.step}", e.id, e.step)
        if send is None:  # unreachable: every other way through the block returns or continues
            return outcomes
        a, body, key, eid, step_no = send
        ok, detail = _send_webhook(a, body, key)
        with session_scope() as s:
            sent = s.get(JourneyEnrollment, eid)
            if sent is not None:  # not deleted while the webhook ran
                _log(s, sent, step_no, a, "sent" if ok else "failed", detail)
        outcomes.append("sent" if ok else "failed")
    return outcomes


def advance(journey_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Run every due step of every active enrolment of the journey (waits, branches, actions)."""
    now = now or utcnow()
    with session_scope() as s:
        j = _journey(s, journey_id)
        d = _definition(j)
        if j.status != "active":
            return {"journey_id": journey_id, "skipped": "paused"}
        quiet = quiet_hours(d.quiet_hours)
        due = list(
            s.scalars(
                select(JourneyEnrollment.id).where(
                    JourneyEnrollment.journey_id == journey_id,
                    JourneyEnrollment.status == "active",
                    JourneyEnrollment.next_at <= now,
                )
            )
        )
    counts: dict[str, int] = {}
    for eid in due:
        for outcome in _advance_one(eid, d, now, quiet):
            counts[outcome] = counts.get(outcome, 0) + 1
    return {"journey_id": journey_id, "due": len(due), "actions": counts}


def run(journey_id: int, now: datetime | None = None) -> dict[str, Any]:
    """One pass: enter new persons, then advance every due enrolment."""
    now = now or utcnow()
    with session_scope() as s:
        entered = enter(s, journey_id, now)
    return {**entered, **advance(journey_id, now)}


def run_all(now: datetime | None = None) -> list[dict[str, Any]]:
    with session_scope() as s:
        ids = list(s.scalars(select(Journey.id).where(Journey.status == "active").order_by(Journey.id)))
    out = []
    for jid in ids:
        try:
            out.append(run(jid, now))
        except Exception as exc:  # one journey's missing model or tag must not stop the others
            log.exception("journey %s failed", jid)
            out.append({"journey_id": jid, "error": getattr(exc, "message", None) or repr(exc)})
    return out


# ------------------------------------------------------------------ statistics


def stats(session: Session, journey_id: int, now: datetime | None = None) -> dict[str, Any]:
    """Entered, actioned and converted per arm; lift of the treatment over the held-out control."""
    return stats_many(session, [journey_id], now)[journey_id]


def stats_many(
    session: Session, journey_ids: list[int], now: datetime | None = None
) -> dict[int, dict[str, Any]]:
    """`stats` of several journeys with one query per table (the console lists them all)."""
    now = now or utcnow()
    journeys = {j.id: j for j in session.scalars(select(Journey).where(Journey.id.in_(journey_ids)))}
    for jid in journey_ids:
        if jid not in journeys:
            _journey(session, jid)  # raises: the journey does not exist
    defs = {jid: _definition(j) for jid, j in journeys.items()}
    rows = session.execute(
        select(JourneyEnrollment.id, JourneyEnrollment.journey_id, JourneyEnrollment.person_id,
               JourneyEnrollment.arm, JourneyEnrollment.entered_at)
        .where(JourneyEnrollment.journey_id.in_(journey_ids))
    ).all()  # fmt: skip
    actioned = set(
        session.scalars(
            select(JourneyAction.enrollment_id)
            .where(JourneyAction.journey_id.in_(journey_ids), JourneyAction.outcome == "sent")
            .distinct()
        )
    )
    outcomes: dict[int, dict[str, int]] = {jid: {} for jid in journey_ids}
    for jid, outcome, n in session.execute(
        select(JourneyAction.journey_id, JourneyAction.outcome, func.count())
        .where(JourneyAction.journey_id.in_(journey_ids))
        .group_by(JourneyAction.journey_id, JourneyAction.outcome)
    ).all():
        outcomes[jid][outcome] = n
    enr = pd.DataFrame(rows, columns=["id", "journey_id", "person_id", "arm", "entered_at"])
    converted: set[int] = set()
    if len(enr):
        # each enrolment's goal: its journey's event within its window (order_paid: paid orders too)
        enr["goal_event"] = enr["journey_id"].map(lambda j: defs[j].goal.event)
        enr["window_us"] = enr["journey_id"].map(lambda j: int(defs[j].goal.within_days * 86400 * 1_000_000))
        goals = sorted(set(enr["goal_event"]))
        goal_sql = f"SELECT person_id, ts, event FROM events WHERE event IN ({', '.join('?' * len(goals))})"
        if "order_paid" in goals:
            goal_sql += " UNION ALL SELECT person_id, ts, 'order_paid' FROM orders WHERE status = 'paid'"
        with warehouse.connect(read_only=True) as con:
            con.register("enr", enr[["id", "person_id", "entered_at", "goal_event", "window_us"]])
            found = con.execute(
                f"""
                SELECT DISTINCT enr.id FROM enr
                JOIN ({goal_sql}) g ON g.person_id = enr.person_id AND g.event = enr.goal_event
                WHERE g.ts >= enr.entered_at AND g.ts < enr.entered_at + to_microseconds(enr.window_us)
                  AND g.ts <= ?
                """,
                [*goals, now],
            ).fetchall()
            con.unregister("enr")
        converted = {int(r[0]) for r in found}
    out = {}
    for jid in journey_ids:
        d = defs[jid]
        mine = enr[enr.journey_id == jid] if len(enr) else enr
        arms = {}
        for arm in ("treatment", "control"):
            ids = [int(i) for i in mine.loc[mine.arm == arm, "id"]] if len(mine) else []
            conv = sum(i in converted for i in ids)
            arms[arm] = {
                "entered": len(ids),
                "actioned": sum(i in actioned for i in ids),
                "converted": conv,
                "conversion_rate": conv / len(ids) if ids else None,
            }
        rt, rc = arms["treatment"]["conversion_rate"], arms["control"]["conversion_rate"]
        out[jid] = {
            "journey_id": jid,
            "name": journeys[jid].name,
            "holdout_pct": d.holdout_pct,
            "goal": d.goal.model_dump(),
            "arms": arms,
            "outcomes": outcomes[jid],
            "uplift": None if rt is None or rc is None else rt - rc,
            "lift": None if rt is None or not rc else rt / rc - 1,
        }
    return out
