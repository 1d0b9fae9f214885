"""Bulk identity registration (identity.bulk.resolve_bulk) gives what resolve() gives, on both stores."""

from __future__ import annotations

from sqlalchemy import func, select

from liebian.db.session import session_scope
from liebian.identity import bulk
from liebian.identity import service as identity
from liebian.identity.keys import person_id_for
from liebian.identity.models import Identifier, Person
from liebian.privacy.crypto import decrypt


def test_resolve_bulk_matches_resolve_rules(store) -> None:
    with session_scope() as session:
        known = identity.resolve(session, [("openid", "o_known")], source="earlier")
        # a tombstone occupying the id the next key would get forces a salted id, as in resolve()
        session.add(Person(id=person_id_for("openid", "o_0")))
    keys = [("openid", f"o_{i}") for i in range(3000)] + [("openid", "o_known")]
    phones = [identity.RawIdentifier("phone", f"1380013{i:04d}") for i in range(50)]
    with session_scope() as session:
        got = bulk.resolve_bulk(session, keys + phones, source="file:x.csv")
    assert len(got) == 3051
    assert got[("openid", "o_known")] == known[("openid", "o_known")]
    assert got[("openid", "o_5")] == person_id_for("openid", "o_5")
    assert got[("openid", "o_0")] == person_id_for("openid", "o_0#1")
    with session_scope() as session:
        phone = session.execute(select(Identifier).where(Identifier.id_type == "phone").limit(1)).scalar_one()
        assert phone.display.startswith("138****") and decrypt(phone.encrypted_value).startswith("1380013")
        assert phone.source == "file:x.csv"
        count = session.scalar(select(func.count()).select_from(Identifier))
        # the registry agrees with what resolve_bulk returned
        assert identity.lookup(session, list(got)) == got
    with session_scope() as session:
        again = bulk.resolve_bulk(session, keys + phones, source="again")
        assert again == got
        assert session.scalar(select(func.count()).select_from(Identifier)) == count == 3051


def test_import_registers_new_identifiers_by_the_same_rules(store, tmp_path) -> None:
    """The import's set-based registration (ids and displays computed in DuckDB) gives what
    resolve() would: salted ids past tombstones, masked displays, phone ciphertexts, and a
    warehouse identity_map equal to the registry without reading it back."""
    from ingest_helpers import EVENT_HEADER, rows, write_csv

    from liebian.identity.keys import display_value
    from liebian.ingest.service import import_file

    with session_scope() as session:
        # a deleted person's tombstone holds the id "o_back" would get
        session.add(Person(id=person_id_for("openid", "o_back")))
        known = identity.resolve(session, [("openid", "o_known")], source="earlier")
    users = [("openid", "o_back"), ("openid", "o_known"), ("openid", "用户甲乙丙丁戊"), ("openid", " o_pad\u00a0"),
             ("phone", "+86 138-0013-8000"), ("openid", "ab")]  # fmt: skip
    path = write_csv(
        tmp_path / "events.csv",
        EVENT_HEADER,
        [[f"e{i}", "2026-11-03 10:00:00", v, t, "view", "app"] for i, (t, v) in enumerate(users)],
    )
    result = import_file(path, "events")
    assert result.rows_loaded == len(users)
    with session_scope() as session:
        idents = {(i.id_type, i.id_value): i for i in session.execute(select(Identifier)).scalars()}
        persons = {p.id for p in session.execute(select(Person)).scalars()}
        # each new identifier founded its own person; the tombstone's id went to nobody else
        assert idents[("openid", "o_back")].person_id == person_id_for("openid", "o_back#1")
        assert idents[("openid", "o_known")].person_id == known[("openid", "o_known")]
        assert all(i.person_id in persons for i in idents.values())
        assert idents[("openid", "ab")].display == display_value("openid", "ab") == "a*"
        assert idents[("openid", "用户甲乙丙丁戊")].display == display_value("openid", "用户甲乙丙丁戊")
        (pad,) = [k for k in idents if k[1].startswith("o_pad")]
        assert idents[pad].display == display_value("openid", pad[1])
        phone = idents[identity.key_of("phone", "13800138000")]
        assert phone.display == "138****8000" and decrypt(phone.encrypted_value) == "13800138000"
        assert {i.source for k, i in idents.items() if k != ("openid", "o_known")} == {"file:events.csv"}
        registry = {(t, v, i.person_id) for (t, v), i in idents.items()}
    # the warehouse replica equals the registry, and events point at the same persons
    assert set(rows("SELECT id_type, id_value, person_id FROM identity_map")) == registry
    loaded = set(rows("SELECT id_type, user_id, person_id FROM events"))
    assert len(loaded) == len(users) and loaded <= registry
    with session_scope() as session:
        from liebian.engine import warehouse

        with warehouse.connect() as con:
            assert identity.sync_warehouse(session, con) == {"identifiers_added": 0, "merges_applied": 0}


