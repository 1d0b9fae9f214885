"""OneID registry on the real operational stores (SQLite and PostgreSQL) and the real warehouse."""

from __future__ import annotations

import random
import threading
from datetime import datetime, timedelta
from itertools import permutations

import pytest
from sqlalchemy import func, inspect, select, text

from liebian import ports
from liebian.db.session import get_engine, session_scope
from liebian.engine import warehouse
from liebian.identity import service
from liebian.identity.keys import IdentifierError, person_id_for, stored_value
from liebian.identity.models import Identifier, IdentityLink, Person, PersonMerge
from liebian.identity.service import LinkEvidence, RawIdentifier

PHONE = "13800001234"
CHAIN = [
    RawIdentifier("unionid", "oU_union_1"),
    RawIdentifier("openid", "oP_open_1"),
    RawIdentifier("phone", PHONE),
    RawIdentifier("external_userid", "wmExt_1"),
    RawIdentifier("douyin_openid", "dy_1"),
    RawIdentifier("device_id", "dev-aaaa-1"),
]


def chain_evidence() -> list[LinkEvidence]:
    return [LinkEvidence(a, b, source="test") for a, b in zip(CHAIN, CHAIN[1:], strict=False)]


def persons_of(session, items) -> dict:
    return service.lookup(session, [i.key for i in items])


def live_persons(session) -> set[int]:
    return set(session.scalars(select(Person.id).where(Person.merged_into.is_(None))))


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_chain_of_six_identifier_types_is_one_person_in_any_order(session, seed):
    evidence = chain_evidence()
    rng = random.Random(seed)
    rng.shuffle(evidence)
    # also swap sides: a link says nothing about direction
    evidence = [LinkEvidence(e.b, e.a, e.source) if rng.random() < 0.5 else e for e in evidence]
    report = service.link(session, evidence)

    found = persons_of(session, CHAIN)
    assert len(found) == 6
    assert len(set(found.values())) == 1
    # the survivor is the smallest of the ids the six identifiers founded
    expected = min(person_id_for(*i.key) for i in CHAIN)
    assert set(found.values()) == {expected}
    assert report.merged == 5 and report.already_same == 0 and report.conflicts == []
    assert live_persons(session) == {expected}
    # every other founded person is a tombstone pointing at the survivor
    tombstones = dict(
        session.execute(select(Person.id, Person.merged_into).where(Person.merged_into.is_not(None))).all()
    )
    assert set(tombstones.values()) == {expected}
    assert len(tombstones) == 5


@pytest.mark.parametrize("order", list(permutations(range(5)))[::17])
def test_chain_linked_one_piece_at_a_time_in_any_order(session, order):
    evidence = chain_evidence()
    for index in order:
        service.link(session, [evidence[index]])
    found = persons_of(session, CHAIN)
    assert set(found.values()) == {min(person_id_for(*i.key) for i in CHAIN)}
    merges = session.scalar(select(func.count()).select_from(PersonMerge))
    assert merges == 5  # every one of the six founded persons except the survivor merged exactly once


def test_phone_formats_are_one_identifier_and_never_stored_in_clear(session):
    union = RawIdentifier("unionid", "oU_phone_owner")
    service.link(
        session,
        [
            LinkEvidence(union, RawIdentifier("phone", "138 0000 1234")),
            LinkEvidence(union, RawIdentifier("PHONE", "+86 138-0000-1234")),
            LinkEvidence(RawIdentifier("phone", "0086 13800001234"), RawIdentifier("openid", "oP_x")),
        ],
    )
    phones = session.scalars(select(Identifier.id_value).where(Identifier.id_type == "phone")).all()
    assert phones == [stored_value("phone", PHONE)]
    assert service.find_person(session, "phone", "13800001234") == service.find_person(
        session, "unionid", "oU_phone_owner"
    )

    view = service.person_view(session, service.find_person(session, "openid", "oP_x"))
    shown = {(i["id_type"], i["value"]) for i in view.identifiers}
    assert ("phone", "138****1234") in shown
    assert {t for t, _ in shown} == {"unionid", "phone", "openid"}
    assert PHONE not in repr(view)

    # no table of the operational store holds the clear number in any column
    session.flush()
    for table in inspect(get_engine()).get_table_names():
        for row in session.execute(text(f"SELECT * FROM {table}")):
            assert all(PHONE not in str(v) for v in row), table


