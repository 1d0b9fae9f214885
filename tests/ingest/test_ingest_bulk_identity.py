"""Bulk identity registration (identity.service.resolve_bulk) gives what resolve() gives, on both stores."""

from __future__ import annotations

from sqlalchemy import func, select

from liebian.db.session import session_scope
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
        got = identity.resolve_bulk(session, keys + phones, source="file:x.csv")
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
        again = identity.resolve_bulk(session, keys + phones, source="again")
        assert again == got
        assert session.scalar(select(func.count()).select_from(Identifier)) == count == 3051
