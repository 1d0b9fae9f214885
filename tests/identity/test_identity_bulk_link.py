"""link() of thousands of pairs: new identifiers founded through the staging table, links and the
merge log copied in bulk, merges applied through a temporary table — on SQLite and PostgreSQL,
with the same persons, links and merge log the pair-by-pair rules give."""

from __future__ import annotations

from sqlalchemy import func, select

from liebian import ports
from liebian.identity import service
from liebian.identity.keys import person_id_for, stored_value
from liebian.identity.models import Identifier, IdentityLink, Person, PersonMerge
from liebian.identity.service import LinkEvidence, RawIdentifier

# Above both thresholds: staged founding (new identifiers) and the merge_map path (merges).
PAIRS = max(service.STAGE_THRESHOLD, service.MERGE_TABLE_THRESHOLD) + 200


def test_bulk_link_merges_every_pair_like_the_rules_say(session):
    # Pairs device_id ~ phone (no singular type: nothing conflicts), plus a chain joining every third pair to the next through an openid.
    evidence = [
        LinkEvidence(
            RawIdentifier("device_id", f"d{i}"), RawIdentifier("phone", f"138{i:08d}"), source="bulk"
        )
        for i in range(PAIRS)
    ]
    chained = [
        LinkEvidence(
            RawIdentifier("phone", f"138{i:08d}"), RawIdentifier("openid", f"o{i // 3}"), source="bulk"
        )
        for i in range(PAIRS)
        if i % 3 != 2
    ]
    with ports.use(ports.Wiring()):
        report = service.link(session, evidence + chained)
    session.commit()

    # Independently: each group is the pairs i with the same i // 3 when i % 3 != 2, else alone;
    # a group's survivor is the smallest founding id among its identifiers.
    groups: dict[tuple, set[int]] = {}
    for i in range(PAIRS):
        group = ("g", i // 3) if i % 3 != 2 else ("alone", i)
        ids = groups.setdefault(group, set())
        ids.add(person_id_for("device_id", f"d{i}"))
        ids.add(person_id_for("phone", stored_value("phone", f"138{i:08d}")))
        if group[0] == "g":
            ids.add(person_id_for("openid", f"o{i // 3}"))
    expected_merges = sum(len(ids) - 1 for ids in groups.values())
    assert report.merged == expected_merges
    assert report.already_same == 0 and not report.conflicts
    for i in range(PAIRS):
        group = ("g", i // 3) if i % 3 != 2 else ("alone", i)
        found = service.lookup(
            session, [("device_id", f"d{i}"), ("phone", stored_value("phone", f"138{i:08d}"))]
        )
        assert set(found.values()) == {min(groups[group])}, i

    # The registry: one identifier row per identifier, live persons one per group, every other a tombstone
    # pointing at its group's survivor; phones only as HMAC with a ciphertext and a masked display.
    identifiers = session.scalar(select(func.count()).select_from(Identifier))
    assert identifiers == 2 * PAIRS + len({i // 3 for i in range(PAIRS) if i % 3 != 2})
    live = set(session.scalars(select(Person.id).where(Person.merged_into.is_(None))))
    assert live == {min(ids) for ids in groups.values()}
    survivor_of = {pid: min(ids) for ids in groups.values() for pid in ids}
    for pid, merged_into in session.execute(
        select(Person.id, Person.merged_into).where(Person.merged_into.is_not(None))
    ):
        assert merged_into == survivor_of[pid]
    phones = session.execute(
        select(Identifier.id_value, Identifier.encrypted_value, Identifier.display).where(
            Identifier.id_type == "phone"
        )
    ).all()
    assert {p.id_value for p in phones} == {stored_value("phone", f"138{i:08d}") for i in range(PAIRS)}
    clear = {f"138{i:08d}" for i in range(PAIRS)}
    assert all(p.encrypted_value and p.encrypted_value not in clear and "****" in p.display for p in phones)

    # Every link recorded once; every merge logged with the link that caused it.
    links = {row.id: row for row in session.scalars(select(IdentityLink))}
    assert len(links) == len(evidence) + len(chained)
    merges = session.execute(
        select(PersonMerge.link_id, PersonMerge.survivor_id, PersonMerge.merged_id)
    ).all()
    assert len(merges) == expected_merges
    assert len({link_id for link_id, _s, _m in merges}) == expected_merges
    for link_id, survivor, merged in merges:
        assert links[link_id].outcome == "merged" and links[link_id].source == "bulk"
        assert survivor < merged


def test_bulk_link_again_changes_nothing(session):
    evidence = [
        LinkEvidence(RawIdentifier("unionid", f"u{i}"), RawIdentifier("openid", f"o{i}"), source="bulk")
        for i in range(PAIRS)
    ]
    with ports.use(ports.Wiring()):
        first = service.link(session, evidence)
        session.commit()
        persons = session.scalar(select(func.count()).select_from(Person))
        again = service.link(session, evidence)
        session.commit()
    assert first.merged == PAIRS
    assert again.merged == 0 and again.already_same == PAIRS
    assert session.scalar(select(func.count()).select_from(Person)) == persons
    assert session.scalar(select(func.count()).select_from(PersonMerge)) == PAIRS
