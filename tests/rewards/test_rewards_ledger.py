"""The ledger's state machine, idempotency, concurrency, balances and tamper evidence."""

from __future__ import annotations

import hashlib
import threading
from collections import Counter
from datetime import timedelta

import pytest
from rewards_helpers import grant, raw

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.rewards import ledger_hash, service
from liebian.rewards.service import LedgerError


def test_happy_path_and_entries(store):
    with session_scope() as s:
        r = grant(s, "g1", value_fen=1200)
        assert r.state == "pending" and r.value_fen == 1200
        for to in ("approved", "issued", "redeemed"):
            assert service.transition(s, r.id, to, idempotency_key=f"k-{to}", actor="op").state == to
    with session_scope() as s:
        moves = [(e["kind"], e["from_state"], e["to_state"], e["amount_fen"]) for e in service.entries(s)]
        assert moves == [
            ("grant", None, "pending", 1200),
            ("transition", "pending", "approved", 1200),
            ("transition", "approved", "issued", 1200),
            ("transition", "issued", "redeemed", 1200),
        ]
        assert service.verify_chain(s).ok


@pytest.mark.parametrize(
    ("path", "illegal"),
    [
        ([], "issued"),  # pending cannot skip approval
        ([], "redeemed"),
        (["approved"], "approved"),  # no self-transition
        (["approved", "issued"], "rejected"),  # issued can only be revoked or redeemed
        (["approved", "issued", "redeemed"], "revoked"),  # redeemed is final
        (["rejected"], "approved"),
        (["revoked"], "approved"),
    ],
)
def test_illegal_transitions_are_refused_and_write_nothing(sqlite_store, path, illegal):
    with session_scope() as s:
        r = grant(s, "g1")
        for i, to in enumerate(path):
            service.transition(s, r.id, to, idempotency_key=f"p{i}", actor="op")
    with session_scope() as s, pytest.raises(LedgerError) as err:
        service.transition(s, r.id, illegal, idempotency_key="bad", actor="op")
    assert err.value.code == "illegal_transition" and err.value.status == 409
    assert f"cannot become {illegal}" in err.value.message
    with session_scope() as s:
        assert len(service.entries(s)) == 1 + len(path)
        assert service.get_reward(s, r.id).state == (path[-1] if path else "pending")


def test_bad_input_names_the_field(sqlite_store):
    with session_scope() as s:
        with pytest.raises(LedgerError) as err:
            service.grant(
                s,
                campaign_id="c",
                person_id=1,
                reward_code="x",
                value_fen=-5,
                reason="",
                source_ref="o",
                idempotency_key="k",
                hold_until=None,
            )
        assert err.value.status == 422 and "value_fen" in err.value.message
        with pytest.raises(LedgerError) as err:
            service.transition(s, 999, "approved", idempotency_key="k", actor="op")
        assert err.value.code == "not_found" and "reward 999" in err.value.message
        with pytest.raises(LedgerError) as err:
            service.transition(s, 1, "pending", idempotency_key="k", actor="op")
        assert "to_state" in err.value.message
        with pytest.raises(LedgerError, match="idempotency_key"):
            grant(s, "")
    with session_scope() as s:
        assert service.entries(s) == []


def test_idempotency(sqlite_store):
    with session_scope() as s:
        first = grant(s, "g1")
        again = grant(s, "g1")
        assert again == first
        with pytest.raises(LedgerError) as err:  # the same key with other values is not a retry
            grant(s, "g1", value_fen=999)
        assert err.value.code == "idempotency_conflict"
        a1 = service.transition(s, first.id, "approved", idempotency_key="t1", actor="op")
        a2 = service.transition(s, first.id, "approved", idempotency_key="t1", actor="op")
        assert a1.state == a2.state == "approved"
        other = grant(s, "g2")
        with pytest.raises(LedgerError) as err:  # the key belongs to another reward's transition
            service.transition(s, other.id, "approved", idempotency_key="t1", actor="op")
        assert err.value.code == "idempotency_conflict"
    with session_scope() as s:
        assert [e["idempotency_key"] for e in service.entries(s)] == ["g1", "t1", "g2"]


def _run_threads(n: int, fn) -> list:
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def worker(i: int) -> None:
        barrier.wait()
        try:
            with session_scope() as s:
                results[i] = fn(s, i)
        except LedgerError as exc:
            results[i] = exc

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_duplicate_transition_writes_one_entry(store):
    with session_scope() as s:
        r = grant(s, "g1")
    results = _run_threads(
        50, lambda s, i: service.transition(s, r.id, "approved", idempotency_key="approve-1", actor=f"op{i}")
    )
    assert all(not isinstance(x, Exception) and x.state == "approved" for x in results), results
    with session_scope() as s:
        kinds = Counter((e["kind"], e["to_state"]) for e in service.entries(s))
        assert kinds == {("grant", "pending"): 1, ("transition", "approved"): 1}
        assert service.verify_chain(s).ok


