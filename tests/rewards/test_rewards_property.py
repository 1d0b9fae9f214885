"""Stateful property test: random grants, transitions, clawbacks, holds and releases, with duplicates,
checked step by step against a plain model of the state machine."""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import datetime, timedelta

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test
from sqlalchemy import func, select

from liebian import ports
from liebian.db.base import Base
from liebian.db.session import get_engine, session_scope
from liebian.rewards import service, webhooks
from liebian.rewards.models import LedgerEntry, LedgerHead, Reward, WebhookDelivery, WebhookEndpoint
from liebian.rewards.service import LedgerError

LEDGER_MODELS = (Reward, LedgerEntry, LedgerHead, WebhookEndpoint, WebhookDelivery)
T0 = datetime(2026, 6, 18, 12, 0, 0)
TARGETS = ["approved", "issued", "redeemed", "rejected", "revoked"]
# The model's own copy of the state machine (from the issue), not the implementation's table.
TRANSITIONS = {
    "pending": {"approved", "rejected", "revoked"},
    "approved": {"issued", "rejected", "revoked"},
    "issued": {"redeemed", "revoked"},
    "redeemed": set(),
    "rejected": set(),
    "revoked": set(),
}
FORWARD = {"approved", "issued", "redeemed"}
FINAL = {"redeemed", "rejected", "revoked"}


