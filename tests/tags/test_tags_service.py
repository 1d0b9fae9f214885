"""Tags against real stores: versioned definitions, recomputation history, health score, job, HTTP, CLI."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.jobs import registry, run_job
from liebian.tags import service
from liebian.tags.service import TagError
from liebian.web.app import create_app

END = datetime(2026, 3, 31, 12)


def _write(events=(), orders=(), edges=()):
    with warehouse.connect() as con:
        for person, days, event, channel in events:
            ts = END - timedelta(days=days)
            con.execute(
                "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id, ingested_at)"
                " VALUES (?, ?, ?, 'app', 'u', ?, ?, 'b', ?)",
                [f"e{person}-{days}-{event}-{channel}", ts, person, event, channel, ts],
            )
        for person, days, fen in orders:
            ts = END - timedelta(days=days)
            con.execute(
                "INSERT INTO orders VALUES (?, ?, ?, 'app', 'u', ?, 'CNY', 'paid', 'app', NULL, ?, NULL, NULL, 'b', ?,"
                " NULL, NULL, NULL)",
                [f"o{person}-{days}", ts, person, fen, ts, ts],
            )
        for inviter, invitee, days in edges:
            ts = END - timedelta(days=days)
            con.execute(
                "INSERT INTO referral_edges VALUES (?, ?, 'c1', 'wecom', ?, ?)",
                [inviter, invitee, ts, f"x{invitee}"],
            )


@pytest.fixture
def people(store):
    # 1: wecom, 3 orders in 90 days; 2: app, 1 order; 3: wecom, events only, silent 60 days; 4: referred by 1
    _write(
        events=[(1, 100, "page_view", "wecom"), (1, 2, "page_view", "wecom"), (1, 1, "checkin", "wecom"),
                (2, 50, "app_open", "app"), (2, 3, "app_open", "app"),
                (3, 90, "page_view", "wecom"), (3, 60, "page_view", "wecom"),
                (4, 5, "signup", "douyin"), (4, 0, "invite_share", "douyin")],
        orders=[(1, 80, 5000), (1, 40, 7000), (1, 2, 3000), (2, 10, 20000)],
        edges=[(1, 4, 5)],
    )  # fmt: skip
    return store


def _members(session, name):
    return set(service.members(session, name))


def test_versions_recompute_and_history(people):
    with session_scope() as s:
        v1 = service.define_tag(s, "忠实企微", 'orders_90d >= 3 and channel in ["wecom"]', "behaviour")
        assert v1.version == 1
        assert (
            service.define_tag(s, "忠实企微", 'orders_90d >= 3 and channel in ["wecom"]', "behaviour").id
            == v1.id
        )
        service.define_tag(s, "裂变", "referred == 1", "attribute")
    with session_scope() as s:
        run1 = service.recompute(s)
        assert run1["persons"] == 4
        assert run1["tags"]["忠实企微"] == {
            "version": 1,
            "level": "behaviour",
            "members": 1,
            "added": 1,
            "removed": 0,
            "retired": False,
        }
        assert _members(s, "忠实企微") == {1} and _members(s, "裂变") == {4}
    with session_scope() as s:
        v2 = service.define_tag(s, "忠实企微", "orders_90d >= 1", "behaviour", "loosened")
        assert v2.version == 2
    with session_scope() as s:
        run2 = service.recompute(s)
        assert _members(s, "忠实企微") == {1, 2}
        assert run2["tags"]["忠实企微"]["added"] == 1 and run2["tags"]["忠实企微"]["removed"] == 0
        hist = service.history(s, "忠实企微", person_id=1)
        # newest first: v2 open, v1 closed at the second run
        assert [(h.version, h.removed_at is None) for h in hist] == [(2, True), (1, False)]
        assert hist[1].removed_at == hist[0].assigned_at
        assert [t.tag for t in service.person_tags(s, 1)] == ["忠实企微"]
        versions = [t.version for t in service.list_tags(s, all_versions=True) if t.name == "忠实企微"]
        assert versions == [1, 2]
    with session_scope() as s:
        service.retire_tag(s, "忠实企微")
    with session_scope() as s:
        run3 = service.recompute(s)
        assert run3["tags"]["忠实企微"]["removed"] == 2 and _members(s, "忠实企微") == set()
        assert len(service.history(s, "忠实企微")) == 3  # the history stays
        assert [r.run_id for r in service.runs(s)] == [run3["run_id"], run2["run_id"], run1["run_id"]]


def test_new_data_moves_persons_between_tiers(people):
    with session_scope() as s:
        service.install_defaults(s)
        service.recompute(s)
        tiers = {t: _members(s, t) for t in service.TIERS}
    # 1: top spender with 3 orders → 高价值; 4: first seen 5 days ago → 新手; 3: silent 60 days → 沉默
    assert 1 in tiers["高价值"] and 4 in tiers["新手"] and 3 in tiers["沉默"]
    assert sum(len(v) for v in tiers.values()) == 4  # every person exactly one tier
    _write(events=[(3, -1, "checkin", "wecom")])  # person 3 comes back (a day after END)
    with session_scope() as s:
        service.recompute(s)
        assert 3 in _members(s, "活跃") and 3 not in _members(s, "沉默")
        moves = {(h.tag, h.removed_at is None) for h in service.history(s, person_id=3)}
        assert ("沉默", False) in moves and ("活跃", True) in moves


def test_bad_definitions_are_refused_with_the_reason(people):
    with session_scope() as s:
        with pytest.raises(TagError, match=r"position 12 \('\[\]'\)") as info:
            service.define_tag(s, "x", "channel in []", "attribute")
        assert info.value.detail["position"] == 12 and info.value.field == "rule"
        with pytest.raises(TagError, match="level: must be one of"):
            service.define_tag(s, "x", "referred == 1", "tier")
        with pytest.raises(TagError, match="not found"):
            service.retire_tag(s, "nope")


def test_health_score_by_hand():
    feats = pd.DataFrame(
        {"person_id": [1, 2, 3], "events_30d": [0, 10, 20], "spend_90d_fen": [0, 0, 500],
         "active_days_30d": [0, 15, 30], "recency_days": [30, 0, 0]}
    )  # fmt: skip
    got = service.health_scores(feats).set_index("person_id")
    # person 3: interaction pct 1, spending pct 1, active time 0.5·1 + 0.5·1 → 100
    assert got.loc[3, "health_score"] == pytest.approx(100)
    # person 2: interaction pct 2/3, spending 0, active 1 → 100·(0.4·2/3 + 0.3) = 56.7
    assert got.loc[2, "health_score"] == pytest.approx(100 * (0.4 * 2 / 3 + 0.3), abs=0.05)
    # person 1: nothing but the recency half of active time: 0.5·e^(−1) → 100·0.3·0.184 = 5.5
    assert got.loc[1, "health_score"] == pytest.approx(100 * 0.3 * 0.5 * np.exp(-1), abs=0.05)
    assert got["health_band"].tolist() == ["预警", "一般", "健康"]


def test_recompute_job_is_registered_and_runs(people):
    assert "tags-recompute" in registry()
    result = run_job("tags-recompute")
    assert result["persons"] == 4 and result["tags"] == len(service.DEFAULT_TAGS)
    with session_scope() as s:
        assert _members(s, "裂变用户") == {4}


def test_http_and_cli(people, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        r = client.post("/api/v1/tags", json={"name": "x", "rule": "orders_90d >= ", "level": "behaviour"})
        assert r.status_code == 422
        err = r.json()["errors"][0]
        assert err["field"] == "rule" and err["position"] == 14 and "ends too early" in err["reason"]
        r = client.post(
            "/api/v1/tags", json={"name": "复购", "rule": "orders_90d >= 1", "level": "behaviour"}
        )
        assert r.status_code == 201 and r.json()["version"] == 1
        r = client.post("/api/v1/tags/recompute")
        assert r.status_code == 200 and r.json()["tags"]["复购"]["members"] == 2
        assert client.get("/api/v1/tags/复购/members").json()["person_ids"] == [1, 2]
        assert client.get("/api/v1/tags/nope/members").status_code == 404
        person = client.get("/api/v1/tags/persons/1").json()
        assert person["tags"][0]["tag"] == "复购" and 0 <= person["health"]["health_score"] <= 100
        assert client.get("/api/v1/tags/persons/999").status_code == 404
        hist = client.get("/api/v1/tags/history", params={"tag": "复购"}).json()
        assert {h["person_id"] for h in hist} == {1, 2}
        r = client.post("/api/v1/tags/validate", json={"rule": "channel > 1"})
        assert r.status_code == 422 and r.json()["errors"][0]["token"] == "1"
    runner = CliRunner()
    r = runner.invoke(cli_app, ["tags", "check", "orders_90d >", "--format", "json"])
    assert r.exit_code == 2 and json.loads(r.stdout)["position"] == 13
    r = runner.invoke(
        cli_app,
        [
            "tags",
            "define",
            "企微",
            "--rule",
            'channel == "wecom"',
            "--level",
            "attribute",
            "--format",
            "json",
        ],
    )
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["version"] == 1
    r = runner.invoke(cli_app, ["tags", "recompute", "--format", "json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["tags"]["企微"]["members"] == 2
    r = runner.invoke(cli_app, ["tags", "history", "--person", "3", "--format", "json"])
    assert [h["tag"] for h in json.loads(r.stdout)] == ["企微"]