def test_concurrent_issue_with_different_keys_issues_once(store):
    with session_scope() as s:
        r = grant(s, "g1")
        service.transition(s, r.id, "approved", idempotency_key="a", actor="op")
    results = _run_threads(
        50, lambda s, i: service.transition(s, r.id, "issued", idempotency_key=f"issue-{i}", actor="op")
    )
    ok = [x for x in results if not isinstance(x, Exception)]
    refused = [x for x in results if isinstance(x, LedgerError)]
    assert len(ok) == 1 and len(refused) == 49
    assert {x.code for x in refused} == {"illegal_transition"}
    with session_scope() as s:
        assert sum(e["to_state"] == "issued" for e in service.entries(s)) == 1


def test_concurrent_duplicate_grants_and_mixed_writers_keep_the_chain_linear(store):
    def work(s, i):
        # half the threads grant the same reward, the others grant their own
        key = "same" if i % 2 else f"own-{i}"
        return grant(s, key, person_id=0 if i % 2 else i)

    results = _run_threads(40, work)
    assert all(not isinstance(x, Exception) for x in results), results
    assert len({x.id for x in results[1::2]}) == 1
    with session_scope() as s:
        assert len(service.list_rewards(s)) == 21
        result = service.verify_chain(s)
        assert result.ok and result.entries_checked == 21


def test_revoke_for_source_claws_back_non_final_rewards(sqlite_store):
    with session_scope() as s:
        inviter = grant(s, "inv", person_id=1, source_ref="order-9")
        friend = grant(s, "fr", person_id=2, source_ref="order-9")
        spent = grant(s, "spent", person_id=3, source_ref="order-9")
        other = grant(s, "other", person_id=1, source_ref="order-10")
        service.transition(s, friend.id, "approved", idempotency_key="f1", actor="op")
        service.transition(s, friend.id, "issued", idempotency_key="f2", actor="op")
        for i, to in enumerate(("approved", "issued", "redeemed")):
            service.transition(s, spent.id, to, idempotency_key=f"s{i}", actor="op")
    with session_scope() as s:
        revoked = service.revoke_for_source(
            s, "order-9", idempotency_key="refund-9", actor="refund", note="refunded"
        )
        assert [(r.id, r.state) for r in revoked] == [(inviter.id, "revoked"), (friend.id, "revoked")]
    with session_scope() as s:
        count = len(service.entries(s))
        again = service.revoke_for_source(
            s, "order-9", idempotency_key="refund-9", actor="refund", note="refunded"
        )
        assert [r.id for r in again] == [inviter.id, friend.id]
        assert len(service.entries(s)) == count
        assert service.get_reward(s, spent.id).state == "redeemed"
        assert service.get_reward(s, other.id).state == "pending"


def test_release_due_respects_hold_period_and_review_hold(sqlite_store):
    now = utcnow()
    with session_scope() as s:
        due = grant(s, "due", hold_until=now - timedelta(minutes=1))
        later = grant(s, "later", hold_until=now + timedelta(days=7))
        held = grant(s, "held", hold_until=now - timedelta(minutes=1), held=True)
        no_hold = grant(s, "nohold")
    with session_scope() as s:
        assert service.release_due(s, now) == 2
        assert service.release_due(s, now) == 0
        states = {r.id: r.state for r in service.list_rewards(s)}
        assert states == {due.id: "approved", later.id: "pending", held.id: "pending", no_hold.id: "approved"}
        with pytest.raises(LedgerError) as err:
            service.transition(s, held.id, "approved", idempotency_key="x", actor="op")
        assert err.value.code == "held_for_review"
        service.set_review_hold(s, held.id, False, actor="reviewer", note="looks fine")
        assert service.release_due(s, now + timedelta(days=8)) == 2
        assert {r.state for r in service.list_rewards(s)} == {"approved"}
        kinds = [e["kind"] for e in service.entries(s, reward_id=held.id)]
        assert kinds == ["grant", "hold", "unhold", "transition"]
        assert service.verify_chain(s).ok