def test_two_unionids_reached_through_one_device_conflict_and_stay_apart(session):
    device = RawIdentifier("device_id", "shared-ipad")
    phone = RawIdentifier("phone", "13900005678")
    u1, u2 = RawIdentifier("unionid", "oU_alice"), RawIdentifier("unionid", "oU_bob")
    evidence = [LinkEvidence(u1, device), LinkEvidence(u2, device), LinkEvidence(device, phone)]
    results = []
    for seed in range(4):
        shuffled = evidence[:]
        random.Random(seed).shuffle(shuffled)
        with session_scope() as s:
            s.execute(PersonMerge.__table__.delete())
            s.execute(IdentityLink.__table__.delete())
            s.execute(Identifier.__table__.delete())
            s.execute(Person.__table__.delete())
        with session_scope() as s:
            report = service.link(s, shuffled)
        with session_scope() as s:
            found = persons_of(s, [u1, u2, device, phone])
            outcomes = sorted(s.scalars(select(IdentityLink.outcome)))
        assert len(report.conflicts) == 1
        assert "unionid" in report.conflicts[0]
        assert outcomes == ["conflict", "merged", "merged"]
        assert found[u1.key] != found[u2.key]
        results.append(found)
    # the same evidence in any order gives the same persons
    assert all(r == results[0] for r in results)
    # the device and the phone end with exactly one of the two unionids
    owner = results[0][device.key]
    assert results[0][phone.key] == owner
    assert owner in (results[0][u1.key], results[0][u2.key])


def test_earlier_evidence_wins_a_conflict(session):
    device = RawIdentifier("device_id", "shared-phone")
    u1, u2 = RawIdentifier("unionid", "oU_a"), RawIdentifier("unionid", "oU_z")
    t0 = datetime(2026, 5, 1)
    service.link(
        session,
        [
            LinkEvidence(u1, device, observed_at=t0 + timedelta(hours=1)),
            LinkEvidence(u2, device, observed_at=t0),
        ],
    )
    found = persons_of(session, [u1, u2, device])
    assert found[device.key] == found[u2.key] != found[u1.key]


def test_link_of_two_unionids_directly_is_a_conflict(session):
    report = service.link(
        session, [LinkEvidence(RawIdentifier("unionid", "u-1"), RawIdentifier("unionid", "u-2"))]
    )
    assert report.merged == 0 and len(report.conflicts) == 1
    link_row = session.scalars(select(IdentityLink)).one()
    assert link_row.outcome == "conflict" and "unionid" in link_row.detail


def test_repeated_evidence_is_already_same(session):
    ev = LinkEvidence(RawIdentifier("unionid", "u-r"), RawIdentifier("openid", "o-r"))
    first = service.link(session, [ev])
    second = service.link(session, [ev, LinkEvidence(ev.b, ev.a)])
    assert (first.merged, second.merged, second.already_same) == (1, 0, 2)


def test_survivor_is_smaller_id_and_merge_accepts_old_ids(session):
    a, b, c = (RawIdentifier("openid", f"o-{n}") for n in "abc")
    ids = service.resolve(session, [a, b, c])
    pa, pb, pc = ids[a.key], ids[b.key], ids[c.key]
    first = service.merge(session, pa, pb)
    assert first == min(pa, pb)
    loser = max(pa, pb)
    # merging through the tombstone id merges the person that now holds its identifiers
    second = service.merge(session, loser, pc)
    assert second == min(pa, pb, pc)
    assert set(persons_of(session, [a, b, c]).values()) == {second}
    assert service.merge(session, pa, pc) == second  # already one person
    assert service.current_person(session, loser) == second
    with pytest.raises(LookupError, match="no person 42"):
        service.merge(session, 42, pa)


def test_bad_identifiers_are_rejected_naming_the_field(session):
    with pytest.raises(IdentifierError, match="unknown id_type 'email'"):
        RawIdentifier("email", "a@b.c")
    with pytest.raises(IdentifierError, match="phone: not a phone number"):
        service.resolve(session, [RawIdentifier("phone", "n/a")])
    with pytest.raises(IdentifierError, match="openid: empty identifier value"):
        service.resolve(session, [RawIdentifier("openid", "   ")])
    with pytest.raises(IdentifierError, match="unionid: empty identifier value"):
        service.key_of("unionid", None)
    with pytest.raises(IdentifierError, match="longer than 128"):
        service.key_of("openid", "x" * 129)
    assert session.scalar(select(func.count()).select_from(Person)) == 0


