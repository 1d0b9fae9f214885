"""Each link does its work through the wiring, in the caller's transaction: identity merges reach the
merge followers, ledger entries reach the ledger subscribers (fakes installed with `ports.use`)."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from liebian import ports
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.identity.models import Person
from liebian.rewards import service as rewards
from liebian.rewards.models import Reward


def _persons(session, *uids: str) -> list[int]:
    found = identity.resolve(session, [identity.RawIdentifier("unionid", u) for u in uids])
    return [found[identity.key_of("unionid", u)] for u in uids]


def test_a_merge_calls_every_wired_follower_in_its_transaction(store: str) -> None:
    calls: list[tuple[str, dict[int, int]]] = []

    def first(session, final: dict[int, int]) -> None:
        # the merge is visible to the follower: same transaction
        merged = next(iter(final))
        assert session.scalar(select(Person.merged_into).where(Person.id == merged)) == final[merged]
        calls.append(("first", dict(final)))

    def second(_session, final: dict[int, int]) -> None:
        calls.append(("second", dict(final)))

    union, phone = identity.RawIdentifier("unionid", "m-c"), identity.RawIdentifier("phone", "13800000001")
    with session_scope() as s:
        a, b = _persons(s, "m-a", "m-b")
        found = identity.resolve(s, [union, phone])
        c, d = found[union.key], found[phone.key]
    with ports.use(ports.current().with_(merge_followers=(first, second))), session_scope() as s:
        survivor = identity.merge(s, a, b)  # an operator's merge
        report = identity.link(s, [identity.LinkEvidence(union, phone)])  # evidence
    assert survivor == min(a, b)
    both = {max(c, d): min(c, d)}
    assert report.merges == both
    assert calls == [
        ("first", {max(a, b): min(a, b)}),
        ("second", {max(a, b): min(a, b)}),
        ("first", both),
        ("second", both),
    ]


def test_a_failing_follower_undoes_the_merge(store: str) -> None:
    def refuse(_session, _final) -> None:
        raise RuntimeError("follower refused")

    with session_scope() as s:
        a, b = _persons(s, "f-a", "f-b")
    refusing = ports.use(ports.current().with_(merge_followers=(refuse,)))
    with refusing, pytest.raises(RuntimeError, match="follower refused"), session_scope() as s:
        identity.merge(s, a, b)
    with session_scope() as s:
        assert identity.current_person(s, max(a, b)) == max(a, b)


def test_every_ledger_entry_reaches_the_subscribers_in_its_transaction(store: str) -> None:
    seen: list[tuple[int, str, str | None, str, int]] = []

    def subscriber(session, entry: dict, reward: dict) -> None:
        # same transaction: the reward row the entry is about is visible, in the entry's state
        state = session.scalar(select(Reward.state).where(Reward.id == reward["id"]))
        assert state == entry["to_state"] == reward["state"]
        seen.append(
            (entry["seq"], entry["kind"], entry["from_state"], entry["to_state"], entry["amount_fen"])
        )

    with ports.use(ports.current().with_(ledger_subscribers=(subscriber,))):
        with session_scope() as s:
            view = rewards.grant(s, campaign_id="c1", person_id=7, reward_code="R", value_fen=300, reason="test",
                                 source_ref="o-1", idempotency_key="g-1", hold_until=None, held_for_review=True)  # fmt: skip
        with session_scope() as s:
            rewards.set_review_hold(s, view.id, False, actor="test", note="cleared")
            rewards.transition(s, view.id, "approved", idempotency_key="a-1", actor="test")
            rewards.transition(
                s, view.id, "approved", idempotency_key="a-1", actor="test"
            )  # repeat: no entry
    assert seen == [
        (1, "grant", None, "pending", 300),
        (2, "hold", "pending", "pending", 0),
        (3, "unhold", "pending", "pending", 0),
        (4, "transition", "pending", "approved", 300),
    ]
    with session_scope() as s:
        assert [e["seq"] for e in rewards.entries(s)] == [1, 2, 3, 4]


def test_a_failing_subscriber_undoes_the_entry(store: str) -> None:
    def refuse(_session, _entry, _reward) -> None:
        raise RuntimeError("subscriber refused")

    refusing = ports.use(ports.current().with_(ledger_subscribers=(refuse,)))
    with refusing, pytest.raises(RuntimeError, match="subscriber refused"), session_scope() as s:
        rewards.grant(s, campaign_id="c1", person_id=7, reward_code="R", value_fen=300, reason="",
                      source_ref="o-1", idempotency_key="g-1", hold_until=None)  # fmt: skip
    with session_scope() as s:
        assert rewards.list_rewards(s) == [] and rewards.entries(s) == []
        assert rewards.verify_chain(s).ok