def test_balances_equal_independent_sums(store):
    with session_scope() as s:
        rewards = [
            grant(s, f"g{i}", person_id=i % 3, value_fen=100 * (i + 1), campaign_id=f"c{i % 2}")
            for i in range(9)
        ]
        plan = ["approved", "issued", "redeemed", "rejected", "revoked"]
        for i, r in enumerate(rewards):
            path = {
                0: [],
                1: plan[:1],
                2: plan[:2],
                3: plan[:3],
                4: ["rejected"],
                5: ["approved", "revoked"],
            }[i % 6]
            for j, to in enumerate(path):
                service.transition(s, r.id, to, idempotency_key=f"r{r.id}-{j}", actor="op")
    with session_scope() as s:
        for by, column in (("person", "person_id"), ("campaign", "campaign_id")):
            expected = {
                (str(g), st): (v, n)
                for g, st, v, n in raw(
                    f"SELECT {column}, state, SUM(value_fen), COUNT(*) FROM rewards GROUP BY {column}, state"
                )
            }
            got = {(str(b[by]), b["state"]): (b["value_fen"], b["rewards"]) for b in service.balances(s, by)}
            assert got == expected
        one = service.balances(s, "person", 1)
        assert {b["person"] for b in one} == {1}


# --- tamper evidence: an attacker with SQL access but without the key ---------------------------


def _verify():
    with session_scope() as s:
        return service.verify_chain(s)


def test_untampered_ledger_verifies(ledger):
    result = _verify()
    assert result.ok and result.entries_checked == 9 and result.head_seq == 9 and result.first_bad_seq is None


def test_edit_is_found(ledger):
    raw("UPDATE ledger_entries SET amount_fen = 99999 WHERE seq = 4")
    result = _verify()
    assert not result.ok and result.first_bad_seq == 4 and "edited" in result.reason


def test_edit_of_actor_is_found(ledger):
    raw("UPDATE ledger_entries SET actor = 'someone-else' WHERE seq = 7")
    assert _verify().first_bad_seq == 7


def test_delete_is_found(ledger):
    raw("DELETE FROM ledger_entries WHERE seq = 5")
    result = _verify()
    assert not result.ok and result.first_bad_seq == 5 and "missing" in result.reason


def test_delete_with_renumbering_is_found(ledger):
    raw("DELETE FROM ledger_entries WHERE seq = 5")
    for seq in range(6, 10):
        raw("UPDATE ledger_entries SET seq = :new WHERE seq = :old", new=seq - 1, old=seq)
    raw("UPDATE ledger_head SET seq = 8")
    result = _verify()
    assert not result.ok and result.first_bad_seq == 5


def test_delete_of_the_last_entry_is_found(ledger):
    raw("DELETE FROM ledger_entries WHERE seq = 9")
    result = _verify()
    assert not result.ok and result.first_bad_seq == 9 and "truncated" in result.reason


def test_insert_is_found(ledger):
    # Make room at seq 4 and insert a forged entry linked to entry 3, hashed without the key.
    for seq in range(9, 3, -1):
        raw("UPDATE ledger_entries SET seq = :new WHERE seq = :old", new=seq + 1, old=seq)
    prev = raw("SELECT hash FROM ledger_entries WHERE seq = 3")[0][0]
    forged = {
        "seq": 4,
        "reward_id": ledger["c"],
        "kind": "transition",
        "from_state": "pending",
        "to_state": "approved",
        "amount_fen": 300,
        "campaign_id": "c2",
        "person_id": 1,
        "actor": "op",
        "note": "",
        "ts": utcnow(),
        "idempotency_key": "forged",
        "prev_hash": prev,
    }
    forged["hash"] = hashlib.sha256(ledger_hash.canonical(forged)).hexdigest()
    raw(
        "INSERT INTO ledger_entries (seq, reward_id, kind, from_state, to_state, amount_fen, campaign_id, person_id,"
        " actor, note, ts, idempotency_key, prev_hash, hash) VALUES (:seq, :reward_id, :kind, :from_state,"
        " :to_state, :amount_fen, :campaign_id, :person_id, :actor, :note, :ts, :idempotency_key, :prev_hash,"
        " :hash)",
        **forged,
    )
    raw("UPDATE ledger_head SET seq = 10")
    result = _verify()
    assert not result.ok and result.first_bad_seq == 4 and "forged" in result.reason


def test_append_outside_the_ledger_is_found(ledger):
    last = raw("SELECT hash FROM ledger_entries WHERE seq = 9")[0][0]
    raw(
        "INSERT INTO ledger_entries (seq, reward_id, kind, from_state, to_state, amount_fen, campaign_id, person_id,"
        " actor, note, ts, idempotency_key, prev_hash, hash) VALUES (10, :rid, 'transition', 'approved', 'issued',"
        " 800, 'c1', 2, 'op', '', :ts, 'sneaky', :prev, :h)",
        rid=ledger["b"],
        ts=utcnow(),
        prev=last,
        h="0" * 64,
    )
    result = _verify()
    assert not result.ok and result.first_bad_seq == 10


