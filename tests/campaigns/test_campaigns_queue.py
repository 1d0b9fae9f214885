"""The front ends' hot routes (accept, conversion) run their transactions in worker threads, at most
`at_once()` at once per event loop (issue #23: `AT_ONCE` on PostgreSQL, one on SQLite): a burst larger
than that is answered in full, each request as it would be alone, and no more transactions than that
overlap."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

from campaign_helpers import Api, rules
from fastapi.testclient import TestClient

from liebian.campaigns import api as campaigns_api
from liebian.campaigns import flows, verification
from liebian.web.app import create_app

N = 3 * campaigns_api.AT_ONCE


class _Overlap:
    """Wraps a flow: counts how many run at once, and on which threads."""

    def __init__(self, fn) -> None:
        self.fn, self.now, self.most, self.lock = fn, 0, 0, threading.Lock()
        self.threads: set[str] = set()

    def __call__(self, *args, **kwargs):
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
            self.threads.add(threading.current_thread().name)
        try:
            time.sleep(0.02)  # long enough for the burst to queue
            return self.fn(*args, **kwargs)
        finally:
            with self.lock:
                self.now -= 1


def _burst(fn) -> list:
    gate = threading.Barrier(N)

    def run(i: int):
        gate.wait()
        return fn(i)

    with ThreadPoolExecutor(max_workers=N) as pool:
        return list(pool.map(run, range(N)))


def test_a_burst_of_accepts_and_conversions_is_answered_in_full_a_few_at_once(
    store, admin_headers, monkeypatch
) -> None:
    accepts, reports = _Overlap(flows.accept_invite), _Overlap(verification.report)
    monkeypatch.setattr(flows, "accept_invite", accepts)
    monkeypatch.setattr(verification, "report", reports)
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        api = Api(client)
        api.create(rules("double_sided", risk_policy={"hold_at": 900, "block_at": 1000}), "queue")
        code = api.invite("queue", "alice")["code"]
        accepted = _burst(lambda i: api.accept(code, f"friend{i}"))
        converted = _burst(lambda i: api.order("queue", f"friend{i}", f"o{i}"))
    assert Counter(r.status_code for r in accepted) == {201: N}
    assert len({r.json()["friend_person_id"] for r in accepted}) == N
    assert Counter(r.status_code for r in converted) == {200: N}
    assert Counter(r.json()["status"] for r in converted) == {"qualified": N}
    # each friend's reward and the inviter's, once each
    assert sum(len(r.json()["grants"]) for r in converted) == 2 * N
    assert campaigns_api.at_once() == (1 if store == "sqlite" else campaigns_api.AT_ONCE)
    for wrapped in (accepts, reports):
        assert 1 <= wrapped.most <= campaigns_api.at_once()
        assert wrapped.threads == {"AnyIO worker thread"}  # in worker threads, not on the event loop


def test_the_hot_routes_are_tried_first_and_match_as_before(store, admin_headers) -> None:
    """Accept and conversion lead the campaign routes (a request tries them in order, issue #23);
    the paths they share with later routes still reach those for other methods."""
    paths = [getattr(route, "path", None) for route in campaigns_api.router.routes[:2]]
    assert paths == ["/api/v1/invites/accept", "/api/v1/campaigns/{campaign_id}/conversions"]
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        # GET of the accept path is the invite-info route's, for a code "accept" (malformed)
        assert client.get("/api/v1/invites/accept").json()["code"] == "malformed_code"
        assert client.get("/api/v1/campaigns/none/conversions").status_code == 405
