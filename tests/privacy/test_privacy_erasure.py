"""Data-subject requests over a small demo brand: export everything about a person; erase them from
both stores, after which neither their raw identifiers nor their HMACs are found anywhere, and the
aggregates are what they were."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import String, Text, func, inspect, select

from liebian.db.session import get_engine, session_scope
from liebian.demo.generator import DemoSpec
from liebian.demo.service import build
from liebian.engine import warehouse
from liebian.identity.keys import DIRECT_TYPES
from liebian.identity.models import Identifier
from liebian.privacy import retention, service, subject_requests
from liebian.privacy.crypto import decrypt, identifier_hmac
from liebian.web.app import create_app


@pytest.fixture
def demo(store):
    build(DemoSpec(persons=600))
    return store


def _busiest_person_with_a_phone() -> tuple[int, list[str]]:
    with session_scope() as s:
        phone_people = set(s.scalars(select(Identifier.person_id).where(Identifier.id_type == "phone")))
    with warehouse.connect(read_only=True) as con:
        rows = con.execute("SELECT person_id, count(*) n FROM events GROUP BY 1 ORDER BY n DESC").fetchall()
        orders = {p for (p,) in con.execute("SELECT DISTINCT person_id FROM orders").fetchall()}
    pid = next(p for p, _ in rows if p in phone_people and p in orders)
    with session_scope() as s:
        idents = s.scalars(select(Identifier).where(Identifier.person_id == pid)).all()
        raw = [decrypt(i.encrypted_value) if i.id_type in DIRECT_TYPES else i.id_value for i in idents]
    return pid, raw


def _independent_search(needles: list[str]) -> dict[str, int]:
    """Every text column of every table of both stores, searched for each needle (not via the service)."""
    found = {}
    engine = get_engine()
    insp = inspect(engine)
    with engine.connect() as conn:
        for table in insp.get_table_names():
            from sqlalchemy import Table

            from liebian.db.base import Base

            t = Base.metadata.tables.get(table)
            if t is None:
                t = Table(table, Base.metadata, autoload_with=conn)
            for col in t.columns:
                if isinstance(col.type, String | Text):
                    for n in needles:
                        c = conn.execute(
                            select(func.count()).select_from(t).where(col.contains(n, autoescape=True))
                        ).scalar()
                        if c:
                            found[f"op.{table}.{col.name}:{n[:6]}"] = c
    with warehouse.connect(read_only=True) as con:
        for table, col in con.execute(
            "SELECT table_name, column_name FROM information_schema.columns WHERE data_type = 'VARCHAR'"
        ).fetchall():
            for n in needles:
                c = con.execute(
                    f'SELECT count(*) FROM "{table}" WHERE strpos("{col}", ?) > 0', [n]
                ).fetchone()[0]
                if c:
                    found[f"wh.{table}.{col}:{n[:6]}"] = c
    return found


def _aggregates() -> dict:
    with warehouse.connect(read_only=True) as con:
        return {
            "events": con.execute("SELECT count(*), count(DISTINCT person_id) FROM events").fetchone(),
            "orders": con.execute(
                "SELECT count(*), sum(amount_fen), count(DISTINCT person_id) FROM orders"
            ).fetchone(),
            "messages": con.execute("SELECT count(*) FROM messages").fetchone(),
            "edges": con.execute("SELECT count(*) FROM referral_edges").fetchone(),
            "by_channel": con.execute(
                "SELECT channel, count(*) FROM events GROUP BY 1 ORDER BY 1"
            ).fetchall(),
        }


def test_export_then_erase_leaves_no_trace_and_keeps_aggregates(demo, admin_headers):
    pid, raw = _busiest_person_with_a_phone()
    phone = next(v for v in raw if v.isdigit() and len(v) == 11)
    needles = sorted(set(raw) | {identifier_hmac(phone)})
    with session_scope() as s:
        stored = s.scalars(select(Identifier.id_value).where(Identifier.person_id == pid)).all()
    needles = sorted(set(needles) | set(stored))
    before = _independent_search(needles)
    assert any(k.startswith("op.identifiers") for k in before) and any(k.startswith("wh.") for k in before)
    aggregates = _aggregates()
    with warehouse.connect(read_only=True) as con:
        n_events = con.execute("SELECT count(*) FROM events WHERE person_id = ?", [pid]).fetchone()[0]

    client = TestClient(create_app(run_migrations=False))
    # the phone finds the person before the erasure
    assert (
        client.get(
            "/api/v1/persons/lookup", params={"id_type": "phone", "id": phone}, headers=admin_headers
        ).status_code
        == 200
    )
    r = client.post(
        "/api/v1/privacy/requests/export", json={"person_id": pid, "reason": "DSR #1"}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    export = r.json()
    assert export["person_id"] == pid
    assert phone in {i["value"] for i in export["identifiers"]}
    assert len(export["warehouse"]["events"]) == n_events
    assert {c["purpose"] for c in export["consent"]} == set(service.PURPOSES)
    json.dumps(export)  # it is plain JSON

    r = client.post(
        "/api/v1/privacy/requests/delete", json={"person_id": pid, "reason": "DSR #2"}, headers=admin_headers
    )
    assert r.status_code == 200, r.text
    record = r.json()
    assert record["traces_after"] == {}
    assert record["operational"]["identifiers"] == len(raw)
    assert record["warehouse"]["events"] == n_events
    assert {i["id_type"] for i in record["identifiers_removed"]} >= {"phone"}
    assert phone not in json.dumps(record)

    # searched independently: no raw value and no HMAC left in either store
    assert _independent_search(needles) == {}
    # the aggregates are unchanged: rows stay, keyed by the pseudonymous person id
    assert _aggregates() == aggregates
    assert (
        client.get(
            "/api/v1/persons/lookup", params={"id_type": "phone", "id": phone}, headers=admin_headers
        ).status_code
        == 404
    )

    # the record is verifiable: its hash is in the request and in the audit chain
    with session_scope() as s:
        assert subject_requests.verify_request(s, record["request_id"])
        from liebian.auth.service import audit_entries, verify_audit

        entry = next(e for e in audit_entries(s, action="privacy.delete"))
        assert entry["detail"]["record_hash"] == record["record_hash"]
        assert verify_audit(s)["ok"]
    # a second request for the same (now identifier-less) person removes nothing more
    r = client.post("/api/v1/privacy/requests/delete", json={"person_id": pid}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["operational"] == {}


def test_only_admin_handles_subject_requests(sqlite_store):
    client = TestClient(create_app(run_migrations=False))
    for role in ("operator", "analyst", "auditor"):
        from liebian.auth.service import create_api_key

        with session_scope() as s:
            key, _ = create_api_key(s, name=role, actor="t", kind="service", role=role)
        assert (
            client.post(
                "/api/v1/privacy/requests/delete", json={"person_id": 1}, headers={"X-API-Key": key}
            ).status_code
            == 403
        )


def test_retention_job_deletes_old_raw_rows(demo, monkeypatch):
    from datetime import datetime

    from liebian.config import reset_settings_cache
    from liebian.jobs import run_job

    with warehouse.connect(read_only=True) as con:
        total, newest = con.execute("SELECT count(*), max(ts) FROM events").fetchone()
        cutoff_days = 30
        expected = con.execute(
            "SELECT count(*) FROM events WHERE ts < ?::TIMESTAMP - INTERVAL 30 DAY", [newest]
        ).fetchone()[0]
    assert 0 < expected < total
    monkeypatch.setenv(
        "LIEBIAN_RETENTION_DAYS", json.dumps({"events": cutoff_days, "messages": 0, "rejects": 0})
    )
    reset_settings_cache()
    # the job's clock is the newest event here, so the test does not depend on today's date
    monkeypatch.setattr(
        retention,
        "utcnow",
        lambda: newest if isinstance(newest, datetime) else datetime.fromisoformat(str(newest)),
    )
    result = run_job("privacy-retention")
    assert result == {"events": expected}
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == total - expected


def test_reveal_is_admin_only_needs_a_reason_and_is_audited(sqlite_store, admin_headers):
    from liebian.auth.service import audit_entries, create_api_key
    from liebian.identity import service as identity

    with session_scope() as s:
        pid = identity.resolve(s, [identity.RawIdentifier("phone", "139 1234 5678")], source="t")
        pid = next(iter(pid.values()))
        operator, _ = create_api_key(s, name="op", actor="t", kind="service", role="operator")
    client = TestClient(create_app(run_migrations=False))
    url = f"/api/v1/privacy/persons/{pid}/reveal"
    assert client.post(url, json={"reason": "客服核实"}, headers={"X-API-Key": operator}).status_code == 403
    r = client.post(url, json={"reason": ""}, headers=admin_headers)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "reason"
    r = client.post(url, json={"reason": "客服核实 ticket 42"}, headers=admin_headers)
    assert r.status_code == 200 and r.json()["values"] == ["13912345678"]
    # the person's view elsewhere stays masked
    person = client.get(f"/api/v1/persons/{pid}", headers=admin_headers).json()
    assert "13912345678" not in str(person) and "139****5678" in str(person)
    with session_scope() as s:
        entry = audit_entries(s, action="pii.reveal")[0]
    assert entry["detail"] == {"id_type": "phone", "count": 1, "reason": "客服核实 ticket 42"}