def make_machine(db_dir):
    counter = itertools.count()

    class LedgerMachine(RuleBasedStateMachine):
        def __init__(self):
            super().__init__()
            # A fresh database per example: release_due acts on every reward, so examples must not share.
            self.url = f"sqlite:///{db_dir}/ledger-{next(counter)}.db"
            Base.metadata.create_all(get_engine(self.url), tables=[m.__table__ for m in LEDGER_MODELS])
            self.now = T0
            self.model: dict[int, dict] = {}  # reward id -> state, value, held, source, hold_until
            self.grant_params: dict[str, tuple] = {}
            self.grant_ids: dict[str, int] = {}
            self.done: dict[str, tuple[int, str]] = {}  # idempotency key -> (reward id, to_state)
            self.keys = itertools.count()

        def s(self):
            return session_scope(self.url)

        @rule(
            k=st.integers(0, 4),
            person=st.integers(1, 3),
            value=st.integers(0, 50_000),
            source=st.integers(0, 2),
            hold=st.one_of(st.none(), st.integers(-2, 4)),
            held=st.booleans(),
        )
        def grant(self, k, person, value, source, hold, held):
            key = f"g{k}"
            # a repeated key is a client retry: it carries the first call's values
            person, value, source, hold, held = self.grant_params.setdefault(
                key, (person, value, source, hold, held)
            )
            hold_until = None if hold is None else T0 + timedelta(hours=hold)
            with self.s() as s:
                view = service.grant(
                    s,
                    campaign_id="pm",
                    person_id=person,
                    reward_code="coupon",
                    value_fen=value,
                    reason="prop",
                    source_ref=f"order-{source}",
                    idempotency_key=key,
                    hold_until=hold_until,
                    held_for_review=held,
                )
            if key in self.grant_ids:
                assert view.id == self.grant_ids[key]
            else:
                assert view.id not in self.model
                self.grant_ids[key] = view.id
                self.model[view.id] = {
                    "state": "pending",
                    "value": value,
                    "held": held,
                    "source": f"order-{source}",
                    "hold_until": hold_until,
                }

        @rule(data=st.data(), to_state=st.sampled_from(TARGETS), reuse=st.booleans())
        def transition(self, data, to_state, reuse):
            if not self.model:
                return
            reward_id = data.draw(st.sampled_from(sorted(self.model)))
            if reuse and self.done:
                key = data.draw(st.sampled_from(sorted(self.done)))
            else:
                key = f"t{next(self.keys)}"
            m = self.model[reward_id]
            if key in self.done:
                expected = None if self.done[key] == (reward_id, to_state) else "idempotency_conflict"
            elif to_state not in TRANSITIONS[m["state"]]:
                expected = "illegal_transition"
            elif to_state in FORWARD and m["held"]:
                expected = "held_for_review"
            else:
                expected = "ok"
            try:
                with self.s() as s:
                    view = service.transition(s, reward_id, to_state, idempotency_key=key, actor="prop")
            except LedgerError as exc:
                assert exc.code == expected, (exc.code, expected)
                return
            assert expected in (None, "ok"), expected
            if expected == "ok":
                m["state"] = to_state
                self.done[key] = (reward_id, to_state)
            assert view.state == m["state"]

        @rule(source=st.integers(0, 2), k=st.integers(0, 3))
        def revoke_source(self, source, k):
            key = f"v{k}"  # small range: repeats are retries of the same refund
            src = f"order-{source}"
            expected = []
            for rid in sorted(r for r, m in self.model.items() if m["source"] == src):
                per = f"{key}:{rid}"
                if per in self.done:
                    expected.append(rid)
                elif self.model[rid]["state"] in ("pending", "approved", "issued"):
                    expected.append(rid)
                    self.model[rid]["state"] = "revoked"
                    self.done[per] = (rid, "revoked")
            with self.s() as s:
                got = service.revoke_for_source(s, src, idempotency_key=key, actor="refund", note="refund")
            assert [v.id for v in got] == expected
            assert all(v.state == "revoked" for v in got)

        @rule(data=st.data(), held=st.booleans())
        def review_hold(self, data, held):
            if not self.model:
                return
            reward_id = data.draw(st.sampled_from(sorted(self.model)))
            m = self.model[reward_id]
            try:
                with self.s() as s:
                    service.set_review_hold(s, reward_id, held, actor="reviewer", note="")
            except LedgerError as exc:
                assert exc.code == "illegal_transition" and m["state"] in FINAL and m["held"] != held
                return
            m["held"] = held

        @rule(hours=st.integers(0, 3))
        def release(self, hours):
            self.now += timedelta(hours=hours)
            due = [
                rid
                for rid, m in self.model.items()
                if m["state"] == "pending"
                and not m["held"]
                and (m["hold_until"] is None or m["hold_until"] <= self.now)
            ]
            with self.s() as s:
                assert service.release_due(s, self.now) == len(due)
            for rid in due:
                self.model[rid]["state"] = "approved"

        @invariant()
        def ledger_invariants(self):
            expected: Counter = Counter()
            counts: Counter = Counter()
            for m in self.model.values():
                expected[m["state"]] += m["value"]
                counts[m["state"]] += 1
            with self.s() as s:
                # the state machine was respected: the database agrees with the model
                states = {r.id: r.state for r in service.list_rewards(s, limit=10_000)}
                assert states == {rid: m["state"] for rid, m in self.model.items()}
                assert (s.execute(select(func.min(Reward.value_fen))).scalar() or 0) >= 0
                # no double issue, one grant per reward
                rows = s.execute(select(LedgerEntry.reward_id, LedgerEntry.kind, LedgerEntry.to_state)).all()
                issued = Counter(rid for rid, kind, to in rows if kind == "transition" and to == "issued")
                grants = Counter(rid for rid, kind, _ in rows if kind == "grant")
                assert max(issued.values(), default=0) <= 1
                assert set(grants.values()) <= {1} and set(grants) == set(self.model)
                # balances (from the entries) equal the model's sums
                got = service.balances(s, "campaign", "pm")
                assert {b["state"]: b["value_fen"] for b in got} == {
                    k: v for k, v in expected.items() if counts[k]
                }
                assert {b["state"]: b["rewards"] for b in got} == dict(counts)
                assert all(b["value_fen"] >= 0 for b in got)
                # the chain verifies
                result = service.verify_chain(s)
                assert result.ok, result

    return LedgerMachine


@pytest.mark.filterwarnings("ignore")
def test_ledger_state_machine(data_dir, tmp_path, wiring):
    machine = make_machine(tmp_path)
    # The ledger alone (its tables only): of its subscribers, only the webhook outbox is in this store.
    ledger_only = wiring.with_(ledger_subscribers=(webhooks.enqueue_for_entry,))
    with ports.use(ledger_only):
        _run(machine)


def _run(machine) -> None:
    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=30,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
        ),
    )
