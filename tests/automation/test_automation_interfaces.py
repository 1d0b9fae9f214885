"""Journeys over HTTP (authenticated like every domain) and the CLI."""

from __future__ import annotations

import json
from datetime import timedelta

from automation_helpers import SECRET, add_events, make_persons, role_headers, webhook
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.automation.models import Journey
from liebian.cli import app as cli_app
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.web.app import create_app


def test_journey_api_create_run_stats_and_errors(sqlite_store, admin_headers, receiver):
    people = make_persons(3)
    add_events([(p, "signup", utcnow() - timedelta(minutes=5)) for p in people])
    definition = {
        "trigger": {"type": "event", "event": "signup"},
        "steps": [webhook(receiver.url, "sms")],
        "holdout_pct": 0,
        "quiet_hours": "",  # the test runs at any hour
    }
    with TestClient(create_app(run_migrations=False)) as client:
        r = client.post(
            "/api/v1/journeys", json={"name": "api", "definition": definition}, headers=admin_headers
        )
        assert r.status_code == 201, r.text
        jid = r.json()["id"]
        # the webhook secret is stored encrypted and never shown
        assert r.json()["definition"]["steps"][0]["action"]["secret"] == "********"
        assert SECRET not in client.get(f"/api/v1/journeys/{jid}", headers=admin_headers).text
        with session_scope() as s:
            stored = s.get(Journey, jid).definition
        assert SECRET not in stored and "sealed:" in stored
        assert client.post("/api/v1/journeys", json={"name": "api", "definition": definition},
                           headers=admin_headers).status_code == 409  # fmt: skip
        bad = {**definition, "steps": [{"action": {"type": "tag"}}]}
        r = client.post("/api/v1/journeys", json={"name": "bad", "definition": bad}, headers=admin_headers)
        assert r.status_code == 422 and "needs name" in r.text
        r = client.post(f"/api/v1/journeys/{jid}/run", headers=admin_headers)
        assert r.status_code == 200 and r.json()["entered"] == 3 and r.json()["actions"] == {"sent": 3}
        assert receiver.persons() == sorted(people)
        stats = client.get(f"/api/v1/journeys/{jid}/stats", headers=admin_headers).json()
        assert stats["arms"]["treatment"]["actioned"] == 3 and stats["outcomes"] == {"sent": 3}
        assert client.get("/api/v1/journeys/999", headers=admin_headers).status_code == 404
        # authorisation: no credential → 401; a viewer may not run journeys
        assert client.post(f"/api/v1/journeys/{jid}/run").status_code == 401
        viewer = role_headers("viewer")
        assert client.post(f"/api/v1/journeys/{jid}/pause", headers=viewer).status_code == 403
        assert (
            client.post(f"/api/v1/journeys/{jid}/pause", headers=admin_headers).json()["status"] == "paused"
        )
        assert client.post(f"/api/v1/journeys/{jid}/run", headers=admin_headers).json()["skipped"] == "paused"


def test_journey_cli(sqlite_store, tmp_path, receiver):
    (p,) = make_persons(1)
    add_events([(p, "signup", utcnow() - timedelta(minutes=5))])
    spec = tmp_path / "journey.json"
    spec.write_text(json.dumps({"trigger": {"type": "event", "event": "signup"},
                                "steps": [webhook(receiver.url, "wecom")], "holdout_pct": 0, "quiet_hours": ""}))  # fmt: skip
    runner = CliRunner()
    r = runner.invoke(cli_app, ["journey", "create", "cli", "--definition", str(spec), "--format", "json"])
    assert r.exit_code == 0, r.output
    jid = json.loads(r.stdout)["id"]
    r = runner.invoke(cli_app, ["journey", "run", str(jid), "--format", "json"])
    assert r.exit_code == 0, r.output
    assert receiver.persons() == [p]
    r = runner.invoke(cli_app, ["journey", "stats", str(jid), "--format", "json"])
    assert json.loads(r.stdout)["arms"]["treatment"]["entered"] == 1
    spec.write_text('{"trigger": {"type": "silence"}, "steps": []}')
    r = runner.invoke(cli_app, ["journey", "create", "bad", "--definition", str(spec)])
    assert r.exit_code == 2 and "trigger.silence.days" in r.output
