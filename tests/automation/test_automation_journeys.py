"""Journeys end to end on the real stores (SQLite and PostgreSQL) with a real webhook receiver:
triggers, waits, branches, the cross-channel cap under concurrency, quiet hours, consent, hold-out."""

from __future__ import annotations

import threading
from datetime import datetime, timedelta

import pytest
from automation_helpers import SECRET, add_events, make_persons, set_consent, webhook

from liebian.automation import service
from liebian.automation.models import JourneyAction, JourneyEnrollment
from liebian.db.base import utcnow
from liebian.db.session import session_scope

# 04:00 UTC = 12:00 in Asia/Shanghai: outside the default quiet hours (21–9)
NOON = datetime(2026, 11, 2, 4, 0)


def _journey(name: str, definition: dict) -> int:
    with session_scope() as s:
        return service.create_journey(s, name, definition).id


def _enrollments(journey_id: int) -> dict[int, JourneyEnrollment]:
    with session_scope() as s:
        rows = s.query(JourneyEnrollment).filter_by(journey_id=journey_id).all()
        return {e.person_id: e for e in rows}


def test_silence_trigger_wait_branch_and_actions(store, receiver):
    a, b, c = make_persons(3)
    add_events([(a, "page_view", NOON - timedelta(days=20)), (b, "page_view", NOON - timedelta(days=16)),
                (c, "page_view", NOON - timedelta(days=1))])  # fmt: skip
    jid = _journey(
        "wake-up",
        {
            "trigger": {"type": "silence", "days": 14},
            "steps": [
                webhook(receiver.url, "sms"),
                {"wait": {"hours": 24}},
                {"branch": {"if": {"event": "order_paid"}, "then": "exit", "else": "next"}},
                webhook(receiver.url, "wecom"),
            ],
            "holdout_pct": 0,
        },
    )
    first = service.run(jid, NOON)
    assert first["entered"] == 2 and first["candidates"] == 2  # c was active yesterday: not silent
    assert receiver.persons("/sms") == sorted([a, b]) and receiver.bad_signatures == 0
    assert all(r["channel"] == "sms" and r["step"] == 0 for r in receiver.received)

    # b buys during the wait; nothing happens before the wait is over
    add_events([(b, "order_paid", NOON + timedelta(hours=3))])
    assert service.run(jid, NOON + timedelta(hours=23))["actions"] == {}
    assert len(receiver.received) == 2

    after = service.run(jid, NOON + timedelta(hours=25))  # next day: the cap window has turned
    assert after["actions"] == {"sent": 1}
    assert receiver.persons("/wecom") == [a]  # b bought: the branch took b out
    e = _enrollments(jid)
    assert e[a].status == "done" and e[b].status == "done" and e[b].exit_reason == "branch"
    # entering is once per person: c going silent later enters, a and b never again
    add_events([(a, "page_view", NOON + timedelta(days=2))])
    later = service.run(jid, NOON + timedelta(days=16))
    assert later["entered"] == 1 and set(_enrollments(jid)) == {a, b, c}


def test_event_trigger_only_sees_new_events(store, receiver):
    (p,) = make_persons(1)
    jid = _journey(
        "welcome",
        {"trigger": {"type": "event", "event": "signup", "lookback_hours": 2},
         "steps": [webhook(receiver.url, "coupon")], "holdout_pct": 0},
    )  # fmt: skip
    add_events([(p, "signup", NOON - timedelta(hours=5))])  # before the look-back window
    assert service.run(jid, NOON)["entered"] == 0
    add_events([(p, "signup", NOON + timedelta(minutes=30))])
    assert service.run(jid, NOON + timedelta(hours=1))["entered"] == 1
    assert receiver.persons("/coupon") == [p]


