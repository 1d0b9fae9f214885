"""The reward seal: every ledger entry (canonical form v2) commits to the reward row after it, so an
edit of any column of the `rewards` table is named by `verify_chain`; entries written before the
seal (v1) still verify, and are never re-sealed."""

from __future__ import annotations

import json
from datetime import datetime

import pytest
from rewards_helpers import grant, raw
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.rewards import ledger_hash, service
from liebian.rewards.chain import GENESIS
from liebian.rewards.models import Reward

# A different value for every column the seal covers (raw SQL, as someone with database access).
EDITS = {
    "campaign_id": "c-other",
    "person_id": 99,
    "reward_code": "coupon-500",
    "value_fen": 50000,
    "state": "approved",
    "reason": "CFO approved",
    "source_ref": "order-elsewhere",
    "hold_until": datetime(2030, 1, 1),
    "held_for_review": True,
    "idempotency_key": "some-other-key",
    "created_at": datetime(2020, 1, 1),
    "updated_at": datetime(2020, 1, 1),
}


def _latest_seq(reward_id: int) -> int:
    return raw("SELECT max(seq) FROM ledger_entries WHERE reward_id = :r", r=reward_id)[0][0]


def test_the_seal_covers_every_column_of_the_rewards_table():
    """A column added to `rewards` later must be sealed too (or this fails)."""
    columns = {c.name for c in Reward.__table__.columns} - {"id"}
    assert columns == set(ledger_hash.SEALED_FIELDS) == set(EDITS)


@pytest.mark.parametrize("column", sorted(EDITS))
def test_editing_any_column_of_a_reward_is_named_by_verify(ledger, column):
    rid = ledger["b"]  # granted, approved, revoked: three v2 entries
    with session_scope() as s:
        assert service.verify_chain(s).ok
    raw(f"UPDATE rewards SET {column} = :value WHERE id = :id", value=EDITS[column], id=rid)
    with session_scope() as s:
        result = service.verify_chain(s)
    assert not result.ok
    assert [(m["reward_id"], m["field"], m["seq"]) for m in result.projection_mismatches] == [
        (rid, column, _latest_seq(rid))
    ]
    assert f"reward {rid} {column}" in result.reason and f"entry {_latest_seq(rid)} says" in result.reason


def test_a_refund_after_a_source_ref_edit_is_caught_by_verify_first(store):
    """The reproduction: source_ref edited → the refund of the real order would miss the reward."""
    with session_scope() as s:
        r = grant(s, "g-refund", source_ref="order-1")
    raw("UPDATE rewards SET source_ref = 'order-2' WHERE id = :id", id=r.id)
    with session_scope() as s:
        result = service.verify_chain(s)
        assert not result.ok and result.projection_mismatches[0]["field"] == "source_ref"
        assert result.projection_mismatches[0]["expected"] == "order-1"
        assert result.projection_mismatches[0]["found"] == "order-2"
    out = CliRunner().invoke(cli_app, ["ledger", "verify"])
    assert out.exit_code == 1
    assert f"reward {r.id}: source_ref is 'order-2', entry 1 says 'order-1'" in out.output


def test_entries_carry_the_reward_after_them(store):
    with session_scope() as s:
        r = grant(s, "g-seal", held=True)
        service.set_review_hold(s, r.id, False, actor="risk", note="")
        service.transition(s, r.id, "approved", idempotency_key="ap", actor="op")
    with session_scope() as s:
        entries = service.entries(s, reward_id=r.id)
        assert [e["v"] for e in entries] == [2, 2, 2, 2]
        seals = [json.loads(e["reward_after"]) for e in entries]
        assert [(x["state"], x["held_for_review"]) for x in seals] == [
            ("pending", True),
            ("pending", True),
            ("pending", False),
            ("approved", False),
        ]
        assert service.verify_chain(s).ok


def _rewrite_as_v1() -> None:
    """What a database written before the seal looks like: every entry in canonical form v1,
    hashed with the real chain key (as the previous release did), the head on the last one."""
    with session_scope() as s:
        entries = service.entries(s, limit=10_000)
    prev = GENESIS
    for e in entries:
        e.update(v=1, reward_after=None, prev_hash=prev)
        e["hash"] = ledger_hash.entry_hash(e)
        raw(
            "UPDATE ledger_entries SET v = 1, reward_after = NULL, prev_hash = :p, hash = :h WHERE seq = :s",
            p=prev,
            h=e["hash"],
            s=e["seq"],
        )
        prev = e["hash"]
    raw("UPDATE ledger_head SET hash = :h", h=prev)


def test_a_v1_chain_still_verifies_and_new_entries_are_sealed(ledger):
    _rewrite_as_v1()
    with session_scope() as s:
        assert service.verify_chain(s).ok
    # what v1 entries carry is still checked (idempotency key and reason come from the grant entry)
    raw("UPDATE rewards SET reason = 'edited' WHERE id = :id", id=ledger["c"])
    with session_scope() as s:
        result = service.verify_chain(s)
    assert not result.ok and [m["field"] for m in result.projection_mismatches] == ["reason"]
    raw("UPDATE rewards SET reason = 'invited a friend who bought' WHERE id = :id", id=ledger["c"])
    # the next entry of a v1 reward is v2: from then on every column is sealed
    with session_scope() as s:
        r = grant(s, "g-new")
        service.transition(s, r.id, "approved", idempotency_key="new-ap", actor="op")
        assert [e["v"] for e in service.entries(s)][-3:] == [1, 2, 2]
        assert service.verify_chain(s).ok
    raw("UPDATE rewards SET hold_until = :t WHERE id = :id", t=datetime(2031, 1, 1), id=r.id)
    with session_scope() as s:
        result = service.verify_chain(s)
    assert not result.ok and [m["field"] for m in result.projection_mismatches] == ["hold_until"]


def test_the_version_and_the_seal_cannot_be_edited(ledger):
    # a v2 entry passed off as v1 (its seal dropped): the bytes differ, the HMAC does not match
    raw("UPDATE ledger_entries SET v = 1, reward_after = NULL WHERE seq = 4")
    with session_scope() as s:
        result = service.verify_chain(s)
    assert not result.ok and result.first_bad_seq == 4 and "hash does not match" in result.reason


def test_a_seal_edited_to_match_an_edited_row_is_found(ledger):
    rid = ledger["b"]
    seq = _latest_seq(rid)
    sealed = raw("SELECT reward_after FROM ledger_entries WHERE seq = :s", s=seq)[0][0]
    raw("UPDATE rewards SET source_ref = 'x' WHERE id = :id", id=rid)
    raw(
        "UPDATE ledger_entries SET reward_after = :a WHERE seq = :s",
        a=sealed.replace('"source_ref":"order-g-b"', '"source_ref":"x"'),
        s=seq,
    )
    with session_scope() as s:
        result = service.verify_chain(s)
    assert not result.ok and result.first_bad_seq == seq and "hash does not match" in result.reason


def test_a_seal_added_to_a_v1_entry_is_refused(ledger):
    _rewrite_as_v1()
    raw("UPDATE ledger_entries SET reward_after = '{}' WHERE seq = 2")
    with session_scope() as s:
        result = service.verify_chain(s)
    assert not result.ok and result.first_bad_seq == 2 and "v1 entry carries a reward seal" in result.reason