def test_merge_keeps_every_warehouse_table_and_hooks_consistent(session):
    union, phone = RawIdentifier("unionid", "oU_wh"), RawIdentifier("phone", PHONE)
    friend = RawIdentifier("openid", "oP_friend")
    ids = service.resolve(session, [union, phone, friend])
    p_union, p_phone, p_friend = ids[union.key], ids[phone.key], ids[friend.key]
    now = datetime(2026, 6, 1, 12)
    with warehouse.connect() as con:
        assert service.sync_warehouse(session, con) == {"identifiers_added": 3, "merges_applied": 0}
        for n, (pid, uid) in enumerate([(p_union, "oU_wh"), (p_phone, "hmac"), (p_friend, "oP_friend")]):
            con.execute(
                "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, referrer_person_id,"
                " batch_id, ingested_at) VALUES (?, ?, ?, 'x', ?, 'signup', 'wecom', ?, 'b1', ?)",
                [f"e{n}", now, pid, uid, p_phone if pid == p_friend else None, now],
            )
            con.execute(
                "INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status,"
                " channel, status_ts, batch_id, ingested_at) VALUES (?, ?, ?, 'x', ?, 100, 'CNY', 'paid',"
                " 'wecom', ?, 'b1', ?)",
                [f"o{n}", now, pid, uid, now, now],
            )
            con.execute(
                "INSERT INTO messages (message_id, ts, group_id, person_id, id_type, user_id, channel, batch_id,"
                " ingested_at) VALUES (?, ?, 'g1', ?, 'x', ?, 'wecom', 'b1', ?)",
                [f"m{n}", now, pid, uid, now],
            )
        con.execute(
            "INSERT INTO referral_edges VALUES (?, ?, 'c1', 'wecom', ?, 'e2'), (?, ?, 'c1', 'wecom', ?, 'e0')",
            [p_phone, p_friend, now, p_friend, p_union, now],
        )

    seen: list[dict[int, int]] = []
    wiring = ports.current()
    spy = (lambda _s, mapping: seen.append(dict(mapping)),)
    with ports.use(wiring.with_(merge_followers=wiring.merge_followers + spy)):
        report = service.link(session, [LinkEvidence(union, phone, source="wecom-bind")])
    survivor, merged = min(p_union, p_phone), max(p_union, p_phone)
    assert report.merges == {merged: survivor}
    assert seen == [{merged: survivor}]

    with warehouse.connect() as con:
        assert service.sync_warehouse(session, con) == {"identifiers_added": 0, "merges_applied": 1}
        for table, column in service.PERSON_COLUMNS:
            values = {
                r[0]
                for r in con.execute(f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL").fetchall()
            }
            assert merged not in values, (table, column)
            assert values <= {survivor, p_friend}, (table, column)
        per_table = con.execute(
            "SELECT (SELECT count(DISTINCT person_id) FROM events), (SELECT count(*) FROM events"
            " WHERE person_id = ?), (SELECT count(*) FROM orders WHERE person_id = ?),"
            " (SELECT count(*) FROM messages WHERE person_id = ?)",
            [survivor, survivor, survivor],
        ).fetchone()
        assert per_table == (2, 2, 2, 2)
        edges = con.execute(
            "SELECT inviter_person_id, invitee_person_id FROM referral_edges ORDER BY event_id"
        ).fetchall()
        assert edges == [(p_friend, survivor), (survivor, p_friend)]
        idmap = dict(
            con.execute("SELECT id_value, person_id FROM identity_map WHERE id_type <> 'openid'").fetchall()
        )
        assert idmap == {"oU_wh": survivor, stored_value("phone", PHONE): survivor}

        # a row loaded later with the old id (say, by an import that resolved before the merge)
        # is corrected by the next sync that has merges to replay
        con.execute(
            "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id, ingested_at)"
            " VALUES ('late', ?, ?, 'x', 'u', 'view', 'wecom', 'b2', ?)",
            [now, merged, now],
        )
    other = RawIdentifier("openid", "oP_other")
    service.link(session, [LinkEvidence(friend, other)])
    with warehouse.connect() as con:
        assert service.sync_warehouse(session, con)["merges_applied"] == 1
        assert con.execute("SELECT person_id FROM events WHERE event_id = 'late'").fetchone()[0] == survivor
        assert con.execute("SELECT count(*) FROM identity_map").fetchone()[0] == 4
        # a sync with nothing new changes nothing
        assert service.sync_warehouse(session, con) == {"identifiers_added": 0, "merges_applied": 0}


def _run_threads(*targets) -> list:
    """Run the targets in threads released together; re-raise the first error."""
    barrier = threading.Barrier(len(targets))
    results, errors = [None] * len(targets), []

    def run(i: int) -> None:
        try:
            barrier.wait()
            results[i] = targets[i]()
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(targets))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    return results


