"""The points ledger (积分): earn, spend, expire (FIFO), revoke, adjust, balances, idempotency,
concurrency and tamper evidence — on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from rewards_helpers import raw

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.identity.service import RawIdentifier
from liebian.rewards import points
from liebian.rewards.points import PointsError


def _earn(s, key: str, person_id: int = 1, pts: int = 100, **kw):
    return points.earn(
        s, person_id=person_id, points=pts, reason="test", idempotency_key=key, actor="op", **kw
    )


def _spend(s, key: str, person_id: int = 1, pts: int = 10, **kw):
    return points.spend(
        s, person_id=person_id, points=pts, reason="gift", idempotency_key=key, actor="pos", **kw
    )


def test_earn_spend_balance_and_history(store):
    with session_scope() as s:
        first = _earn(s, "e1", pts=100, campaign_id="c1", source_ref="order:c1:o1")
        assert (first.kind, first.delta, first.balance_after, first.duplicate) == ("earn", 100, 100, False)
        assert first.expires_at == first.ts + timedelta(days=365)
        _earn(s, "e2", pts=50)
        spent = _spend(s, "s1", pts=120)
        assert (spent.delta, spent.balance_after) == (-120, 30)
    with session_scope() as s:
        assert points.balance(s, 1)["balance"] == 30
        assert points.balance(s, 2)["balance"] == 0
        assert [(e.kind, e.delta, e.balance_after) for e in points.history(s, 1)] == [
            ("spend", -120, 30),
            ("earn", 50, 150),
            ("earn", 100, 100),
        ]
        assert points.verify(s).ok


def test_spend_beyond_the_balance_is_refused_and_writes_nothing(store):
    with session_scope() as s:
        _earn(s, "e1", pts=40)
    with pytest.raises(PointsError) as err, session_scope() as s:
        _spend(s, "s1", pts=41)
    assert (err.value.code, err.value.status) == ("insufficient_points", 409)
    assert "40" in err.value.message and "41" in err.value.message
    assert "积分不足" in err.value.message_zh
    with session_scope() as s:
        assert points.balance(s, 1)["balance"] == 40
        assert [e.kind for e in points.history(s, 1)] == ["earn"]
        # the refused key is free: the same spend within the balance goes through
        assert _spend(s, "s1", pts=40).balance_after == 0


def test_idempotent_repeats_and_conflicts(store):
    with session_scope() as s:
        e = _earn(s, "e1", pts=100)
        again = _earn(s, "e1", pts=100)
        assert again.seq == e.seq and again.duplicate and again.balance_after == 100
        sp = _spend(s, "s1", pts=30)
        assert _spend(s, "s1", pts=30).seq == sp.seq
        assert points.balance(s, 1)["balance"] == 70
    for call in (
        lambda s: _earn(s, "e1", pts=99),  # same key, other amount
        lambda s: _earn(s, "e1", person_id=2, pts=100),  # other person
        lambda s: _spend(s, "e1", pts=100),  # an earn's key used for a spend
        lambda s: _spend(s, "s1", pts=31),
    ):
        with pytest.raises(PointsError) as err, session_scope() as s:
            call(s)
        assert (err.value.code, err.value.status) == ("idempotency_conflict", 409)
    with session_scope() as s:
        assert points.balance(s, 1)["balance"] == 70 and len(points.history(s, 1)) == 2


def test_bad_input_is_a_422_naming_each_field(store):
    with pytest.raises(PointsError) as err, session_scope() as s:
        points.earn(s, person_id="x", points=0, reason="r", idempotency_key="", actor="")  # type: ignore[arg-type]
    assert err.value.status == 422
    for name in ("person_id", "points", "idempotency_key", "actor"):
        assert name in err.value.message
    with pytest.raises(PointsError) as err, session_scope() as s:
        _spend(s, "neg", pts=-5)
    assert err.value.status == 422 and "points" in err.value.message
    with pytest.raises(PointsError) as err, session_scope() as s:
        points.adjust(s, person_id=1, delta=5, reason=" ", idempotency_key="a", actor="op")
    assert err.value.status == 422 and "reason" in err.value.message


def test_expiry_is_fifo_and_the_job_records_it(store):
    t0 = utcnow() - timedelta(days=400)
    with session_scope() as s:
        _earn(s, "old", pts=100, now=t0)  # expires at t0 + 365 d: 35 days ago
        _earn(s, "mid", pts=60, now=t0 + timedelta(days=100))  # expires in 65 days
        _earn(s, "new", pts=40)  # expires in 365 days
        # the lapsed lot counts for nothing even before the job has run
        assert points.balance(s, 1)["balance"] == 100
        spent = _spend(s, "s1", pts=70)  # takes 60 from "mid" (expires first), then 10 from "new"
        assert spent.balance_after == 30
        [left] = points.balance(s, 1)["expiring"]  # what is left is of the lot that expires last
        assert left["points"] == 30 and left["expires_at"] > utcnow() + timedelta(days=300)
    with session_scope() as s:
        assert points.expire_due(s, utcnow()) == 1
        assert points.expire_due(s, utcnow()) == 0  # nothing twice
        expired = points.history(s, 1)[0]
        assert (expired.kind, expired.delta, expired.actor) == ("expire", -100, "system:expire")
        assert points.balance(s, 1)["balance"] == 30
        assert points.verify(s).ok
    with session_scope() as s:  # a year on, the rest lapses too
        assert points.expire_due(s, utcnow() + timedelta(days=366)) == 1
        assert points.balance(s, 1, utcnow() + timedelta(days=366))["balance"] == 0
        assert points.verify(s).ok


def test_points_expire_job_is_wired(store, wiring):
    with session_scope() as s:
        _earn(s, "old", pts=5, now=utcnow() - timedelta(days=366))
    assert wiring.job("points-expire").func() == {"expired_lots": 1}
    with session_scope() as s:
        assert points.history(s, 1)[0].kind == "expire"


def test_adjust_up_and_down(store):
    with session_scope() as s:
        up = points.adjust(s, person_id=3, delta=25, reason="goodwill", idempotency_key="a1", actor="op")
        assert (up.kind, up.delta, up.expires_at is not None) == ("adjust", 25, True)
        down = points.adjust(s, person_id=3, delta=-20, reason="typo", idempotency_key="a2", actor="op")
        assert (down.delta, down.balance_after) == (-20, 5)
    with pytest.raises(PointsError) as err, session_scope() as s:
        points.adjust(s, person_id=3, delta=-6, reason="too much", idempotency_key="a3", actor="op")
    assert err.value.code == "insufficient_points"


def test_revoke_takes_back_what_the_source_earned_never_below_zero(store):
    with session_scope() as s:
        _earn(s, "e1", pts=100, source_ref="order:c1:o1", campaign_id="c1")
        _earn(s, "e2", pts=30)
        _spend(s, "s1", pts=110)  # 100 from the first lot, 10 from the second (FIFO)
        [revoked] = points.revoke_source(
            s, "order:c1:o1", idempotency_key="r1", actor="refund", reason="refund"
        )
        assert (revoked.kind, revoked.delta, revoked.balance_after) == ("revoke", -20, 0)
        assert "80 of 100 points already spent" in revoked.reason
        assert points.revoke_source(s, "order:c1:o1", idempotency_key="r1", actor="refund", reason="refund")[
            0
        ].duplicate
        assert points.revoke_source(s, "order:c1:o1", idempotency_key="r2", actor="x", reason="again") == []
        assert points.revoke_source(s, "order:none", idempotency_key="r3", actor="x", reason="none") == []
        assert points.verify(s).ok


def test_balances_gather_merged_persons(store):
    with session_scope() as s:
        ids = identity.resolve(s, [RawIdentifier("openid", "o-a"), RawIdentifier("unionid", "u-b")])
        a, b = sorted(ids.values())
        _earn(s, "ea", person_id=a, pts=10)
        _earn(s, "eb", person_id=b, pts=15)
        assert points.balance(s, a)["balance"] == 10
        identity.merge(s, a, b)
    with session_scope() as s:
        assert points.balance(s, a)["balance"] == points.balance(s, b)["balance"] == 25
        assert _spend(s, "s", person_id=b, pts=25).balance_after == 0
        assert points.balance(s, a)["balance"] == 0
        assert points.verify(s).ok


def _threads(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            with session_scope() as s:
                results[i] = fn(s, i)
        except PointsError as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_spends_never_overdraw_and_retries_return_the_first_result(store):
    with session_scope() as s:
        _earn(s, "e", person_id=7, pts=100)
    # 20 threads spend 10 each from a balance of 100, on 10 keys: each key twice at once
    results = _threads(20, lambda s, i: _spend(s, f"k{i % 10}", person_id=7, pts=10))
    by_key: dict[str, set[int]] = {}
    for i, r in enumerate(results):
        assert not isinstance(r, Exception), r
        by_key.setdefault(f"k{i % 10}", set()).add(r.seq)
    assert all(len(seqs) == 1 for seqs in by_key.values())  # a key's two calls: one entry
    with session_scope() as s:
        assert points.balance(s, 7)["balance"] == 0
    # now 20 more spenders race for an empty purse of 15: exactly one wins
    with session_scope() as s:
        _earn(s, "e2", person_id=7, pts=15)
    results = _threads(20, lambda s, i: _spend(s, f"more{i}", person_id=7, pts=10))
    won = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, Exception)]
    assert len(won) == 1 and {e.code for e in refused} == {"insufficient_points"}
    # each retry of a settled key returns the first result
    retry = _threads(5, lambda s, i: _spend(s, "k3", person_id=7, pts=10))
    assert {r.seq for r in retry} == by_key["k3"] and all(r.duplicate for r in retry)
    with session_scope() as s:
        assert points.balance(s, 7)["balance"] == 5
        assert min(e.balance_after for e in points.history(s, 7, limit=1000)) >= 0
        result = points.verify(s)
        assert result.ok and result.entries_checked == 13


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("UPDATE points_entries SET delta = 1000 WHERE seq = 1", "hash does not match"),
        ("UPDATE points_entries SET person_id = 2 WHERE seq = 2", "hash does not match"),
        ("UPDATE points_entries SET reason = 'x' WHERE seq = 3", "hash does not match"),
        ("DELETE FROM points_entries WHERE seq = 2", "missing"),
        ("UPDATE points_lots SET remaining = 100 WHERE earn_seq = 1", "points_lots disagrees"),
        ("UPDATE points_head SET seq = 2", "head"),
    ],
)
def test_verify_detects_tampering(store, sql, reason):
    with session_scope() as s:
        _earn(s, "e1", pts=100)
        _earn(s, "e2", pts=50)
        _spend(s, "s1", pts=120)
        assert points.verify(s).ok
    raw(sql)
    with session_scope() as s:
        result = points.verify(s)
    assert not result.ok and reason in result.reason
