"""Replay protection across workers (the nonce store is the operational store) and the CLI."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner
from wecom_helpers import envelope, event_xml

from liebian.cli import app as cli
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.web.app import create_app
from liebian.wecom import service

CB = "/api/v1/wecom/callback"


def test_a_nonce_used_on_one_worker_is_a_replay_on_another(client):
    params, body = envelope(event_xml("edit_external_contact", UserID="zhangsan", ExternalUserID="woW1"))
    assert client.post(CB, params=params, content=body).text == "success"
    # a second app instance on the same stores stands for another worker process
    with TestClient(create_app(run_migrations=False), raise_server_exceptions=False) as other:
        r = other.post(CB, params=params, content=body)
    assert r.status_code == 403 and "replayed_nonce" in r.text
    with session_scope() as s:
        assert len(service.callbacks(s)) == 1


def test_cli_flush_and_callbacks(client, monkeypatch):
    from liebian.ingest import service as ingest

    real = ingest.ingest_items
    monkeypatch.setattr(ingest, "ingest_items", lambda *a, **k: (_ for _ in ()).throw(OSError("busy")))
    params, body = envelope(event_xml("edit_external_contact", UserID="zhangsan", ExternalUserID="woCLI"))
    assert client.post(CB, params=params, content=body).text == "success"
    monkeypatch.setattr(ingest, "ingest_items", real)
    monkeypatch.setenv("LIEBIAN_USER", "wecom-operator")  # the operator made by the client fixture
    runner = CliRunner()
    result = runner.invoke(cli, ["wecom", "flush"])
    assert result.exit_code == 0, result.output
    with session_scope() as s:
        assert service.pending_events(s) == 0
    with warehouse.connect() as con:
        assert con.execute("SELECT count(*) FROM events WHERE user_id = 'woCLI'").fetchone()[0] == 1
    result = runner.invoke(cli, ["wecom", "callbacks", "--format", "json"])
    assert result.exit_code == 0, result.output
    rows = json.loads(result.output)
    assert [(r["change_type"], r["external_userid"], r["outcome"]) for r in rows] == [
        ("edit_external_contact", "woCLI", "recorded")
    ]