def test_two_threads_resolving_the_same_new_identifiers_found_each_person_once(store):
    items = [RawIdentifier("openid", f"o-conc-{n}") for n in range(40)] + [RawIdentifier("phone", PHONE)]

    def work():
        with session_scope() as s:
            return service.resolve(s, items, source="thread")

    first, second = _run_threads(work, work)
    assert first == second
    assert len(set(first.values())) == len(items)
    with session_scope() as s:
        assert s.scalar(select(func.count()).select_from(Person)) == len(items)  # no orphans
        assert s.scalar(select(func.count()).select_from(Identifier)) == len(items)


def test_two_threads_linking_the_same_new_identifiers_end_with_one_person(store):
    evidence = chain_evidence()

    def work():
        with session_scope() as s:
            return service.link(s, evidence)

    reports = _run_threads(work, work)
    with session_scope() as s:
        found = persons_of(s, CHAIN)
        assert set(found.values()) == {min(person_id_for(*i.key) for i in CHAIN)}
        assert live_persons(s) == set(found.values())
        assert s.scalar(select(func.count()).select_from(Person)) == len(CHAIN)
        # one thread merged, the other saw the same evidence as already applied
        assert sorted(r.merged for r in reports) == [0, 5]


def test_two_threads_linking_overlapping_chains_end_with_one_person(store):
    left = chain_evidence()[:3]
    right = chain_evidence()[2:]

    def run_left():
        with session_scope() as s:
            return service.link(s, left)

    def run_right():
        with session_scope() as s:
            return service.link(s, right)

    _run_threads(run_left, run_right)
    with session_scope() as s:
        found = persons_of(s, CHAIN)
        survivor = min(person_id_for(*i.key) for i in CHAIN)
        assert set(found.values()) == {survivor}
        tombstones = set(s.scalars(select(Person.merged_into).where(Person.merged_into.is_not(None))))
        assert tombstones == {survivor}


def test_founding_an_identifier_another_transaction_just_founded_adds_no_person(session):
    # The race of two resolvers, made deterministic: the identifier was committed by someone else
    # after our lookup said it was new. No salted orphan person may appear.
    item = RawIdentifier("openid", "o-race")
    first = service.resolve(session, [item])
    service._found_persons(session, [item.key], {}, "late", datetime(2026, 1, 1))
    assert service.lookup(session, [item.key]) == first
    assert session.scalar(select(func.count()).select_from(Person)) == 1


def test_every_merge_is_logged_with_the_evidence_that_caused_it(session):
    service.link(session, chain_evidence() + [chain_evidence()[0]])  # one piece of evidence twice
    merges = session.execute(
        select(PersonMerge.link_id, PersonMerge.survivor_id, PersonMerge.merged_id)
    ).all()
    assert len(merges) == 5
    links = {row.id: row for row in session.scalars(select(IdentityLink))}
    assert sorted(row.outcome for row in links.values()) == ["already_same"] + ["merged"] * 5
    assert len({link_id for link_id, _, _ in merges}) == 5
    for link_id, survivor, merged in merges:
        evidence = links[link_id]
        assert evidence.outcome == "merged"
        assert survivor < merged


def test_sync_recovers_an_identifier_that_fell_below_the_watermark(session):
    items = [RawIdentifier("openid", f"o-wm-{n}") for n in range(3)]
    found = service.resolve(session, items)
    with warehouse.connect() as con:
        assert service.sync_warehouse(session, con)["identifiers_added"] == 3
        # as if the middle identifier had committed late, after the watermark passed it
        con.execute("DELETE FROM identity_map WHERE id_value = 'o-wm-1'")
        assert service.sync_warehouse(session, con)["identifiers_added"] == 1
        assert dict(con.execute("SELECT id_value, person_id FROM identity_map").fetchall()) == {
            i.raw: found[i.key] for i in items
        }
        assert service.sync_warehouse(session, con)["identifiers_added"] == 0
