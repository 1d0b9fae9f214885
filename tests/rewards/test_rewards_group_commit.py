"""Group commit of ledger appends: many threads appending at once end up in few transactions, the
chain verifies, each grant appears once, and a refused grant does not take its group with it."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy import func, select

from liebian.db.session import session_scope
from liebian.rewards import service
from liebian.rewards.group_commit import GroupCommitter
from liebian.rewards.models import LedgerEntry, Reward

THREADS = 8
PER_THREAD = 25


def _grant(c: GroupCommitter, key: str, person_id: int, value_fen: int = 500) -> service.RewardView:
    return c.grant(
        campaign_id="c1",
        person_id=person_id,
        reward_code="coupon-5",
        value_fen=value_fen,
        reason="invited a friend who bought",
        source_ref=f"order-{key}",
        idempotency_key=key,
        hold_until=None,
    )


def _in_threads(work) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def run(t: int) -> None:
        start.wait()
        try:
            work(t)
        except BaseException as exc:  # collected: an assertion in a thread would be lost
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(t,)) for t in range(THREADS)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return errors


def test_concurrent_appenders_share_transactions_and_the_chain_verifies(store):
    c = GroupCommitter()
    views: dict[str, service.RewardView] = {}
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(PER_THREAD):
            key = f"g-{t}-{i}"
            view = _grant(c, key, person_id=t + 1)
            again = _grant(c, key, person_id=t + 1)  # a retry of the same grant: the same reward
            assert again.id == view.id
            with lock:
                views[key] = view

    assert _in_threads(work) == []
    total = THREADS * PER_THREAD
    assert len(views) == total and len({v.id for v in views.values()}) == total
    with session_scope() as s:
        result = service.verify_chain(s)
        assert result.ok, result
        assert result.entries_checked == total  # the retries wrote nothing
        keys = s.scalars(select(Reward.idempotency_key)).all()
        assert sorted(keys) == sorted(views)
        assert s.scalar(select(func.count()).select_from(LedgerEntry)) == total
    # the appends were grouped: fewer transactions than appends (2 per grant: the grant and its retry)
    assert c.groups < 2 * total


def test_a_refused_grant_does_not_lose_the_others_of_its_group(store):
    c = GroupCommitter()
    with session_scope() as s:  # a key already used with other values: that grant will be refused
        service.grant(s, campaign_id="c1", person_id=99, reward_code="coupon-5", value_fen=100, reason="",
                      source_ref="order-taken", idempotency_key="taken", hold_until=None)  # fmt: skip
    refused: list[str] = []
    lock = threading.Lock()

    def work(t: int) -> None:
        for i in range(PER_THREAD):
            if i % 5 == 0:
                with pytest.raises(service.LedgerError) as caught:
                    _grant(c, "taken", person_id=t + 1, value_fen=999)
                with lock:
                    refused.append(caught.value.code)
            else:
                _grant(c, f"ok-{t}-{i}", person_id=t + 1)

    assert _in_threads(work) == []
    assert set(refused) == {"idempotency_conflict"} and len(refused) == THREADS * PER_THREAD // 5
    with session_scope() as s:
        assert service.verify_chain(s).ok
        granted = s.scalars(select(Reward.idempotency_key).where(Reward.idempotency_key != "taken")).all()
        assert len(granted) == THREADS * PER_THREAD * 4 // 5
        taken = s.execute(select(Reward.value_fen).where(Reward.idempotency_key == "taken")).scalars().all()
        assert taken == [100]  # the refused grants changed nothing


def test_a_failing_operation_is_rolled_back_alone(store):
    """An operation that fails after writing (here: after its grant) leaves nothing behind."""
    c = GroupCommitter()

    def grant_then_fail(s):
        service.grant(s, campaign_id="c1", person_id=5, reward_code="coupon-5", value_fen=100, reason="",
                      source_ref="order-x", idempotency_key="half-done", hold_until=None)  # fmt: skip
        raise RuntimeError("the caller's own check failed")

    with pytest.raises(RuntimeError):
        c.submit(grant_then_fail)
    ok = _grant(c, "after", person_id=5)
    with session_scope() as s:
        assert s.scalars(select(Reward.idempotency_key)).all() == ["after"]
        result = service.verify_chain(s)
        assert result.ok and result.entries_checked == 1
        assert s.get(Reward, ok.id) is not None
