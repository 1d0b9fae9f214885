"""The rewards API's edge: payouts issue exactly what is named, unknown fields are refused, and the
ledger records the authenticated caller as the actor (a caller's words go into `note`)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from rewards_helpers import grant
from typer.testing import CliRunner

from liebian.auth import service as auth_service
from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.rewards import service
from liebian.web.app import create_app


@pytest.fixture
def client(store, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def _approved(n: int = 3, campaign_id: str = "c1", start: int = 0) -> list[int]:
    with session_scope() as s:
        ids = [grant(s, f"g{start + i}", campaign_id=campaign_id).id for i in range(n)]
        for rid in ids:
            service.transition(s, rid, "approved", idempotency_key=f"ap{rid}", actor="op")
    return ids


def _states(ids: list[int]) -> list[str]:
    with session_scope() as s:
        return [service.get_reward(s, rid).state for rid in ids]


def test_a_misspelled_ids_field_issues_nothing(client):
    """The reproduction: {"ids": [...]} used to issue every approved reward."""
    ids = _approved(3)
    r = client.post("/api/v1/payouts/issue", json={"ids": ids[:1]}, headers={"Idempotency-Key": "b1"})
    assert r.status_code == 422
    assert [e["field"] for e in r.json()["errors"]] == ["ids"]
    assert _states(ids) == ["approved"] * 3


def test_a_batch_must_name_its_rewards_or_ask_for_all(client):
    ids = _approved(2) + _approved(1, campaign_id="c2", start=10)
    headers = {"Idempotency-Key": "b1"}
    nothing = client.post("/api/v1/payouts/issue", json={}, headers=headers)
    assert nothing.status_code == 422 and nothing.json()["field"] == "reward_ids"
    empty = client.post("/api/v1/payouts/issue", json={"reward_ids": []}, headers=headers)
    assert empty.status_code == 422 and empty.json()["errors"][0]["field"] == "reward_ids"
    both = client.post(
        "/api/v1/payouts/issue", json={"reward_ids": ids, "all_approved": True}, headers=headers
    )
    assert both.status_code == 422 and both.json()["field"] == "all_approved"
    assert _states(ids) == ["approved"] * 3
    # ids of another campaign than the one named: refused, naming the reward
    wrong = client.post(
        "/api/v1/payouts/issue", json={"reward_ids": ids, "campaign_id": "c1"}, headers=headers
    )
    assert wrong.status_code == 409 and f"reward {ids[2]} belongs to campaign c2" in wrong.json()["detail"]
    assert _states(ids) == ["approved"] * 3
    # every payable approved reward of one campaign, asked for explicitly
    batch = client.post(
        "/api/v1/payouts/issue", json={"all_approved": True, "campaign_id": "c1"}, headers=headers
    )
    assert batch.status_code == 200 and batch.json()["reward_ids"] == ids[:2]
    assert _states(ids) == ["issued", "issued", "approved"]


def test_the_actor_is_the_authenticated_caller_and_the_note_is_kept(client):
    a, b, c = _approved(3)
    caller = client.get("/api/v1/auth/me").json()["name"]
    claimed = client.post(
        f"/api/v1/rewards/{a}/issue",
        json={"idempotency_key": "i1", "actor": "user:admin (CFO approved)"},
    )
    assert claimed.status_code == 422 and [e["field"] for e in claimed.json()["errors"]] == ["actor"]
    assert client.post(
        f"/api/v1/rewards/{a}/issue", json={"idempotency_key": "i1", "note": "CFO approved"}
    ).is_success
    held = client.post(f"/api/v1/rewards/{b}/review-hold", json={"held": True, "actor": "risk"})
    assert held.status_code == 422 and held.json()["errors"][0]["field"] == "actor"
    assert client.post(f"/api/v1/rewards/{b}/review-hold", json={"held": True, "note": "burst"}).is_success
    batch = client.post(
        "/api/v1/payouts/issue", json={"idempotency_key": "b1", "reward_ids": [c], "note": "June payout"}
    )
    assert batch.status_code == 200 and batch.json()["actor"] == caller
    with session_scope() as s:
        last = {rid: service.entries(s, reward_id=rid)[-1] for rid in (a, b, c)}
    assert (last[a]["actor"], last[a]["note"]) == (caller, "CFO approved")
    assert (last[b]["kind"], last[b]["actor"], last[b]["note"]) == ("hold", caller, "burst")
    assert (last[c]["actor"], last[c]["note"]) == (caller, "payout batch b1: June payout")
    # the audit log names the same principal for the same requests
    with session_scope() as s:
        posts = [e for e in auth_service.audit_entries(s, action="http.post", limit=100) if "/rewards/" in e["target"]
                 or "/payouts/" in e["target"]]  # fmt: skip
    assert posts and {e["actor"] for e in posts} == {caller}


def test_the_cli_batch_records_who_runs_it(store, tmp_path):
    ids = _approved(2)
    out = CliRunner().invoke(
        cli_app, ["ledger", "issue", "--all-approved", "--key", "b1", "--note", "weekly"]
    )
    assert out.exit_code == 0, out.output
    with session_scope() as s:
        entry = service.entries(s, reward_id=ids[0])[-1]
    assert (entry["to_state"], entry["actor"], entry["note"]) == (
        "issued",
        "local:bootstrap",
        "payout batch b1: weekly",
    )
    neither = CliRunner().invoke(cli_app, ["ledger", "issue", "--key", "b2"])
    assert neither.exit_code == 2