def test_reorder_is_found(ledger):
    raw("UPDATE ledger_entries SET seq = -1 WHERE seq = 6")
    raw("UPDATE ledger_entries SET seq = 6 WHERE seq = 7")
    raw("UPDATE ledger_entries SET seq = 7 WHERE seq = -1")
    result = _verify()
    assert not result.ok and result.first_bad_seq == 6 and "reordered" in result.reason


def test_editing_the_rewards_table_is_found(ledger):
    raw("UPDATE rewards SET state = 'approved' WHERE id = :id", id=ledger["c"])
    result = _verify()
    assert not result.ok and result.first_bad_seq is None
    assert result.projection_mismatches == [
        {"reward_id": ledger["c"], "field": "state", "expected": "rejected", "found": "approved", "seq": 7}
    ]
    assert f"reward {ledger['c']}" in result.reason


def test_ledger_keeps_working_after_verify(ledger):
    with session_scope() as s:
        r = grant(s, "after")
        service.transition(s, r.id, "approved", idempotency_key="after-a", actor="op")
    result = _verify()
    assert result.ok and result.entries_checked == 11


class _Undo(Exception):
    """Rolls a savepoint back in the test below."""


def test_savepoints_and_rollbacks_keep_the_head_row_on_the_last_entry(store):
    """A savepoint rolled back drops its entries and leaves the head on the outer transaction's last
    entry; one released keeps both; the chain verifies after each kind."""
    with session_scope() as s:
        kept = [grant(s, "outer-1").id]
        with pytest.raises(_Undo), s.begin_nested():
            grant(s, "undone-1")
            raise _Undo
        with s.begin_nested():
            kept.append(grant(s, "nested-kept").id)
            with pytest.raises(_Undo), s.begin_nested():
                grant(s, "undone-2")
                raise _Undo
        kept.append(grant(s, "outer-2").id)
        with s.begin_nested():  # a savepoint without ledger writes changes nothing
            pass
        kept.append(grant(s, "outer-3").id)
        assert service.verify_chain(s).ok  # inside the transaction too
        kept.append(grant(s, "outer-4").id)
    with pytest.raises(_Undo), session_scope() as s:
        grant(s, "rolled-back")
        raise _Undo
    with session_scope() as s:
        kept.append(grant(s, "after").id)
        entries = service.entries(s)
        assert [e["reward_id"] for e in entries] == kept  # one grant entry each, in order
        assert [r.id for r in service.list_rewards(s)] == kept
        result = service.verify_chain(s)
        assert result.ok and result.entries_checked == len(kept) == 6
    assert raw("SELECT seq, hash FROM ledger_head") == [(entries[-1]["seq"], entries[-1]["hash"])]


def _asks(*keys: str, held: tuple[str, ...] = ()) -> list[dict]:
    return [
        {
            "campaign_id": "c1",
            "person_id": i + 1,
            "reward_code": "coupon-5",
            "value_fen": 500,
            "reason": "invited a friend who bought",
            "source_ref": f"order-{key}",
            "idempotency_key": key,
            "hold_until": None,
            "held_for_review": key in held,
        }
        for i, key in enumerate(keys)
    ]


def test_grant_all_writes_what_grants_one_by_one_write(store):
    """The rewards of one qualification granted together: the same rewards, entries (a hold entry
    after its grant), chain and replays as `grant` called for each in turn."""
    with session_scope() as s:
        made = service.grant_all(s, _asks("b1", "b2", "b3", held=("b2",)))
    assert [(r.person_id, r.source_ref) for r in made] == [
        (1, "order-b1"),
        (2, "order-b2"),
        (3, "order-b3"),
    ]
    assert [r.held_for_review for r in made] == [False, True, False]
    with session_scope() as s:
        written = [(e["reward_id"], e["kind"], e["idempotency_key"]) for e in service.entries(s)]
        assert written == [
            (made[0].id, "grant", "b1"),
            (made[1].id, "grant", "b2"),
            (made[1].id, "hold", "b2:hold"),
            (made[2].id, "grant", "b3"),
        ]
        assert service.verify_chain(s).ok
        # a retry, alone or beside a new key, returns the same rewards and writes them once
        assert service.grant_all(s, _asks("b1", "b2", "b3", held=("b2",))) == made
        again = service.grant_all(s, _asks("b1", "b4"))
        assert again[0] == made[0] and again[1].source_ref == "order-b4"
        with pytest.raises(LedgerError) as err:  # a used key with other values is no retry
            service.grant_all(s, [*_asks("b5"), {**_asks("b1")[0], "value_fen": 999}])
        assert err.value.code == "idempotency_conflict"
    with session_scope() as s:  # b4, and b5 granted before the conflict (as one by one)
        keys = [e["idempotency_key"] for e in service.entries(s)]
        assert keys == ["b1", "b2", "b2:hold", "b3", "b4", "b5"]
        assert service.verify_chain(s).ok
