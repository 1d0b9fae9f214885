"""Review queue end to end: campaign referrals held inline or flagged by the graph scan become cases;
approve / reject flow into the reward ledger, idempotently and audited; fraud rate; API and CLI."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from typer.testing import CliRunner

from liebian.campaigns import outbox
from liebian.campaigns.models import Referral
from liebian.cli import app as cli_app
from liebian.db.base import utcnow
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.fraud import service
from liebian.fraud.models import FraudAudit, FraudCase
from liebian.identity import service as identity
from liebian.rewards import service as rewards
from liebian.web.app import create_app

VIRTUAL = "17012345678"
NORMAL = "13912345678"


@pytest.fixture
def client(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def make_campaign(client, cid: str) -> None:
    doc = {
        "type": "double_sided", "title": "邀友有礼", "rules_text": "每邀请一位新朋友完成首单即可获得奖励",
        "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
        "per_inviter_cap": 10, "budget_fen": 1_000_000, "hold_days": 7, "claim_window_days": 7,
        "collects": ["phone"], "consent_step": True,
    }  # fmt: skip
    assert client.post("/api/v1/campaigns", json={"id": cid, "rules": doc}).status_code == 201
    assert client.post(f"/api/v1/campaigns/{cid}/launch").status_code == 200


def join(client, cid: str, inviter: str, friend: str, phone: str, order_id: str) -> dict:
    code = client.post(f"/api/v1/campaigns/{cid}/invites", json={"id_type": "unionid", "id": inviter}).json()[
        "code"
    ]
    r = client.post(
        "/api/v1/invites/accept",
        json={"code": code, "id_type": "unionid", "id": friend, "other_ids": {"phone": phone}},
    )
    assert r.status_code == 201, r.text
    o = client.post(
        f"/api/v1/campaigns/{cid}/conversions",
        json={"id_type": "unionid", "id": friend, "order_id": order_id, "amount_fen": 9900},
    )
    assert o.status_code == 200, o.text
    return r.json()


def campaign_rewards(cid: str) -> list[rewards.RewardView]:
    with session_scope() as s:
        return rewards.list_rewards(s, campaign_id=cid, limit=1000)


def open_cases() -> list[dict]:
    with session_scope() as s:
        service.sync_held_referrals(s)
        return service.list_cases(s)


def audit_count(case_id: int) -> int:
    with session_scope() as s:
        return s.scalar(select(func.count()).select_from(FraudAudit).where(FraudAudit.case_id == case_id))


def test_held_referral_is_queued_and_rejecting_rejects_its_rewards(client) -> None:
    make_campaign(client, "c1")
    accepted = join(client, "c1", "alice", "bob", VIRTUAL, "o-1")
    assert accepted["state"] == "held" and [s["code"] for s in accepted["signals"]] == ["VIRTUAL_PHONE"]
    held = campaign_rewards("c1")
    assert len(held) == 2 and all(r.held_for_review and r.state == "pending" for r in held)

    cases = open_cases()
    assert len(cases) == 1
    case = cases[0]
    assert case["source"] == "inline" and case["referral_id"] == accepted["referral_id"]
    assert case["reasons"][0]["code"] == "VIRTUAL_PHONE" and "虚拟运营商" in case["reasons"][0]["text"]
    assert open_cases()[0]["id"] == case["id"]  # syncing again opens nothing new

    with session_scope() as s:
        out = service.decide(
            s, case["id"], "reject", actor="reviewer-li", note="号段异常", idempotency_key="k1"
        )
    assert out["changed"] and out["status"] == "rejected"
    assert sorted(out["effects"]["rejected"]) == sorted(r.id for r in held)
    assert {r.state for r in campaign_rewards("c1")} == {"rejected"}
    # the referral itself leaves the held state: blocked, no longer counted for the inviter
    assert out["effects"]["referral_state"] == "blocked"
    with session_scope() as s:
        referral = s.get(Referral, accepted["referral_id"])
        assert referral.state == "blocked" and not referral.counted
    n_audit = audit_count(case["id"])

    # the same request again (same key) or the same decision again: no new writes
    with session_scope() as s:
        again = service.decide(
            s, case["id"], "reject", actor="reviewer-li", note="号段异常", idempotency_key="k1"
        )
        twice = service.decide(s, case["id"], "reject", actor="reviewer-wang")
    assert not again["changed"] and again["effects"]["rejected"] == out["effects"]["rejected"]
    assert not twice["changed"]
    assert audit_count(case["id"]) == n_audit
    # the opposite decision is refused; a key reused for another decision is refused
    with session_scope() as s, pytest.raises(service.FraudError) as exc:
        service.decide(s, case["id"], "approve", actor="reviewer-wang")
    assert exc.value.status == 409 and exc.value.code == "already_decided"
    with session_scope() as s, pytest.raises(service.FraudError) as exc:
        service.decide(s, case["id"], "approve", actor="reviewer-wang", idempotency_key="k1")
    assert exc.value.code == "idempotency_conflict"

    with session_scope() as s:
        detail = service.get_case(s, case["id"])
    assert [a["action"] for a in detail["audit"]] == ["open", "reject"]
    assert detail["audit"][1]["actor"] == "reviewer-li" and detail["audit"][1]["note"] == "号段异常"
    assert detail["reviewer"] == "reviewer-li"


def test_approving_releases_the_review_hold(client) -> None:
    make_campaign(client, "c2")
    join(client, "c2", "carol", "dave", VIRTUAL.replace("170", "171"), "o-2")
    case = open_cases()[0]
    with session_scope() as s:
        out = service.decide(s, case["id"], "approve", actor="reviewer-li", note="真实用户，已电话核实")
    assert out["status"] == "approved" and len(out["effects"]["released"]) == 2
    assert out["effects"]["referral_state"] == "accepted"
    after = campaign_rewards("c2")
    assert all(not r.held_for_review and r.state == "pending" for r in after)
    # released: once the hold period is over the ledger approves them as usual
    with session_scope() as s:
        assert rewards.release_due(s, utcnow() + timedelta(days=8)) == 2
    assert {r.state for r in campaign_rewards("c2")} == {"approved"}


def test_bulk_decisions_and_fraud_rate(client) -> None:
    make_campaign(client, "c3")
    for i, prefix in enumerate(("170", "171", "165")):
        join(client, "c3", f"boss{i}", f"kid{i}", f"{prefix}1234567{i}", f"o-3-{i}")
    join(client, "c3", "boss9", "honest", NORMAL, "o-3-9")
    cases = open_cases()
    assert len(cases) == 3
    ids = [c["id"] for c in cases]
    with session_scope() as s:
        out = service.bulk_decide(
            s, [*ids[:2], 999999], "reject", actor="reviewer-li", idempotency_key="bulk-1"
        )
    assert [(o["case_id"], o["changed"]) for o in out] == [(ids[0], True), (ids[1], True), (999999, False)]
    assert "no fraud case 999999" in out[2]["error"]
    with session_scope() as s:
        again = service.bulk_decide(s, ids[:2], "reject", actor="reviewer-li", idempotency_key="bulk-1")
        assert [o["changed"] for o in again] == [False, False]
        rate = service.fraud_rate(s)
        by_channel = service.fraud_rate(s, by="channel")
    # 2 rejected of 4 referrals in c3 (independent count from the campaign's own referral list)
    referrals = client.get("/api/v1/campaigns/c3/referrals").json()
    n_refs = len(referrals) if isinstance(referrals, list) else len(referrals["referrals"])
    assert n_refs == 4
    assert [_counts(r) for r in rate] == [
        {"campaign_id": "c3", "referrals": 4, "rejected": 2, "fraud_rate": 0.5}
    ]
    assert [(r["source"], r["title"]) for r in rate] == [("engine", "邀友有礼")]
    assert sum(r["referrals"] for r in by_channel) == 4 and sum(r["rejected"] for r in by_channel) == 2


def test_graph_scan_opens_cases_for_campaign_referrals_once(client) -> None:
    make_campaign(client, "c4")
    accepted = join(client, "c4", "erin", "frank", NORMAL, "o-4")
    assert accepted["state"] == "accepted"
    with session_scope() as s:
        outbox.flush_warehouse(s)
        erin = identity.find_person(s, "unionid", "erin")
        frank = identity.find_person(s, "unionid", "frank")
    with warehouse.connect() as con:
        # an imported edge from another channel closes the cycle frank → erin
        con.execute(
            "INSERT INTO referral_edges VALUES (?, ?, 'c_other', 'wecom', now()::TIMESTAMP, 'imported-1')",
            [frank, erin],
        )
    with session_scope() as s, warehouse.connect() as con:
        first = service.run_scan(s, con)
        assert first.cases_opened == 2 and first.cases_updated == 0
        second = service.run_scan(s, con)
        assert second.cases_opened == 0 and second.cases_updated == 0
        case = s.scalar(select(FraudCase).where(FraudCase.campaign_id == "c4"))
    assert case.source == "graph" and case.referral_id == accepted["referral_id"]
    assert json.loads(case.reasons)[0] in ("CYCLE", "CIRCULAR") and case.score >= 90
    with session_scope() as s:
        out = service.decide(s, case.id, "reject", actor="reviewer-li")
    assert len(out["effects"]["rejected"]) == 2
    with session_scope() as s, warehouse.connect() as con:
        service.run_scan(s, con)  # a later scan leaves the decided case alone
        assert s.get(FraudCase, case.id).status == "rejected"


def test_review_api(client) -> None:
    make_campaign(client, "c5")
    join(client, "c5", "gina", "hank", VIRTUAL, "o-5a")
    join(client, "c5", "gina", "ivan", VIRTUAL.replace("0123", "0999"), "o-5b")
    open_cases()
    listed = client.get("/api/v1/fraud/cases", params={"lang": "en"}).json()
    assert len(listed) == 2 and listed[0]["reasons"][0]["text"].startswith(
        "phone number in a virtual-operator"
    )
    one = listed[0]["id"]
    assert client.get(f"/api/v1/fraud/cases/{one}").json()["audit"][0]["action"] == "open"
    assert client.get("/api/v1/fraud/cases/424242").status_code == 404

    # the reviewer is the authenticated caller: a body that names one is refused, naming the field
    bad = client.post(f"/api/v1/fraud/cases/{one}/reject", json={"reviewer": "li", "note": "x"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "reviewer"
    r = client.post(
        f"/api/v1/fraud/cases/{one}/reject", json={"note": "号段异常"}, headers={"Idempotency-Key": "h-1"}
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    caller = client.get("/api/v1/auth/me").json()["name"]
    assert r.json()["reviewer"] == caller and r.json()["note"] == "号段异常"
    r2 = client.post(
        f"/api/v1/fraud/cases/{one}/reject", json={"note": "号段异常"}, headers={"Idempotency-Key": "h-1"}
    )
    assert r2.status_code == 200 and r2.json()["changed"] is False
    conflict = client.post(f"/api/v1/fraud/cases/{one}/approve", json={})
    assert conflict.status_code == 409 and conflict.json()["code"] == "already_decided"

    other = listed[1]["id"]
    bulk = client.post("/api/v1/fraud/cases/bulk", json={"action": "approve", "case_ids": [other]})
    assert bulk.status_code == 200 and bulk.json()[0]["changed"] is True
    assert client.get("/api/v1/fraud/cases").json() == []
    assert len(client.get("/api/v1/fraud/cases", params={"status": "all"}).json()) == 2
    rate = client.get("/api/v1/fraud/rate").json()
    assert [_counts(r) for r in rate] == [
        {"campaign_id": "c5", "referrals": 2, "rejected": 1, "fraud_rate": 0.5}
    ]
    assert [(r["source"], r["title"]) for r in rate] == [("engine", "邀友有礼")]
    codes = {r["code"] for r in client.get("/api/v1/fraud/reasons").json()}
    assert {"VIRTUAL_PHONE", "DEVICE_FARM", "STAR_CHURN", "CYCLE", "SHARED_IP_UA"} <= codes
    assert client.get("/api/v1/fraud/cases", params={"status": "nonsense"}).status_code == 422


def test_review_cli(client) -> None:
    make_campaign(client, "c6")
    join(client, "c6", "jack", "kate", VIRTUAL, "o-6a")
    join(client, "c6", "jack", "liam", VIRTUAL.replace("0123", "0888"), "o-6b")
    with session_scope() as s:  # as the server's flusher may have done already: no race with it
        outbox.flush_warehouse(s)
    runner = CliRunner()
    out = runner.invoke(cli_app, ["fraud", "scan", "--format", "json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    # the graph scores the two referrals (their edges are in the warehouse) and opens their cases;
    # the inline holds then find them open: one case each either way
    assert (report["cases_opened"], report["held_synced"]) == (2, 0)
    queue = json.loads(runner.invoke(cli_app, ["fraud", "queue", "--format", "json"]).stdout)
    assert len(queue) == 2 and all(
        q["reasons"] == "VIRTUAL_PHONE" and "虚拟运营商" in q["texts"] for q in queue
    )
    ids = [str(q["id"]) for q in queue]
    # the reviewer is who runs the command, not a name the caller types
    named = runner.invoke(cli_app, ["fraud", "reject", *ids, "--reviewer", "li"])
    assert named.exit_code == 2 and "--reviewer" in named.output
    rej = runner.invoke(cli_app, ["fraud", "reject", *ids, "--note", "批量", "--format", "json"])
    assert rej.exit_code == 0, rej.output
    assert [r["changed"] for r in json.loads(rej.stdout)] == [True, True]
    with session_scope() as s:
        assert service.get_case(s, int(ids[0]), "en")["reviewer"] == "local:bootstrap"
    again = runner.invoke(cli_app, ["fraud", "approve", ids[0]])
    assert again.exit_code == 2 and "already rejected" in again.output
    rate = json.loads(runner.invoke(cli_app, ["fraud", "rate", "--format", "json"]).stdout)
    assert [_counts(r) for r in rate] == [
        {"campaign_id": "c6", "referrals": 2, "rejected": 2, "fraud_rate": 1.0}
    ]
    assert [(r["source"], r["title"]) for r in rate] == [("engine", "邀友有礼")]
    missing = runner.invoke(cli_app, ["fraud", "evaluate", "--ground-truth", "/nonexistent/gt.json"])
    assert missing.exit_code == 2 and "--ground-truth" in missing.output


def test_scan_and_person_risk_api(client) -> None:
    make_campaign(client, "c7")
    join(client, "c7", "mona", "nick", NORMAL, "o-7")
    with session_scope() as s:
        outbox.flush_warehouse(s)
        mona = identity.find_person(s, "unionid", "mona")
        nick = identity.find_person(s, "unionid", "nick")
    with warehouse.connect() as con:
        con.execute(
            "INSERT INTO referral_edges VALUES (?, ?, 'c_x', 'wecom', now()::TIMESTAMP, 'imp-7')",
            [nick, mona],
        )
    scan = client.post("/api/v1/fraud/scan")
    assert scan.status_code == 200 and scan.json()["cases_opened"] == 2 and scan.json()["referrals"] == 2
    risk = client.get(f"/api/v1/fraud/persons/{mona}").json()
    assert risk["reasons"] == ["CYCLE"] and risk["score"] == 90.0
    assert client.get("/api/v1/fraud/persons/12345").json() == {
        "person_id": 12345, "score": 0.0, "reasons": [], "details": []
    }  # fmt: skip


def _counts(rate_row: dict) -> dict:
    """A fraud-rate row without its title and source (checked beside)."""
    return {k: v for k, v in rate_row.items() if k not in ("title", "source")}
