"""Through WeCom (issue #19): a friend added through a 联系我 state qualifies, leaves
(`del_follow_user`, the tier is revoked), and a second friend with the same state earns the tier
again. Before, the second add answered 500 on every retry (the ledger's idempotency conflict), so
WeCom's retries never recovered. A refusal of the ledger is an outcome, answered `success`."""

from __future__ import annotations

import sys
from pathlib import Path

from test_wecom_e2e import CB, STAY_RULES, contact_way, launch, post_event, progress
from wecom_helpers import envelope, event_xml

from liebian.db.session import session_scope
from liebian.rewards import service as rewards
from liebian.wecom import attribution

sys.path.insert(0, str(Path(__file__).parents[1] / "campaigns"))
from campaign_helpers import rules  # noqa: E402

ONE_TIER = [{"threshold": 1, "reward": {"code": "T1", "value_fen": 500}}]


def test_second_friend_after_churn_earns_the_tier_again(client):
    cid = launch(client, rules("invite_task", tiers=ONE_TIER, **STAY_RULES), "wecom-again")
    way = contact_way(client, cid, "oINVAGAIN")
    post_event(client, "add_external_contact", UserID="zhangsan", ExternalUserID="woF1", State=way["state"])
    assert progress(client, cid, "oINVAGAIN")["qualified"] == 1
    post_event(client, "del_follow_user", UserID="zhangsan", ExternalUserID="woF1")
    assert progress(client, cid, "oINVAGAIN")["qualified"] == 0

    plain = event_xml("add_external_contact", UserID="zhangsan", ExternalUserID="woF2", State=way["state"])
    for _ in range(2):  # WeCom retries the message under new nonces: both answered success
        params, body = envelope(plain)
        r = client.post(CB, params=params, content=body)
        assert r.status_code == 200 and r.text == "success", r.text
    p = progress(client, cid, "oINVAGAIN")
    assert p["qualified"] == 1
    assert sorted((r["reward_code"], r["state"]) for r in p["rewards"]) == [
        ("T1", "pending"),
        ("T1", "revoked"),
    ]
    with session_scope() as s:
        assert rewards.verify_chain(s).ok


def test_a_ledger_refusal_is_an_outcome_not_a_500(client, monkeypatch):
    """Whatever the ledger refuses while qualifying the add (here: a conflicting idempotency key),
    WeCom gets `success` and the callback's outcome names the refusal; nothing half-done stays."""
    cid = launch(client, rules("invite_task", tiers=ONE_TIER, **STAY_RULES), "wecom-refusal")
    way = contact_way(client, cid, "oINVREF")

    def refuse(*_args, **_kwargs):
        raise rewards.LedgerError("idempotency_conflict", "idempotency_key 'x' was used for reward 1")

    monkeypatch.setattr(attribution.flows, "report_conversion", refuse)
    post_event(client, "add_external_contact", UserID="zhangsan", ExternalUserID="woF3", State=way["state"])
    (cb,) = client.get("/api/v1/wecom/callbacks", headers=client.operator).json()
    assert cb["outcome"] == "attributed" and cb["detail"]["qualify_error"] == "idempotency_conflict"
    assert progress(client, cid, "oINVREF")["qualified"] == 0
