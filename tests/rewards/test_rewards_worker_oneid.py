"""The background worker (a real thread posting to a real receiver), the release endpoint with
`as_of`, and rewards that follow OneID merges."""

from __future__ import annotations

import json
import time
from datetime import timedelta

from fastapi.testclient import TestClient
from rewards_helpers import Receiver, grant

from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.identity.service import RawIdentifier
from liebian.rewards import service, webhooks, worker
from liebian.web.app import create_app


def test_background_worker_releases_and_delivers(sqlite_store):
    with Receiver() as rx:
        with session_scope() as s:
            webhooks.create_endpoint(s, rx.url, ["reward.approved"])
            grant(s, "g1", hold_until=utcnow() - timedelta(seconds=1))
            grant(s, "g2", hold_until=utcnow() + timedelta(days=7))
        assert worker.start_background_worker(interval=0.1) is True
        try:
            assert worker.start_background_worker(interval=0.1) is False  # one per process
            deadline = time.monotonic() + 20
            while not rx.requests and time.monotonic() < deadline:
                time.sleep(0.05)
        finally:
            worker.stop_background_worker()
        assert not worker.background_worker_running()
        assert [json.loads(r["body"])["type"] for r in rx.requests] == ["reward.approved"]
    with session_scope() as s:
        assert sorted(r.state for r in service.list_rewards(s)) == ["approved", "pending"]
        assert webhooks.list_deliveries(s)[0].status == "delivered"


def test_release_endpoint_as_of(sqlite_store, admin_headers):
    with session_scope() as s:
        grant(s, "g1", hold_until=utcnow() + timedelta(days=7))
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        assert client.post("/api/v1/ledger/release").json() == {"released": 0}
        later = (utcnow() + timedelta(days=8)).isoformat()
        assert client.post("/api/v1/ledger/release", params={"as_of": later}).json() == {"released": 1}


def test_rewards_follow_a_oneid_merge(sqlite_store, admin_headers):
    with session_scope() as s:
        ids = identity.resolve(s, [RawIdentifier("openid", "o-abc"), RawIdentifier("unionid", "u-xyz")])
        a, b = sorted(ids.values())
        grant(s, "on-a", person_id=a, value_fen=100)
        grant(s, "on-b", person_id=b, value_fen=250)
    with session_scope() as s:
        assert [r.value_fen for r in service.rewards_for(s, a)] == [100]
        identity.merge(s, a, b)
    with session_scope() as s:
        assert sorted(r.value_fen for r in service.rewards_for(s, a)) == [100, 250]
        assert sorted(r.value_fen for r in service.rewards_for(s, b)) == [100, 250]
        assert service.verify_chain(s).ok  # the chain was not rewritten
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        mine = client.get("/api/v1/my/rewards", params={"person_id": a}).json()
    assert mine["balances"] == [{"state": "pending", "value_fen": 350, "rewards": 2}]


def test_scheduled_jobs_release_and_deliver(sqlite_store):
    from liebian.jobs import registry, run_job

    assert {"ledger-release", "webhooks-deliver"} <= set(registry())
    with Receiver() as rx:
        with session_scope() as s:
            webhooks.create_endpoint(s, rx.url, ["reward.approved"])
            grant(s, "g1", hold_until=utcnow() - timedelta(seconds=1))
        assert run_job("ledger-release") == {"released": 1}
        assert run_job("webhooks-deliver") == {"attempted": 1}
        assert len(rx.requests) == 1