def test_many_new_identifiers_register_beside_the_load(store, tmp_path, monkeypatch) -> None:
    """With thousands of new identifiers the store is written by a thread while the rows load; when
    the plain path does not apply (here a tombstone holds one planned id) the load is undone and
    registered by every rule, so both runs end with a registry equal to the warehouse's replica."""
    from ingest_helpers import EVENT_HEADER, rows, write_csv

    from liebian.identity.bulk import BESIDE_THRESHOLD
    from liebian.ingest.service import import_file

    fallbacks = []
    real_register_here = bulk.Registration.register_here

    def register_here(self, con):  # the real method, counted
        fallbacks.append(self.planned)
        return real_register_here(self, con)

    monkeypatch.setattr(bulk.Registration, "register_here", register_here)

    n = BESIDE_THRESHOLD + 500
    plain = write_csv(
        tmp_path / "plain.csv", EVENT_HEADER,
        [[f"p{i}", "2026-11-03 10:00:00", f"u_{i}", "openid", "view", "app"] for i in range(n)],
    )  # fmt: skip
    result = import_file(plain, "events")
    assert result.rows_loaded == n
    assert "registering identities (beside loading)" in result.timings
    assert fallbacks == []

    with session_scope() as session:
        session.add(Person(id=person_id_for("openid", "v_7")))  # the id v_7 would get is taken
    clash = write_csv(
        tmp_path / "clash.csv", EVENT_HEADER,
        [[f"c{i}", "2026-11-04 10:00:00", f"v_{i}", "openid", "view", "app"] for i in range(n)]
        + [["c-old", "2026-11-04 11:00:00", "u_3", "openid", "view", "app"]],
    )  # fmt: skip
    result = import_file(clash, "events")
    assert (result.rows_loaded, result.rows_rejected) == (n + 1, 0)
    assert fallbacks == [n]  # the plain path found the taken id and the load ran again

    with session_scope() as session:
        idents = {(i.id_type, i.id_value): i.person_id for i in session.execute(select(Identifier)).scalars()}
        persons = set(session.execute(select(Person.id)).scalars())
    assert len(idents) == 2 * n
    assert idents[("openid", "v_7")] == person_id_for("openid", "v_7#1")
    assert idents[("openid", "v_8")] == person_id_for("openid", "v_8")
    assert set(idents.values()) <= persons
    assert set(rows("SELECT id_type, id_value, person_id FROM identity_map")) == {
        (t, v, p) for (t, v), p in idents.items()
    }
    # every loaded event points at its identifier's person, none twice
    loaded = rows("SELECT event_id, id_type, user_id, person_id FROM events")
    assert len(loaded) == 2 * n + 1
    assert all(idents[(t, u)] == p for _, t, u, p in loaded)
    with session_scope() as session:
        from liebian.engine import warehouse

        with warehouse.connect() as con:
            assert identity.sync_warehouse(session, con) == {"identifiers_added": 0, "merges_applied": 0}


def _index_definitions(conn) -> set[tuple[str, str]]:
    """The identifiers' indexes (and on PostgreSQL its validated constraints, foreign key included)."""
    if conn.dialect.name == "sqlite":
        sql = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'identifiers'"
    else:
        sql = (
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'identifiers' UNION ALL "
            "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
            "WHERE conrelid = 'identifiers'::regclass AND convalidated"
        )
    return {(name, str(definition)) for name, definition in conn.exec_driver_sql(sql).fetchall()}


def test_a_first_bulk_registration_leaves_the_indexes_and_the_foreign_key_checks(store, tmp_path) -> None:
    """A large first registration drops the identifiers' secondary indexes for its insert and skips
    the per-row foreign-key check of the persons it has just written (SQLite: the pragma;
    PostgreSQL: the constraint, added back): afterwards the indexes and constraints are there under
    the same definitions, the lookups use them, and every pooled connection refuses an identifier
    of no person again."""
    import pytest
    from ingest_helpers import EVENT_HEADER, write_csv
    from sqlalchemy import event
    from sqlalchemy.exc import IntegrityError

    from liebian.db.session import get_engine
    from liebian.identity.bulk import BESIDE_THRESHOLD
    from liebian.ingest.service import import_file

    engine = get_engine()
    with engine.connect() as conn:
        before = _index_definitions(conn)
    n = BESIDE_THRESHOLD + 100
    path = write_csv(
        tmp_path / "many.csv", EVENT_HEADER,
        [[f"m{i}", "2026-11-03 10:00:00", f"w_{i}", "openid", "view", "app"] for i in range(n)],
    )  # fmt: skip
    statements: list[str] = []

    def seen(_conn, _cursor, statement, *_args) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", seen)
    try:
        result = import_file(path, "events")
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert result.rows_loaded == n and "registering identities (beside loading)" in result.timings
    # the insert ran without the secondary indexes (and, on PostgreSQL, without the foreign key)
    assert any(s.startswith('DROP INDEX "ix_identifiers_person_id"') for s in statements)
    if engine.dialect.name == "postgresql":
        assert any("DROP CONSTRAINT" in s for s in statements)
    with engine.connect() as conn:
        assert _index_definitions(conn) == before
        if conn.dialect.name == "sqlite":
            plan = conn.exec_driver_sql(
                "EXPLAIN QUERY PLAN SELECT id FROM identifiers WHERE person_id = 1"
            ).fetchall()
            assert "ix_identifiers_person_id" in str(plan)
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Identifier)) == n
        assert session.scalar(
            select(Identifier.person_id).where(Identifier.id_value == "w_7")
        ) == person_id_for("openid", "w_7")
    # both pooled connections (checked out at once) check foreign keys again
    with engine.connect() as first, engine.connect() as second:
        for conn in (first, second):
            with pytest.raises(IntegrityError), conn.begin():
                conn.exec_driver_sql(
                    "INSERT INTO identifiers (id_type, id_value, person_id, display, source, first_seen_at) "
                    "VALUES ('openid', 'orphan', 12345, 'o*', '', '2026-11-03 10:00:00')"
                )
