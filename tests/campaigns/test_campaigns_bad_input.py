"""Bad input gets a clear 4xx naming the problem, and nothing is written (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update

from liebian.campaigns import outbox
from liebian.campaigns.models import Invite
from liebian.db.base import Base, utcnow
from liebian.db.migrate import import_all_models
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


def snapshot() -> dict[str, int]:
    """Row counts of every table of the operational store and of the warehouse's event tables, with
    the campaign outbox flushed first: a row a refused request wrote shows up as a change wherever
    it is, and the server's own flusher cannot move rows between two snapshots (one outbox row may
    become an event and a referral edge)."""
    import_all_models()
    with session_scope() as s:
        outbox.flush_warehouse(s)
    with session_scope() as s:
        counts = {
            name: s.scalar(select(func.count()).select_from(t)) for name, t in Base.metadata.tables.items()
        }
    with warehouse.connect() as con:
        for table in ("events", "referral_edges"):
            counts[f"warehouse.{table}"] = con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return counts


@pytest.fixture
def live(api: Api) -> dict:
    api.create(rules("double_sided"), "ds")
    invite = api.invite("ds", "alice")
    assert api.accept(invite["code"], "bob").status_code == 201
    return invite


def refused(response, status: int, code: str, field: str | None = None) -> dict:
    assert response.status_code == status, response.text
    body = response.json()
    assert body["code"] == code and body["detail"]
    if field:
        assert field in [e["field"] for e in body["errors"]], body
    return body


def test_unknown_malformed_forged_and_expired_codes(api: Api, live: dict) -> None:
    code = live["code"]
    before = snapshot()
    refused(api.accept("a" * 23, "carl"), 404, "unknown_code", "code")
    refused(api.accept("not-a-code", "carl"), 400, "malformed_code", "code")
    forged = code[:13] + ("a" if code[13] != "a" else "b") + code[14:]
    refused(api.accept(forged, "carl"), 400, "forged_code", "code")
    refused(api.click(forged), 400, "forged_code")
    assert snapshot() == before
    with session_scope() as s:
        s.execute(update(Invite).values(expires_at=utcnow() - timedelta(minutes=1)))
    before = snapshot()
    body = refused(api.accept(code, "carl"), 410, "expired_code", "code")
    assert "expired" in body["detail"]
    refused(api.click(code), 410, "expired_code")
    assert snapshot() == before


def test_own_invite_twice_and_not_new(api: Api, live: dict) -> None:
    code = live["code"]
    before = snapshot()
    refused(api.accept(code, "alice"), 409, "own_invite", "code")
    # the inviter under another identifier of the same person is still the inviter
    r = api.c.post(
        "/api/v1/invites/accept",
        json={"code": code, "id_type": "openid", "id": "o-x", "other_ids": {"unionid": "alice"}},
    )
    refused(r, 409, "own_invite", "code")
    assert snapshot() == before
    refused(api.accept(code, "bob"), 409, "already_accepted", "code")
    dave_code = api.invite("ds", "dave")["code"]
    before = snapshot()
    refused(api.accept(dave_code, "bob"), 409, "already_accepted", "code")  # first touch keeps alice
    api.c.post("/api/v1/campaigns", json={"id": "other", "rules": rules("double_sided")})
    api.c.post("/api/v1/campaigns/other/launch")
    other_code = api.invite("other", "erin")["code"]
    before = snapshot()
    body = refused(api.accept(other_code, "bob"), 409, "friend_not_new", "unionid")
    assert "unionid seen before" in body["detail"]
    assert snapshot() == before


def test_unknown_order_campaign_and_identifier(api: Api, live: dict) -> None:
    before = snapshot()
    refused(api.refund("ds", "no-such-order"), 404, "unknown_order", "order_id")
    refused(api.order("nope", "bob", "o1"), 404, "unknown_campaign", "campaign_id")
    refused(
        api.c.post("/api/v1/invites/accept", json={"code": live["code"], "id_type": "email", "id": "x"}),
        422,
        "bad_identifier",
        "id_type",
    )
    r = api.c.post(
        "/api/v1/campaigns/ds/conversions",
        json={"id_type": "unionid", "id": "bob", "order_id": "o", "amount_fen": -5},
    )
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "amount_fen"
    refused(
        api.c.get("/api/v1/campaigns/ds/progress", params={"id_type": "unionid", "id": "ghost"}),
        404,
        "unknown_participant",
        "id",
    )
    assert snapshot() == before


@pytest.mark.parametrize(
    ("overrides", "fields"),
    [
        (
            {
                "tiers": [
                    {"threshold": 3, "reward": {"code": "A", "value_fen": 100}},
                    {"threshold": 2, "reward": {"code": "B", "value_fen": 200}},
                ]
            },
            {"tiers.1.threshold"},
        ),
        ({"start_at": "2026-05-02T00:00:00", "end_at": "2026-05-01T00:00:00"}, {"end_at"}),
        ({"per_inviter_cap": 0}, {"per_inviter_cap"}),
        ({"budget_fen": 100}, {"budget_fen"}),
        ({"tiers": []}, {"tiers"}),
        ({"qualifying_event": {"kind": "order_min_amount"}}, {"qualifying_event.min_amount_fen"}),
        ({"per_inviter_cap": "three"}, {"per_inviter_cap"}),
        ({"colour": "red"}, {"colour"}),
    ],
)
def test_contradictory_rules_are_refused_naming_the_fields(api: Api, overrides: dict, fields: set) -> None:
    before = snapshot()
    r = api.c.post("/api/v1/campaigns", json={"id": "bad", "rules": rules("invite_task", **overrides)})
    assert r.status_code == 422, r.text
    assert fields <= {e["field"] for e in r.json()["errors"]}
    assert snapshot() == before


def test_compliance_blocks_launch(api: Api) -> None:
    doc = rules("double_sided", per_inviter_cap=None, rules_text="", consent_step=False, forced_sharing=True)
    api.create(doc, "risky", launch=False)
    report = api.c.get("/api/v1/campaigns/risky/compliance").json()
    assert not report["passed"]
    assert {h["rule"] for h in report["hard"]} == {"invite_cap", "rules_text", "consent", "forced_sharing"}
    before = snapshot()
    body = refused(api.c.post("/api/v1/campaigns/risky/launch"), 422, "compliance_failed", "per_inviter_cap")
    assert {"consent_step", "forced_sharing", "rules_text"} <= {e["field"] for e in body["errors"]}
    assert snapshot() == before
    assert api.c.get("/api/v1/campaigns/risky").json()["status"] == "draft"
    # Invites need a live campaign.
    r = api.c.post("/api/v1/campaigns/risky/invites", json={"id_type": "unionid", "id": "alice"})
    refused(r, 409, "campaign_not_live", "campaign_id")
    # Fixing the rules (a draft is edited in place) lets it launch; soft findings give a score.
    fixed = rules("double_sided", per_inviter_cap=5)
    assert api.c.put("/api/v1/campaigns/risky", json={"rules": fixed}).json()["version"] == 1
    report = api.c.get("/api/v1/campaigns/risky/compliance").json()
    assert report["passed"] and report["risk_score"] == 20 + 10 + 5  # cap above 3, no end date, phone
    assert api.c.post("/api/v1/campaigns/risky/launch").json()["status"] == "live"
