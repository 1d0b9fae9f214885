"""Operator-entered costs per campaign and period: stored, listed, removed over HTTP and the CLI,
validated at the edge, and counted in the KPI sheet's costs (CAC, ROI) pro-rated by days."""

from __future__ import annotations

import json
from datetime import date
from fractions import Fraction

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.analytics.common import Filters
from liebian.cli import app as cli
from liebian.costs import service
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.schemas import MAX_FEN
from liebian.web.app import create_app
from shared_helpers import make_api_key

# (campaign, category, fen, first day, last day): the periods overlap November differently.
COSTS = [
    ("c1", "media", 3000, date(2026, 11, 1), date(2026, 11, 30)),  # 30 days: 100 a day
    ("c2", "staff", 1000, date(2026, 11, 11), date(2026, 11, 11)),  # one day
    (None, "tools", 700, date(2026, 10, 25), date(2026, 11, 3)),  # brand-wide, 10 days: 70 a day
    ("c3", "other", 1000, date(2026, 11, 1), date(2026, 11, 3)),  # 3 days: 333⅓ a day
]


def _enter_costs() -> None:
    with session_scope() as s:
        for campaign, category, fen, first, last in COSTS:
            service.add_cost(s, campaign_id=campaign, category=category, amount_fen=fen, start_date=first,
                             end_date=last, note="", actor="test")  # fmt: skip


def _by_hand(start: date | None, end: date | None, campaigns: tuple[str, ...] = ()) -> int:
    """Each cost's days inside [start, end] over its days, counted day by day, rounded half-up."""
    total = Fraction(0)
    for campaign, _, fen, first, last in COSTS:
        if campaigns and campaign not in campaigns:
            continue
        days = [first.toordinal() + i for i in range((last - first).days + 1)]
        inside = [
            d
            for d in days
            if (start is None or d >= start.toordinal()) and (end is None or d <= end.toordinal())
        ]
        total += Fraction(fen * len(inside), len(days))
    return int(total + Fraction(1, 2))  # half-up; every share is positive


CASES = [
    (date(2026, 11, 11), date(2026, 11, 20), ("c1",)),
    (date(2026, 11, 1), date(2026, 11, 30), ()),
    (date(2026, 11, 11), date(2026, 11, 11), ("c1", "c2")),
    (date(2026, 10, 25), date(2026, 10, 31), ()),
    (date(2026, 11, 1), date(2026, 11, 1), ("c3",)),
    (date(2026, 11, 1), date(2026, 11, 2), ("c3",)),
    (None, None, ("c1",)),
    (None, date(2026, 11, 2), ()),
    (date(2026, 12, 1), None, ()),
]


@pytest.mark.parametrize(("start", "end", "campaigns"), CASES)
def test_other_cost_is_pro_rated_by_days_of_the_period(store: str, start, end, campaigns) -> None:
    _enter_costs()
    got = service.other_cost_fen(Filters(start=start, end=end, campaigns=campaigns))
    assert got == _by_hand(start, end, campaigns)


def test_known_values_of_the_pro_rating(store: str) -> None:
    _enter_costs()

    def cost(start, end, *campaigns):
        return service.other_cost_fen(Filters(start=start, end=end, campaigns=campaigns))

    assert cost(date(2026, 11, 11), date(2026, 11, 20), "c1") == 1000
    assert cost(date(2026, 11, 1), date(2026, 11, 30)) == 3000 + 1000 + 210 + 1000
    assert cost(date(2026, 11, 1), date(2026, 11, 1), "c3") == 333  # 333.33 rounds down
    assert cost(date(2026, 11, 1), date(2026, 11, 2), "c3") == 667  # 666.67 rounds up
    assert cost(None, None, "c9") == 0  # a brand-wide cost is not a campaign's
    # a channel or segment filter does not narrow it: costs carry no channel or person
    assert service.other_cost_fen(Filters(channels=("wecom",), segment=frozenset({1}))) == 5700


def _insert_warehouse_rows() -> None:
    """Two new users of campaign c1 on 11 November (Shanghai), one of whom buys for 50,000 fen."""
    with warehouse.connect() as con:
        for n in (1, 2):
            con.execute(
                "INSERT INTO events BY NAME SELECT ? AS event_id, TIMESTAMP '2026-11-11 02:00:00' AS ts,"
                " ? AS person_id, 'app' AS id_type, ? AS user_id, 'register' AS event, 'app' AS channel,"
                " 'c1' AS campaign_id, 'b' AS batch_id, TIMESTAMP '2026-11-12' AS ingested_at",
                [f"e{n}", n, f"u{n}"],
            )
        con.execute(
            "INSERT INTO orders BY NAME SELECT 'o1' AS order_id, TIMESTAMP '2026-11-11 03:00:00' AS ts,"
            " 1 AS person_id, 'app' AS id_type, 'u1' AS user_id, 50000 AS amount_fen, 'CNY' AS currency,"
            " 'paid' AS status, TIMESTAMP '2026-11-11 03:00:00' AS status_ts, 'app' AS channel,"
            " 'c1' AS campaign_id, 'b' AS batch_id, TIMESTAMP '2026-11-12' AS ingested_at"
        )


def _value(kpis: dict, name: str):
    got = kpis[name]
    return got["value"] if isinstance(got, dict) and "value" in got else got


