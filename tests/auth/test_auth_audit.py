"""The audit log: central, hash-chained, auditors only, exportable, verifiable from the CLI."""

from __future__ import annotations

import csv
import io
import json

from auth_helpers import bearer, make_api_key
from fastapi.testclient import TestClient
from sqlalchemy import text
from typer.testing import CliRunner

from liebian.auth import service
from liebian.db.session import session_scope
from liebian.web.app import create_app


def test_operator_actions_are_audited_and_only_auditors_read_them(store):
    client = TestClient(create_app(run_migrations=False))
    admin, auditor = bearer(make_api_key("service", "admin")), bearer(make_api_key("service", "auditor"))
    viewer = bearer(make_api_key("service", "viewer"))
    r = client.post("/api/v1/auth/users", json={"username": "rita", "role": "reviewer"}, headers=admin)
    assert r.status_code == 201 and len(r.json()["one_time_password"]) >= 15
    client.get("/api/v1/persons/lookup", params={"id_type": "openid", "id": "o-123456"}, headers=admin)
    assert client.get("/api/v1/auth/users", headers=viewer).status_code == 403

    # admin administers but cannot read the trail; auditors can
    assert client.get("/api/v1/auth/audit", headers=admin).status_code == 403
    entries = client.get("/api/v1/auth/audit", headers=auditor).json()
    actions = [(e["action"], e["target"]) for e in entries]
    assert ("user.create", "user:rita") in actions
    assert ("http.post", "/api/v1/auth/users") in actions
    # reads of person-level data are audited with what was asked, identifiers masked
    lookup = next(e for e in entries if e["target"] == "/api/v1/persons/lookup")
    assert lookup["detail"]["query"] == {"id_type": "o*****", "id": "o-1…456"}
    denied = next(e for e in entries if e["action"] == "access.denied")
    assert denied["target"] == "GET /api/v1/auth/users" and denied["detail"]["needs"] == "auth:admin"
    assert all(e["ip"] == "testclient" for e in entries if e["action"].startswith("http."))

    v = client.get("/api/v1/auth/audit/verify", headers=auditor).json()
    # reading the audit log is itself audited: the next read holds one more entry than was verified
    assert v["ok"] and v["entries"] == len(client.get("/api/v1/auth/audit", headers=auditor).json()) - 1

    exported = client.get("/api/v1/auth/audit/export", params={"fmt": "csv"}, headers=auditor).text
    rows = list(csv.DictReader(io.StringIO(exported)))
    assert [int(r["seq"]) for r in rows] == list(range(1, len(rows) + 1))
    lines = client.get(
        "/api/v1/auth/audit/export", params={"fmt": "jsonl"}, headers=auditor
    ).text.splitlines()
    by_seq = {json.loads(line)["seq"]: json.loads(line)["hash"] for line in lines}
    assert all(by_seq[int(r["seq"])] == r["hash"] for r in rows) and len(lines) == len(rows) + 1


def test_tampering_is_detected(store):
    with session_scope() as s:
        for i in range(5):
            service.audit(s, "user:a", "thing.done", f"t{i}", {"n": i}, "10.0.0.1")
        assert service.verify_audit(s)["ok"]
    # an insider edits one entry's detail in the database
    with session_scope() as s:
        s.execute(text("UPDATE audit_log SET detail = '{\"n\": 99}' WHERE seq = 3"))
    with session_scope() as s:
        result = service.verify_audit(s)
    assert not result["ok"] and result["bad_seq"] == 3 and "hash" in result["reason"]
    # deleting an entry breaks the chain too
    with session_scope() as s:
        s.execute(text("UPDATE audit_log SET detail = '{\"n\": 2}' WHERE seq = 3"))
        assert service.verify_audit(s)["ok"]
        s.execute(text("DELETE FROM audit_log WHERE seq = 2"))
    with session_scope() as s:
        assert service.verify_audit(s)["bad_seq"] == 3


def test_cli_audit_verify_and_export(sqlite_store, tmp_path, monkeypatch):
    from liebian.cli import app

    with session_scope() as s:
        service.audit(s, "user:a", "x", "y", {}, "")
    monkeypatch.setenv("LIEBIAN_API_KEY", make_api_key("service", "auditor"))
    runner = CliRunner()
    r = runner.invoke(app, ["auth", "audit", "verify"])
    assert r.exit_code == 0 and "intact" in r.output
    out = tmp_path / "audit.jsonl"
    r = runner.invoke(app, ["auth", "audit", "export", "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert [json.loads(line)["action"] for line in out.read_text().splitlines()[:3]] == [
        "x",
        "apikey.create",
        "cli.run",
    ]
    with session_scope() as s:
        s.execute(text("UPDATE audit_log SET actor = 'someone else' WHERE seq = 1"))
    r = runner.invoke(app, ["auth", "audit", "verify"])
    assert r.exit_code == 1 and "broken at seq 1" in r.output
