"""The points (积分) HTTP API (FastAPI TestClient: real requests through auth) and `liebian points`,
on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import threading

import pytest
from fastapi.testclient import TestClient
from rewards_helpers import raw
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.web.app import create_app
from shared_helpers import make_api_key

runner = CliRunner()


@pytest.fixture
def client(store, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def test_grant_spend_adjust_balance_history_over_http(client):
    g = client.post(
        "/api/v1/points/grant",
        json={
            "person_id": 5,
            "points": 300,
            "reason": "welcome",
            "campaign_id": "c1",
            "source_ref": "sign:5",
        },
        headers={"Idempotency-Key": "g-1"},
    )
    assert g.status_code == 200, g.text
    body = g.json()
    assert (body["kind"], body["delta"], body["balance_after"], body["duplicate"]) == (
        "earn",
        300,
        300,
        False,
    )
    assert body["actor"].startswith("key:")  # the authenticated principal, not a name the caller sends
    assert body["expires_at"].endswith("Z")
    again = client.post(
        "/api/v1/points/grant",
        json={
            "person_id": 5,
            "points": 300,
            "reason": "welcome",
            "campaign_id": "c1",
            "source_ref": "sign:5",
        },
        headers={"Idempotency-Key": "g-1"},
    )
    assert again.status_code == 200 and again.json()["seq"] == body["seq"] and again.json()["duplicate"]
    other = client.post(
        "/api/v1/points/grant", json={"person_id": 5, "points": 301, "idempotency_key": "g-1"}
    )
    assert other.status_code == 409 and other.json()["code"] == "idempotency_conflict"

    sp = client.post("/api/v1/points/spend", json={"person_id": 5, "points": 120, "idempotency_key": "s-1"})
    assert sp.status_code == 200 and sp.json()["balance_after"] == 180
    over = client.post("/api/v1/points/spend", json={"person_id": 5, "points": 181, "idempotency_key": "s-2"})
    assert over.status_code == 409 and over.json()["code"] == "insufficient_points"
    assert "180" in over.json()["detail"]
    zh = client.post(
        "/api/v1/points/spend",
        json={"person_id": 5, "points": 181, "idempotency_key": "s-2"},
        headers={"Accept-Language": "zh-CN"},
    )
    assert zh.status_code == 409 and zh.json()["detail"].startswith("积分不足")

    adj = client.post(
        "/api/v1/points/adjust",
        json={"person_id": 5, "delta": -80, "reason": "typo", "idempotency_key": "a-1"},
    )
    assert adj.status_code == 200 and (adj.json()["kind"], adj.json()["balance_after"]) == ("adjust", 100)

    bal = client.get("/api/v1/points/persons/5").json()
    assert bal["balance"] == 100 and [e["points"] for e in bal["expiring"]] == [100]
    hist = client.get("/api/v1/points/persons/5/history").json()
    assert [(e["kind"], e["delta"]) for e in hist] == [("adjust", -80), ("spend", -120), ("earn", 300)]
    assert client.get("/api/v1/points/persons/6").json() == {"person_id": 6, "balance": 0, "expiring": []}

    revoked = client.post("/api/v1/points/revoke", json={"source_ref": "sign:5", "idempotency_key": "r-1"})
    assert revoked.status_code == 200
    assert [(e["delta"], e["balance_after"]) for e in revoked.json()] == [(-100, 0)]

    assert client.get("/api/v1/points/verify").json()["ok"] is True


def test_bad_requests_are_422_naming_the_field(client):
    unknown = client.post(
        "/api/v1/points/grant", json={"person_id": 1, "points": 5, "idempotency_key": "k", "pts": 1}
    )
    assert unknown.status_code == 422 and "pts" in unknown.text
    no_key = client.post("/api/v1/points/spend", json={"person_id": 1, "points": 5})
    assert no_key.status_code == 422 and "idempotency_key" in no_key.json()["detail"]
    zero = client.post("/api/v1/points/spend", json={"person_id": 1, "points": 0, "idempotency_key": "k"})
    assert zero.status_code == 422 and "points" in zero.text
    no_reason = client.post(
        "/api/v1/points/adjust", json={"person_id": 1, "delta": 5, "idempotency_key": "k"}
    )
    assert no_reason.status_code == 422 and "reason" in no_reason.text


def test_only_rewards_writers_move_points(store, client):
    analyst = {"Authorization": f"Bearer {make_api_key('service', 'analyst')}"}
    public = {"Authorization": f"Bearer {make_api_key('public', None)}"}
    body = {"person_id": 1, "points": 5, "idempotency_key": "k"}
    assert client.post("/api/v1/points/grant", json=body, headers=analyst).status_code == 403
    assert client.post("/api/v1/points/grant", json=body, headers=public).status_code == 403
    assert client.get("/api/v1/points/persons/1", headers=public).status_code == 403
    reviewer = {"Authorization": f"Bearer {make_api_key('service', 'reviewer')}"}
    assert client.get("/api/v1/points/persons/1", headers=reviewer).status_code == 200
    assert client.post("/api/v1/points/spend", json=body, headers=reviewer).status_code == 403


def test_concurrent_spends_over_http_never_overdraw(client):
    assert (
        client.post(
            "/api/v1/points/grant", json={"person_id": 9, "points": 50, "idempotency_key": "g"}
        ).status_code
        == 200
    )
    results: list = [None] * 20
    barrier = threading.Barrier(20)

    def spend(i: int) -> None:
        barrier.wait()
        results[i] = client.post(
            "/api/v1/points/spend", json={"person_id": 9, "points": 10, "idempotency_key": f"s{i % 10}"}
        )

    threads = [threading.Thread(target=spend, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    ok = [r.json() for r in results if r.status_code == 200]
    refused = [r.json()["code"] for r in results if r.status_code != 200]
    assert set(refused) <= {"insufficient_points"}
    assert len({e["seq"] for e in ok}) == 5  # 50 points: five spends of 10, whatever the retries
    for i in range(10):  # both calls of a key that went through got the same entry
        seqs = {r.json()["seq"] for r in results[i::10] if r.status_code == 200}
        assert len(seqs) <= 1
    assert client.get("/api/v1/points/persons/9").json()["balance"] == 0
    assert client.get("/api/v1/points/verify").json()["ok"] is True


def test_cli_balance_history_verify(client):
    for key, pts in (("g1", 40), ("g2", 60)):
        client.post("/api/v1/points/grant", json={"person_id": 3, "points": pts, "idempotency_key": key})
    client.post("/api/v1/points/spend", json={"person_id": 3, "points": 55, "idempotency_key": "s"})
    bal = runner.invoke(cli_app, ["points", "balance", "3", "--format", "json"])
    assert bal.exit_code == 0, bal.output
    assert json.loads(bal.output)["balance"] == 45
    table = runner.invoke(cli_app, ["points", "balance", "3"])
    assert table.exit_code == 0 and "45 points" in table.output
    hist = runner.invoke(cli_app, ["points", "history", "3", "--format", "json"])
    assert [(e["kind"], e["delta"]) for e in json.loads(hist.output)] == [
        ("spend", -55),
        ("earn", 60),
        ("earn", 40),
    ]
    ok = runner.invoke(cli_app, ["points", "verify"])
    assert ok.exit_code == 0 and "points OK" in ok.output and "3 entries" in ok.output

    raw("UPDATE points_entries SET delta = 600 WHERE seq = 2")
    bad = runner.invoke(cli_app, ["points", "verify"])
    assert bad.exit_code == 1 and "seq 2" in bad.output
    as_json = runner.invoke(cli_app, ["points", "verify", "--format", "json"])
    assert as_json.exit_code == 1 and json.loads(as_json.output)["first_bad_seq"] == 2
    assert client.get("/api/v1/points/verify").json()["first_bad_seq"] == 2
