"""The rewards HTTP API (FastAPI TestClient) and the `liebian ledger` commands, on both stores."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from rewards_helpers import Receiver, grant, raw
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.rewards import service, webhooks
from liebian.web.app import create_app
from shared_helpers import export_records

runner = CliRunner()


@pytest.fixture
def client(store, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def _grants(n: int = 3, **kw) -> list[int]:
    with session_scope() as s:
        return [grant(s, f"g{i}", person_id=10 + i, value_fen=100 * (i + 1), **kw).id for i in range(n)]


def test_transitions_over_http(client):
    a, b, _ = _grants()
    r = client.post(
        f"/api/v1/rewards/{a}/approve", json={"note": "checked"}, headers={"Idempotency-Key": "ap-1"}
    )
    assert r.status_code == 200 and r.json()["state"] == "approved"
    again = client.post(f"/api/v1/rewards/{a}/approve", json={"idempotency_key": "ap-1", "note": "checked"})
    assert again.status_code == 200 and again.json()["state"] == "approved"
    illegal = client.post(f"/api/v1/rewards/{b}/redeem", json={"idempotency_key": "rd-1"})
    assert illegal.status_code == 409 and illegal.json()["code"] == "illegal_transition"
    assert "pending" in illegal.json()["detail"] and "redeemed" in illegal.json()["detail"]
    no_key = client.post(f"/api/v1/rewards/{b}/approve", json={})
    assert no_key.status_code == 422 and "idempotency_key" in no_key.json()["detail"]
    missing = client.post("/api/v1/rewards/9999/approve", json={"idempotency_key": "x"})
    assert missing.status_code == 404 and "9999" in missing.json()["detail"]
    hold = client.post(f"/api/v1/rewards/{b}/review-hold", json={"held": True, "note": "burst"})
    assert hold.status_code == 200 and hold.json()["held_for_review"] is True
    blocked = client.post(f"/api/v1/rewards/{b}/approve", json={"idempotency_key": "ap-b"})
    assert blocked.status_code == 409 and blocked.json()["code"] == "held_for_review"

    detail = client.get(f"/api/v1/rewards/{a}").json()
    caller = client.get("/api/v1/auth/me").json()["name"]  # the API key's principal
    assert [(e["kind"], e["to_state"], e["actor"], e["note"]) for e in detail["entries"]] == [
        ("grant", "pending", "system:grant", "invited a friend who bought"),
        ("transition", "approved", caller, "checked"),
    ]
    assert [x["id"] for x in client.get("/api/v1/rewards", params={"state": "approved"}).json()] == [a]
    bad_state = client.get("/api/v1/rewards", params={"state": "paid"})
    assert bad_state.status_code == 422 and "state" in bad_state.json()["detail"]
    mine = client.get("/api/v1/my/rewards", params={"person_id": 10}).json()
    assert [x["id"] for x in mine["rewards"]] == [a]
    assert mine["balances"] == [{"state": "approved", "value_fen": 100, "rewards": 1}]
    balances = client.get("/api/v1/ledger/balances", params={"by": "campaign"}).json()
    assert {(x["state"], x["value_fen"], x["rewards"]) for x in balances} == {
        ("pending", 500, 2),
        ("approved", 100, 1),
    }
    verify = client.get("/api/v1/ledger/verify").json()
    assert verify["ok"] is True and verify["entries_checked"] == 5


def test_verify_over_http_names_the_first_bad_entry(client):
    _grants()
    raw("UPDATE ledger_entries SET amount_fen = 1 WHERE seq = 2")
    body = client.get("/api/v1/ledger/verify").json()
    assert body["ok"] is False and body["first_bad_seq"] == 2


def test_payout_export_and_idempotent_issue_batch(client):
    ids = _grants(4)
    with session_scope() as s:
        for rid in ids[:3]:
            service.transition(s, rid, "approved", idempotency_key=f"ap{rid}", actor="op")
        service.set_review_hold(s, ids[2], True, actor="risk", note="")  # approved but held: not payable
    r = client.get("/api/v1/payouts/export", params={"format": "csv"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    rows = export_records(r.content)
    assert [int(x["reward_id"]) for x in rows] == ids[:2]
    assert [(x["value_fen"], x["value_yuan"]) for x in rows] == [("100", "1.00"), ("200", "2.00")]
    assert "phone" not in r.text
    x = client.get("/api/v1/payouts/export", params={"format": "xlsx"})
    ws = load_workbook(io.BytesIO(x.content)).active
    sheet = list(ws.iter_rows(values_only=True))
    assert sheet[0][0] == "reward_id" and [row[0] for row in sheet[1:-1]] == ids[:2]  # the last: the footer
    assert client.get("/api/v1/payouts/export", params={"format": "pdf"}).status_code == 422

    batch = client.post("/api/v1/payouts/issue", json={"idempotency_key": "batch-1", "reward_ids": ids[:2]})
    assert batch.status_code == 200
    assert batch.json()["reward_ids"] == ids[:2] and batch.json()["total_fen"] == 300
    again = client.post("/api/v1/payouts/issue", json={"idempotency_key": "batch-1", "reward_ids": ids[:2]})
    assert again.json()["id"] == batch.json()["id"]
    with session_scope() as s:
        assert sum(e["to_state"] == "issued" for e in service.entries(s)) == 2
    # a batch with a reward that is not approved is refused as a whole, naming the reward
    refused = client.post(
        "/api/v1/payouts/issue", json={"idempotency_key": "batch-2", "reward_ids": [ids[0], ids[3]]}
    )
    assert refused.status_code == 409 and f"reward {ids[0]} is issued" in refused.json()["detail"]
    assert f"reward {ids[3]} is pending" in refused.json()["detail"]
    with session_scope() as s:
        assert service.get_reward(s, ids[3]).state == "pending"


def test_webhook_endpoints_crud_deliveries_and_replay_over_http(client):
    with Receiver(script=[500]) as rx:
        created = client.post(
            "/api/v1/webhooks/endpoints", json={"url": rx.url, "event_types": ["reward.granted"]}
        )
        assert created.status_code == 201
        ep = created.json()
        assert ep["secret"].startswith("whsec_")
        assert "secret" not in client.get(f"/api/v1/webhooks/endpoints/{ep['id']}").json()
        bad = client.post("/api/v1/webhooks/endpoints", json={"url": "not a url"})
        assert bad.status_code == 422 and "url" in bad.json()["detail"]
        _grants(1)
        assert client.post("/api/v1/webhooks/deliver").json() == {"attempted": 1}
        deliveries = client.get("/api/v1/webhooks/deliveries").json()
        assert deliveries[0]["status"] == "pending" and deliveries[0]["last_status_code"] == 500
        replayed = client.post(f"/api/v1/webhooks/deliveries/{deliveries[0]['id']}/replay")
        assert replayed.status_code == 200
        assert client.post("/api/v1/webhooks/deliver").json() == {"attempted": 1}
        detail = client.get(f"/api/v1/webhooks/deliveries/{deliveries[0]['id']}").json()
        assert detail["status"] == "delivered" and [a["status_code"] for a in detail["log"]] == [500, 200]
        assert detail["payload"]["type"] == "reward.granted"
        h = rx.requests[-1]["headers"]
        assert webhooks.verify_signature(
            ep["secret"], h["X-Liebian-Timestamp"], rx.requests[-1]["body"], h["X-Liebian-Signature"]
        )
        patched = client.patch(f"/api/v1/webhooks/endpoints/{ep['id']}", json={"active": False})
        assert patched.json()["active"] is False
        assert client.delete(f"/api/v1/webhooks/endpoints/{ep['id']}").status_code == 204
        assert client.get("/api/v1/webhooks/endpoints").json() == []


def test_cli_verify_export_issue_balances(store, tmp_path):
    ids = _grants(3)
    with session_scope() as s:
        for rid in ids[:2]:
            service.transition(s, rid, "approved", idempotency_key=f"ap{rid}", actor="op")
    ok = runner.invoke(cli_app, ["ledger", "verify"])
    assert ok.exit_code == 0 and "ledger OK" in ok.output and "5 entries" in ok.output

    out = tmp_path / "pay.csv"
    exported = runner.invoke(
        cli_app, ["ledger", "export", "--state", "approved", "--format", "csv", "--out", str(out)]
    )
    assert exported.exit_code == 0, exported.output
    assert [int(r["reward_id"]) for r in export_records(out.read_bytes())] == ids[:2]
    xlsx = tmp_path / "pay.xlsx"
    assert runner.invoke(cli_app, ["ledger", "export", "--format", "xlsx", "--out", str(xlsx)]).exit_code == 0

    issued = runner.invoke(cli_app, ["ledger", "issue", "--ids-file", str(xlsx), "--key", "b1"])
    assert issued.exit_code == 0 and "2 rewards" in issued.output and "300 fen" in issued.output
    again = runner.invoke(cli_app, ["ledger", "issue", "--ids-file", str(out), "--key", "b1"])
    assert again.exit_code == 0 and "2 rewards" in again.output
    bad = runner.invoke(cli_app, ["ledger", "issue", "--ids-file", str(out), "--key", "b2"])
    assert bad.exit_code == 2 and "is issued, not approved" in bad.output

    bal = runner.invoke(cli_app, ["ledger", "balances", "--by", "person", "--format", "json"])
    rows = json.loads(bal.output)
    assert {(r["person"], r["state"], r["value_fen"]) for r in rows} == {
        (10, "issued", 100),
        (11, "issued", 200),
        (12, "pending", 300),
    }

    raw("DELETE FROM ledger_entries WHERE seq = 3")
    broken = runner.invoke(cli_app, ["ledger", "verify"])
    assert broken.exit_code == 1 and "first bad entry: seq 3" in broken.output
    as_json = runner.invoke(cli_app, ["ledger", "verify", "--format", "json"])
    assert json.loads(as_json.output)["first_bad_seq"] == 3


def test_cli_webhooks_release_deliver_replay(sqlite_store):
    with Receiver() as rx:
        added = runner.invoke(cli_app, ["ledger", "webhooks", "add", rx.url, "--events", "reward.approved"])
        assert added.exit_code == 0 and "signing secret (shown once): whsec_" in added.output
        listed = runner.invoke(cli_app, ["ledger", "webhooks", "list", "--format", "json"])
        assert json.loads(listed.output)[0]["url"] == rx.url
        bad = runner.invoke(cli_app, ["ledger", "webhooks", "add", rx.url, "--events", "reward.paid"])
        assert bad.exit_code == 2 and "reward.paid" in bad.output
        _grants(2)
        released = runner.invoke(cli_app, ["ledger", "release"])
        assert released.exit_code == 0 and "2 rewards approved" in released.output
        delivered = runner.invoke(cli_app, ["ledger", "deliver"])
        assert "2 delivery attempts; 0 deliveries pending" in delivered.output
        assert [json.loads(r["body"])["type"] for r in rx.requests] == ["reward.approved"] * 2
        replayed = runner.invoke(cli_app, ["ledger", "replay", "1"])
        assert replayed.exit_code == 0 and "queued again" in replayed.output
        runner.invoke(cli_app, ["ledger", "deliver"])
        assert len(rx.requests) == 3 and rx.requests[2]["body"] == rx.requests[0]["body"]
        log = runner.invoke(cli_app, ["ledger", "webhooks", "deliveries", "--format", "json"])
        assert {d["status"] for d in json.loads(log.output)} == {"delivered"}
