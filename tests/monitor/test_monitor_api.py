"""The monitoring and community HTTP API and CLI, with the authorisation each route requires."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.jobs import registry
from liebian.web.app import create_app
from shared_helpers import make_api_key


def test_rules_and_alert_lifecycle_over_http(sqlite_store: str, admin_headers: dict) -> None:
    with TestClient(create_app(), headers=admin_headers) as c:
        r = c.post("/api/v1/monitor/rules/defaults")
        assert r.status_code == 201 and len(r.json()) == 5
        r = c.post(
            "/api/v1/monitor/rules", json={"name": "x", "metric": "fraud_rate", "op": ">", "threshold": 3}
        )
        assert r.status_code == 422 and "threshold" in r.json()["errors"][0]["field"]
        r = c.post("/api/v1/monitor/rules", json={"name": "参与率低于15%", "metric": "participation_rate",
                                                  "op": "<", "threshold": 0.15})  # fmt: skip
        assert r.status_code == 409 and r.json()["errors"][0]["field"] == "name"
        rule_id = c.get("/api/v1/monitor/rules").json()[0]["id"]
        r = c.patch(f"/api/v1/monitor/rules/{rule_id}", json={"level": "紧急"})
        assert r.status_code == 200 and r.json()["level"] == "紧急"
        # an alert from the service, handled over HTTP
        from liebian.db.session import session_scope
        from liebian.monitor import service

        with session_scope() as s:
            alert, _ = service.raise_alert(s, kind="threshold", metric="negative_share", scope={"group_id": "wrG1"},
                                           level="重要", title="负面占比 8%", observed=0.08, threshold=0.05)  # fmt: skip
        r = c.get("/api/v1/monitor/alerts", params={"status": "open"})
        assert [a["id"] for a in r.json()] == [alert["id"]]
        assert (
            c.get("/api/v1/monitor/alerts", params={"grouped": True}).json()[0]["group_key"]
            == "group_id:wrG1"
        )
        r = c.post(f"/api/v1/monitor/alerts/{alert['id']}/resolve", json={"root_cause": ""})
        assert r.status_code == 422
        r = c.post(f"/api/v1/monitor/alerts/{alert['id']}/acknowledge")
        assert r.status_code == 200 and r.json()["status"] == "acknowledged"
        assert r.json()["acknowledged_by"].startswith("key:lb_")  # who answered it: the API key
        r = c.post(f"/api/v1/monitor/alerts/{alert['id']}/acknowledge")
        assert r.status_code == 409
        r = c.post(
            f"/api/v1/monitor/alerts/{alert['id']}/resolve", json={"root_cause": "差评集中在配送，已更换骑手"}
        )
        assert r.status_code == 200 and r.json()["status"] == "resolved"
        assert c.get("/api/v1/monitor/alerts/999").status_code == 404
        r = c.post("/api/v1/monitor/channels", json={"name": "wx", "kind": "wecom", "target": "ftp://x"})
        assert r.status_code == 422 and r.json()["errors"][0]["field"] == "target"
        r = c.post(
            "/api/v1/community/sentiment",
            json={"texts": ["奶茶太甜了", "今晚8点直播", "双11全场5折，快来抢"]},
        )
        assert [x["label"] for x in r.json()] == ["negative", "neutral", "neutral"]
        assert [x["marketing"] for x in r.json()] == [False, False, True]
        assert c.get("/api/v1/community/groups").json() == []  # an empty warehouse: no groups, no error
        r = c.get("/api/v1/community/groups", params={"start": "2026-10-02", "end": "2026-10-01"})
        assert r.status_code == 422 and "after end" in r.json()["detail"]


def test_roles_least_privilege(sqlite_store: str, data_dir) -> None:
    analyst = {"Authorization": f"Bearer {make_api_key('service', 'analyst')}"}
    operator = {"Authorization": f"Bearer {make_api_key('service', 'operator')}"}
    viewer = {"Authorization": f"Bearer {make_api_key('service', 'viewer')}"}
    with TestClient(create_app()) as c:
        assert c.get("/api/v1/monitor/alerts").status_code == 401
        assert c.get("/api/v1/monitor/alerts", headers=analyst).status_code == 200
        assert c.post("/api/v1/monitor/rules/defaults", headers=analyst).status_code == 403
        assert c.post("/api/v1/monitor/rules/defaults", headers=operator).status_code == 201
        assert c.get("/api/v1/community/contributors", headers=viewer).status_code == 403  # person ids
        assert c.get("/api/v1/community/groups", headers=viewer).status_code == 200


def test_cli_and_jobs(sqlite_store: str) -> None:
    runner = CliRunner()
    out = runner.invoke(cli_app, ["alerts", "rules", "defaults", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert len(json.loads(out.stdout)) == 5
    out = runner.invoke(cli_app, ["alerts", "rules", "add", "--name", "x", "--metric", "nope", "--op", "<",
                                  "--threshold", "0.1"])  # fmt: skip
    assert out.exit_code == 2 and "metric" in out.output
    out = runner.invoke(cli_app, ["alerts", "resolve", "1", "--root-cause", "x"])
    assert out.exit_code == 2 and "alert 1 not found" in out.output
    out = runner.invoke(cli_app, ["community", "sentiment", "太坑了", "--format", "json"])
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["label"] == "negative"
    assert {"monitor-rules", "monitor-escalate", "monitor-anomalies"} <= set(registry())
    out = runner.invoke(cli_app, ["job", "run", "monitor-escalate"])
    assert out.exit_code == 0, out.output
