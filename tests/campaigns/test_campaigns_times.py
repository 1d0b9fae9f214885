"""Times at the edges carry their zone: `Z`, `+08:00` or naive (= the configured display zone,
Asia/Shanghai); inside they are naive UTC. Over HTTP on SQLite and PostgreSQL, and on the CLI."""

from __future__ import annotations

import json

import pytest
from campaign_helpers import Api, rules
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from liebian.campaigns.common import rules_of
from liebian.campaigns.models import CampaignVersion
from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.identity.models import IdentityLink
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


@pytest.mark.parametrize(
    ("cid", "sent", "utc"),
    [
        ("zulu", "2099-12-31T00:00:00Z", "2099-12-31T00:00:00Z"),
        ("offset", "2099-12-31T08:00:00+08:00", "2099-12-31T00:00:00Z"),
        ("naive", "2099-12-31T08:00:00", "2099-12-31T00:00:00Z"),  # naive: Shanghai time
    ],
)
def test_launch_with_a_zoned_end(api: Api, cid: str, sent: str, utc: str) -> None:
    doc = rules("double_sided", end_at=sent, invite_ttl_days=365 * 100)
    created = api.c.post("/api/v1/campaigns", json={"id": cid, "rules": doc})
    assert created.status_code == 201, created.text
    assert created.json()["rules"]["end_at"] == utc
    launched = api.c.post(f"/api/v1/campaigns/{cid}/launch")
    assert launched.status_code == 200, launched.text  # was 500: offset-naive vs offset-aware
    assert launched.json()["status"] == "live"
    with session_scope() as s:
        stored = json.loads(s.scalar(select(CampaignVersion.rules).where(CampaignVersion.campaign_id == cid)))
        assert stored["end_at"] == utc
        assert rules_of(s, cid, 1, cache=False).end_at.isoformat() == utc.removesuffix("Z")
    # the invite of a campaign ending at a zoned time expires then, naive UTC inside
    invite = api.invite(cid, "alice")
    assert invite["expires_at"] == utc


def test_a_zoned_start_schedules_and_an_old_stored_naive_time_stays_utc(api: Api) -> None:
    doc = rules("double_sided", start_at="2099-01-01T09:00:00+08:00", end_at="2099-02-01T00:00:00Z")
    api.c.post("/api/v1/campaigns", json={"id": "sched", "rules": doc})
    r = api.c.post("/api/v1/campaigns/sched/launch")
    assert r.status_code == 200 and r.json()["status"] == "scheduled", r.text
    assert r.json()["rules"]["start_at"] == "2099-01-01T01:00:00Z"
    with session_scope() as s:  # a version stored before times carried a zone: naive there was UTC
        v = s.scalar(select(CampaignVersion).where(CampaignVersion.campaign_id == "sched"))
        assert v is not None
        v.rules = v.rules.replace("2099-01-01T01:00:00Z", "2099-01-01T01:00:00")
    with session_scope() as s:
        assert rules_of(s, "sched", 1, cache=False).start_at.isoformat() == "2099-01-01T01:00:00"


def test_a_conversion_time_with_an_offset(api: Api) -> None:
    api.create(rules("double_sided"), "conv")
    code = api.invite("conv", "alice")["code"]
    assert api.accept(code, "bob").status_code == 201
    r = api.order("conv", "bob", "o-1", ts="2026-12-06T20:00:00+08:00")
    assert r.status_code == 200, r.text
    assert r.json()["ts"] == "2026-12-06T12:00:00Z"


def test_a_malformed_time_is_a_422_naming_the_field(api: Api) -> None:
    r = api.c.post("/api/v1/campaigns", json={"rules": rules("double_sided", end_at="31.12.2026")})
    assert r.status_code == 422
    assert any(e["field"] == "end_at" for e in r.json()["errors"]), r.text


def test_cli_times_take_a_zone(store: str) -> None:
    runner = CliRunner()
    for when in ("2026-12-06T08:00:00Z", "2026-12-06T16:00:00+08:00", "2026-12-06 16:00", "2026-12-06"):
        out = runner.invoke(cli_app, ["ledger", "release", "--as-of", when])
        assert out.exit_code == 0, out.output
    bad = runner.invoke(cli_app, ["ledger", "release", "--as-of", "yesterday"])
    assert bad.exit_code == 2 and "not a time" in bad.output


@pytest.mark.parametrize("sent", ["2026-06-01T00:00:00Z", "2026-06-01T08:00:00+08:00", "2026-06-01T08:00:00"])
def test_link_evidence_time_with_a_zone_is_stored_as_utc(api: Api, sent: str) -> None:
    body = {
        "a": {"id_type": "unionid", "id": f"u-{len(sent)}"},
        "b": {"id_type": "device_id", "id": f"d-{len(sent)}"},
        "observed_at": sent,
    }
    r = api.c.post("/api/v1/identities/link", json=body)
    assert r.status_code == 200, r.text
    with session_scope() as s:
        observed = s.scalar(select(IdentityLink.observed_at).order_by(IdentityLink.id.desc()).limit(1))
    assert observed is not None and observed.isoformat() == "2026-06-01T00:00:00"