def test_frequency_cap_holds_across_channels_under_concurrency(store):
    (p,) = make_persons(1)
    results: list[bool] = []
    barrier = threading.Barrier(8)

    def claim(channel: str) -> None:
        barrier.wait()
        with session_scope() as s:
            results.append(service.claim_contact(s, p, channel, "test", NOON, cap=1, window_days=1))

    threads = [threading.Thread(target=claim, args=(ch,)) for ch in ["sms", "wecom", "coupon", "email"] * 2]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * 7 + [True]  # one contact across every channel
    # a cap of 3 admits exactly 3 of 8 concurrent claims the next day
    results.clear()
    barrier = threading.Barrier(8)

    def claim3(channel: str) -> None:
        barrier.wait()
        with session_scope() as s:
            results.append(
                service.claim_contact(s, p, channel, "t", NOON + timedelta(days=1), cap=3, window_days=1)
            )

    threads = [threading.Thread(target=claim3, args=(f"ch{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results.count(True) == 3
    with session_scope() as s:
        assert len(service.contacts(s, p)) == 4


def test_two_journeys_and_two_workers_contact_a_person_once(store, receiver):
    people = make_persons(5)
    add_events([(p, "signup", NOON - timedelta(minutes=10)) for p in people])
    trigger = {"type": "event", "event": "signup", "lookback_hours": 1}
    j1 = _journey(
        "sms-journey", {"trigger": trigger, "steps": [webhook(receiver.url, "sms")], "holdout_pct": 0}
    )
    j2 = _journey(
        "wecom-journey", {"trigger": trigger, "steps": [webhook(receiver.url, "wecom")], "holdout_pct": 0}
    )
    for jid in (j1, j2):
        with session_scope() as s:
            service.enter(s, jid, NOON)
    barrier = threading.Barrier(4)
    errors: list[BaseException] = []

    def worker(jid: int) -> None:
        barrier.wait()
        try:
            service.advance(jid, NOON)
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(j,)) for j in (j1, j2, j1, j2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert receiver.persons() == sorted(people)  # each person reached exactly once, on one channel
    with session_scope() as s:
        outcomes = [a.outcome for a in s.query(JourneyAction).all()]
    assert outcomes.count("sent") == 5 and outcomes.count("capped") == 5


def test_withdrawn_consent_stops_actions_and_no_consent_never_starts(store, receiver):
    a, b = make_persons(2)
    (c,) = make_persons(1, consent=False, prefix="nc")
    add_events([(p, "signup", NOON - timedelta(minutes=5)) for p in (a, b, c)])
    jid = _journey(
        "two-touch",
        {"trigger": {"type": "event", "event": "signup"},
         "steps": [webhook(receiver.url, "sms"), {"wait": {"hours": 48}}, webhook(receiver.url, "wecom")],
         "holdout_pct": 0},
    )  # fmt: skip
    service.run(jid, NOON)
    assert receiver.persons("/sms") == sorted([a, b])  # c never consented
    set_consent(b, False)  # b withdraws during the wait
    service.run(jid, NOON + timedelta(hours=49))
    assert receiver.persons("/wecom") == [a]
    e = _enrollments(jid)
    assert e[b].status == "exited" and e[b].exit_reason == "no_consent"
    assert e[c].status == "exited" and e[c].exit_reason == "no_consent"


def test_quiet_hours_postpone_the_action_to_their_end(store, receiver):
    (p,) = make_persons(1)
    night = datetime(2026, 11, 2, 15, 0)  # 23:00 in Shanghai
    add_events([(p, "signup", night - timedelta(minutes=5))])
    jid = _journey(
        "night", {"trigger": {"type": "event", "event": "signup"}, "steps": [webhook(receiver.url, "sms")],
                  "holdout_pct": 0},
    )  # fmt: skip
    assert service.run(jid, night)["actions"] == {"quiet_hours": 1}
    assert receiver.received == []
    assert _enrollments(jid)[p].next_at == datetime(2026, 11, 3, 1, 0)  # 09:00 Shanghai
    assert service.run(jid, datetime(2026, 11, 3, 0, 59))["actions"] == {}
    assert service.run(jid, datetime(2026, 11, 3, 1, 0))["actions"] == {"sent": 1}
    assert receiver.persons() == [p]


def test_holdout_is_deterministic_never_contacted_and_lift_is_against_it(store, receiver):
    people = make_persons(120)
    add_events([(p, "signup", NOON - timedelta(minutes=5)) for p in people])
    jid = _journey(
        "holdout",
        {"trigger": {"type": "event", "event": "signup"}, "steps": [webhook(receiver.url, "coupon")],
         "holdout_pct": 25, "goal": {"event": "order_paid", "within_days": 7}},
    )  # fmt: skip
    service.run(jid, NOON)
    control = {p for p in people if service.in_control(jid, p, 25)}
    assert 15 <= len(control) <= 45  # about a quarter
    e = _enrollments(jid)
    assert {p for p, x in e.items() if x.arm == "control"} == control
    assert set(receiver.persons()) == set(people) - control  # the control group is never contacted
    # conversions: every 2nd treated person, every 4th control person; one too late to count
    treated = sorted(set(people) - control)
    ctrl = sorted(control)
    buyers_t, buyers_c = treated[::2], ctrl[::4]
    add_events([(p, "order_paid", NOON + timedelta(days=1)) for p in buyers_t + buyers_c])
    add_events([(treated[1], "order_paid", NOON + timedelta(days=9))])  # outside the 7-day goal window
    with session_scope() as s:
        st = service.stats(s, jid, NOON + timedelta(days=10))
    t, c = st["arms"]["treatment"], st["arms"]["control"]
    assert (t["entered"], c["entered"]) == (len(treated), len(ctrl))
    assert (t["actioned"], c["actioned"]) == (len(treated), 0)
    assert (t["converted"], c["converted"]) == (len(buyers_t), len(buyers_c))
    rt, rc = len(buyers_t) / len(treated), len(buyers_c) / len(ctrl)
    assert st["lift"] == pytest.approx(rt / rc - 1)
    assert st["uplift"] == pytest.approx(rt - rc)


def test_bad_definitions_are_refused_with_the_field(store):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="goto 7 is not a step index"):
        _journey("bad", {"trigger": {"type": "silence", "days": 3},
                         "steps": [{"branch": {"if": {"event": "x"}, "then": 7}}]})  # fmt: skip
    with pytest.raises(ValidationError, match="needs url, channel and secret"):
        _journey(
            "bad", {"trigger": {"type": "silence", "days": 3}, "steps": [{"action": {"type": "webhook"}}]}
        )
    with pytest.raises(service.AutomationError, match="quiet_hours"):
        _journey("bad", {"trigger": {"type": "silence", "days": 3}, "quiet_hours": "25-3",
                         "steps": [{"action": {"type": "tag", "name": "x"}}]})  # fmt: skip
    assert len(SECRET) >= 16


def test_the_journeys_job_isolates_a_failing_journey(store, receiver):
    from liebian.jobs import run_job

    (p,) = make_persons(1)
    add_events([(p, "signup", utcnow() - timedelta(minutes=5))])
    broken = _journey(
        "no-such-tag",
        {"trigger": {"type": "segment", "tag": "nope"}, "steps": [webhook(receiver.url, "sms")]},
    )
    ok = _journey("ok", {"trigger": {"type": "event", "event": "signup"}, "steps": [webhook(receiver.url, "sms")],
                         "holdout_pct": 0, "quiet_hours": ""})  # fmt: skip
    results = {r["journey_id"]: r for r in run_job("journeys")}
    assert "nope" in results[broken]["error"]
    assert results[ok]["entered"] == 1 and receiver.persons() == [p]


def test_tag_and_campaign_actions_mark_once_and_a_missing_campaign_fails_cleanly(store):
    from liebian.automation.models import JourneyMark
    from liebian.campaigns import service as campaigns

    a, b = make_persons(2)
    add_events([(p, "signup", NOON - timedelta(minutes=5)) for p in (a, b)])
    with session_scope() as s:
        cid = campaigns.create_campaign(
            s, {"title": "春季邀友有礼", "rules_text": "邀请好友得奖励", "per_inviter_cap": 3, "per_device_cap": 2,
                "budget_fen": 100000, "hold_days": 7, "claim_window_days": 7, "collects": ["phone"],
                "consent_step": True, "regions": ["east"], "type": "double_sided",
                "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500}},
            campaign_id="spring",
        )["id"]  # fmt: skip
    steps = [{"action": {"type": "tag", "name": "welcomed"}}, {"action": {"type": "campaign", "name": cid}},
             {"action": {"type": "campaign", "name": "gone"}}]  # fmt: skip
    jid = _journey(
        "marks", {"trigger": {"type": "event", "event": "signup"}, "steps": steps, "holdout_pct": 0}
    )
    assert service.run(jid, NOON)["actions"] == {"sent": 4, "failed": 2}
    with session_scope() as s:
        marks = sorted((m.kind, m.name, m.person_id) for m in s.query(JourneyMark).all())
        failed = [x.detail for x in s.query(JourneyAction).filter_by(outcome="failed").all()]
    assert marks == sorted(
        [("tag", "welcomed", a), ("tag", "welcomed", b), ("campaign", cid, a), ("campaign", cid, b)]
    )
    assert all("gone" in d for d in failed)
    assert {e.status for e in _enrollments(jid).values()} == {"done"}
