"""Concurrent duplicate requests against the running server (uvicorn in a child process)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import httpx
from rewards_helpers import grant

from liebian.db.session import session_scope
from liebian.rewards import service


def test_concurrent_duplicate_requests_over_http(live_server, admin_headers):
    with session_scope() as s:
        reward = grant(s, "g1", value_fen=700)
    url = f"{live_server}/api/v1/rewards/{reward.id}"

    def approve(i: int) -> httpx.Response:
        return httpx.post(
            f"{url}/approve",
            json={"note": f"op{i}"},
            headers={**admin_headers, "Idempotency-Key": "ap"},
            timeout=60,
        )

    def issue(i: int) -> httpx.Response:
        return httpx.post(
            f"{url}/issue", json={"idempotency_key": f"issue-{i}"}, headers=admin_headers, timeout=60
        )

    with ThreadPoolExecutor(max_workers=25) as pool:
        approvals = list(pool.map(approve, range(50)))
        issues = list(pool.map(issue, range(30)))
    assert {r.status_code for r in approvals} == {200}
    assert {r.json()["state"] for r in approvals} == {"approved"}
    assert sorted(r.status_code for r in issues) == [200] + [409] * 29
    assert {r.json()["code"] for r in issues if r.status_code == 409} == {"illegal_transition"}
    with session_scope() as s:
        moves = [(e["kind"], e["to_state"]) for e in service.entries(s)]
        assert moves == [("grant", "pending"), ("transition", "approved"), ("transition", "issued")]
    verify = httpx.get(f"{live_server}/api/v1/ledger/verify", headers=admin_headers, timeout=30).json()
    assert verify["ok"] and verify["entries_checked"] == 3
