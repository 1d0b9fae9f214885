"""OneID through its edges: the HTTP API (FastAPI TestClient) and the `liebian identity` commands."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.db import migrate
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.identity import service
from liebian.identity.keys import person_id_for, stored_value
from liebian.identity.service import LinkEvidence, RawIdentifier
from liebian.web.app import create_app

PHONE = "13800001234"
runner = CliRunner()


@pytest.fixture
def client(store, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def test_link_then_lookup_and_get_over_http(client):
    body = {"a": {"id_type": "unionid", "id": "oU_http"}, "b": {"id_type": "phone", "id": "138-0000-1234"}}
    response = client.post("/api/v1/identities/link", json=body | {"source": "wecom"})
    assert response.status_code == 200, response.text
    linked = response.json()
    survivor = min(person_id_for("unionid", "oU_http"), person_id_for("phone", stored_value("phone", PHONE)))
    assert linked["outcome"] == "merged"
    assert linked["person_id"] == linked["person_id_b"] == survivor
    assert client.post("/api/v1/identities/link", json=body).json()["outcome"] == "already_same"

    found = client.get("/api/v1/persons/lookup", params={"id_type": "phone", "id": "+86 13800001234"})
    assert found.status_code == 200
    person = found.json()
    assert person["person_id"] == survivor
    assert {(i["id_type"], i["value"]) for i in person["identifiers"]} == {
        ("phone", "138****1234"),
        ("unionid", "oU_…ttp"),
    }
    assert PHONE not in found.text

    merged_away = max(
        person_id_for("unionid", "oU_http"), person_id_for("phone", stored_value("phone", PHONE))
    )
    by_old_id = client.get(f"/api/v1/persons/{merged_away}")
    assert by_old_id.status_code == 200
    assert by_old_id.json()["person_id"] == survivor
    assert by_old_id.json()["merged_from"] == [merged_away]


def test_conflict_over_http_keeps_persons_apart(client):
    for union in ("oU_one", "oU_two"):
        body = {"a": {"id_type": "unionid", "id": union}, "b": {"id_type": "device_id", "id": "dev-shared"}}
        result = client.post("/api/v1/identities/link", json=body).json()
    assert result["outcome"] == "conflict"
    assert result["person_id"] != result["person_id_b"]
    assert "unionid" in result["detail"]


def test_http_errors_name_the_problem(client):
    missing = client.get("/api/v1/persons/lookup", params={"id_type": "phone", "id": "13900009999"})
    assert missing.status_code == 404
    assert missing.json()["detail"] == "no person has phone 139****9999"
    assert client.get("/api/v1/persons/12345").json()["detail"] == "no person 12345"

    bad_type = client.get("/api/v1/persons/lookup", params={"id_type": "email", "id": "x@y.z"})
    assert bad_type.status_code == 422
    assert bad_type.json()["errors"][0]["field"] == "id_type"
    assert "unknown id_type 'email'" in bad_type.json()["errors"][0]["reason"]

    bad_phone = client.get("/api/v1/persons/lookup", params={"id_type": "phone", "id": "12"})
    assert bad_phone.status_code == 422
    assert bad_phone.json()["errors"] == [
        {"field": "id", "reason": "not a phone number: 2 digits (expected 7–15)"}
    ]

    not_int = client.get("/api/v1/persons/abc")
    assert not_int.status_code == 422 and not_int.json()["errors"][0]["field"] == "path.person_id"

    body = {"a": {"id_type": "unionid", "id": "u"}, "b": {"id_type": "phone", "id": "call me"}}
    bad_link = client.post("/api/v1/identities/link", json=body)
    assert bad_link.status_code == 422
    assert bad_link.json()["errors"][0]["field"] == "b.id"
    body["b"] = {"id_type": "fax", "id": "1"}
    bad_link = client.post("/api/v1/identities/link", json=body)
    assert bad_link.status_code == 422
    assert bad_link.json()["errors"][0]["field"] == "b.id_type"
    with session_scope() as s:
        assert service.identifier_count(s) == 0  # nothing half-written


def test_cli_link_show_and_sync(store):
    result = runner.invoke(
        cli_app, ["identity", "link", "unionid", "oU_cli_1", "phone", PHONE, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    linked = json.loads(result.stdout)
    assert linked["outcome"] == "merged" and linked["persons_merged"] == 1

    result = runner.invoke(
        cli_app, ["identity", "show", "--id-type", "phone", "--id", PHONE, "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    view = json.loads(result.stdout)
    assert view["person_id"] == linked["person_id"]
    assert sorted(i["value"] for i in view["identifiers"]) == ["138****1234", "oU_…i_1"]
    assert PHONE not in result.stdout

    csv_out = runner.invoke(
        cli_app, ["identity", "show", "--id-type", "unionid", "--id", "oU_cli_1", "--format", "csv"]
    )
    lines = csv_out.stdout.strip().splitlines()
    assert lines[0].split(",")[:3] == ["person_id", "id_type", "value"]
    assert len(lines) == 3

    table = runner.invoke(cli_app, ["identity", "show", "--person-id", str(view["person_id"])])
    assert table.exit_code == 0 and "138****1234" in table.stdout and PHONE not in table.stdout

    synced = runner.invoke(cli_app, ["identity", "sync", "--format", "json"])
    assert synced.exit_code == 0, synced.output
    assert json.loads(synced.stdout) == {"identifiers_added": 2, "merges_applied": 1}
    with warehouse.connect() as con:
        assert con.execute("SELECT DISTINCT person_id FROM identity_map").fetchall() == [(view["person_id"],)]


def test_cli_errors_are_clear(store):
    result = runner.invoke(cli_app, ["identity", "show", "--id-type", "phone", "--id", "13900009999"])
    assert result.exit_code == 1
    assert "no person has phone 139****9999" in result.stderr
    result = runner.invoke(cli_app, ["identity", "show", "--id-type", "mail", "--id", "x"])
    assert result.exit_code == 2 and "unknown id_type 'mail'" in result.stderr
    result = runner.invoke(cli_app, ["identity", "show"])
    assert result.exit_code == 2 and "give --id-type and --id" in result.stderr
    result = runner.invoke(cli_app, ["identity", "link", "unionid", "u", "phone", "n/a"])
    assert result.exit_code == 2 and "B: phone: not a phone number" in result.stderr


def test_cli_link_reports_a_conflict(store):
    with session_scope() as s:
        service.link(s, [LinkEvidence(RawIdentifier("unionid", "u1"), RawIdentifier("device_id", "d1"))])
    result = runner.invoke(
        cli_app, ["identity", "link", "device_id", "d1", "unionid", "u2", "--format", "json"]
    )
    assert result.exit_code == 0
    out = json.loads(result.stdout)
    assert out["outcome"] == "conflict" and out["persons_merged"] == 0


def test_cli_on_a_store_never_migrated_migrates_it_first(data_dir):
    result = runner.invoke(cli_app, ["identity", "show", "--id-type", "phone", "--id", PHONE])
    # the schema was created on the way: the answer is about the person, not the store
    assert result.exit_code == 1
    assert "no person has phone" in " ".join(result.stderr.split())
    assert migrate.current_revision() == migrate.head_revision()