def test_entered_costs_reach_cac_and_roi_and_an_explicit_cost_overrides(store: str, admin_headers) -> None:
    _insert_warehouse_rows()
    params = {"start": "2026-11-11", "end": "2026-11-20", "campaign": "c1"}
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        before = client.get("/api/v1/analytics/kpis", params=params).json()
        assert _value(before, "other_cost_fen") == 0
        r = client.post("/api/v1/costs", json={"campaign_id": "c1", "category": "media", "amount_fen": 3000,
                                              "start_date": "2026-11-01", "end_date": "2026-11-30"})  # fmt: skip
        assert r.status_code == 201, r.text
        k = client.get("/api/v1/analytics/kpis", params=params).json()
        overridden = client.get("/api/v1/analytics/kpis", params={**params, "other_cost_fen": 5}).json()
    assert _value(k, "other_cost_fen") == 1000  # 10 of the cost's 30 days
    total = _value(k, "reward_cost_fen") + 1000
    assert _value(k, "total_cost_fen") == total
    new_users = _value(k, "new_users")
    assert new_users == 2
    assert _value(k, "cac_fen") == pytest.approx(total / new_users)
    assert _value(k, "roi") == pytest.approx((_value(k, "revenue_fen") - total) / total)
    assert _value(overridden, "other_cost_fen") == 5  # the explicit figure wins
    cli_out = CliRunner().invoke(cli, ["analyze", "kpis", "--start", "2026-11-11", "--end", "2026-11-20",
                                       "--campaign", "c1", "--format", "json"])  # fmt: skip
    assert cli_out.exit_code == 0, cli_out.output
    assert _value(json.loads(cli_out.stdout), "other_cost_fen") == 1000


def test_costs_over_http_add_list_remove(store: str, admin_headers) -> None:
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        body = {"campaign_id": "c_invite", "category": "staff", "amount_fen": 120000,
                "start_date": "2026-11-01", "end_date": "2026-11-07", "note": "两名兼职"}  # fmt: skip
        created = client.post("/api/v1/costs", json=body)
        assert created.status_code == 201, created.text
        cost = created.json()
        assert cost["created_by"] and {k: cost[k] for k in body} == body
        listed = client.get("/api/v1/costs", params={"campaign": "c_invite"}).json()
        assert [c["id"] for c in listed] == [cost["id"]]
        assert client.get("/api/v1/costs", params={"start": "2026-11-08"}).json() == []
        assert client.delete(f"/api/v1/costs/{cost['id']}").status_code == 200
        assert client.get("/api/v1/costs").json() == []
        gone = client.delete(f"/api/v1/costs/{cost['id']}")
        assert gone.status_code == 404 and gone.json()["code"] == "not_found"


GOOD = {"campaign_id": "c1", "category": "media", "amount_fen": 100, "start_date": "2026-11-01",
        "end_date": "2026-11-02"}  # fmt: skip


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"category": "lunch"}, "category"),
        ({"amount_fen": 0}, "amount_fen"),
        ({"amount_fen": MAX_FEN + 1}, "amount_fen"),
        ({"amount_fen": "1e3"}, "amount_fen"),
        ({"start_date": "2026-13-01"}, "start_date"),
        ({"end_date": "2026-10-31"}, "end_date"),  # before the start
        ({"start_date": "1900-01-01"}, "start_date"),
        ({"campaign_id": "<script>"}, "campaign_id"),
        ({"campaign_id": "x" * 65}, "campaign_id"),
        ({"note": "n" * 201}, "note"),
        ({"person": 1}, "person"),  # unknown fields are refused
    ],
)
def test_hostile_cost_input_is_refused_naming_the_field(store: str, admin_headers, change, field) -> None:
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        r = client.post("/api/v1/costs", json={**GOOD, **change})
        assert r.status_code == 422, r.text
        assert field in r.text
        assert client.get("/api/v1/costs").json() == []


def test_only_roles_that_run_campaigns_enter_costs(store: str) -> None:
    with TestClient(create_app(run_migrations=False)) as client:
        analyst = {"Authorization": f"Bearer {make_api_key('service', 'analyst')}"}
        operator = {"Authorization": f"Bearer {make_api_key('service', 'operator')}"}
        assert client.post("/api/v1/costs", json=GOOD, headers=analyst).status_code == 403
        assert client.post("/api/v1/costs", json=GOOD, headers=operator).status_code == 201


def test_costs_cli_add_list_remove(store: str) -> None:
    runner = CliRunner()
    added = runner.invoke(cli, ["costs", "add", "5000", "--category", "media", "--start", "2026-11-01",
                                "--end", "2026-11-10", "--campaign", "c1", "--format", "json"])  # fmt: skip
    assert added.exit_code == 0, added.output
    cost_id = json.loads(added.stdout)["id"]
    listed = runner.invoke(cli, ["costs", "list", "--format", "json"])
    assert [c["amount_fen"] for c in json.loads(listed.stdout)] == [5000]
    bad = runner.invoke(cli, ["costs", "add", "5000", "--category", "media", "--start", "2026-11-10",
                              "--end", "2026-11-01"])  # fmt: skip
    assert bad.exit_code == 2 and "end_date" in bad.output
    bad_category = runner.invoke(cli, ["costs", "add", "5", "--category", "food", "--start", "2026-11-01",
                                       "--end", "2026-11-01"])  # fmt: skip
    assert bad_category.exit_code == 2 and "category" in bad_category.output
    assert runner.invoke(cli, ["costs", "remove", str(cost_id)]).exit_code == 0
    missing = runner.invoke(cli, ["costs", "remove", str(cost_id)])
    assert missing.exit_code == 2 and f"cost {cost_id}" in missing.output
    assert json.loads(runner.invoke(cli, ["costs", "list", "--format", "json"]).stdout) == []
