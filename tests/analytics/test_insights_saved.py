"""Saved insights and dashboards over HTTP (SQLite and PostgreSQL): save, list, open, run — the run
answers what the analytics route of its kind answers; trends against plain Python; hostile params
are refused naming the field, never a 5xx."""

from __future__ import annotations

from collections import Counter
from datetime import date

import pytest
from fastapi.testclient import TestClient

from liebian.web.app import create_app

FUNNEL = {
    "steps": ["exposure", "page_view", "join_campaign", "order_paid"],
    "window_days": 3,
    "mode": "strict",
    "breakdown": "channel",
    "exclusions": [{"event": "app_open", "from_step": 1, "to_step": 3}],
    "filters": {"start": "2026-03-01", "end": "2026-03-07"},
}


@pytest.fixture
def client(admin_headers, rows, random_data, load):  # SQLite (rows' store); the store's SQL: below
    load()
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def test_saved_insights_and_dashboards_round_trip(client) -> None:
    r = client.post("/api/v1/insights", json={"name": "严格漏斗", "kind": "funnel", "params": FUNNEL})
    assert r.status_code == 201, r.text
    funnel = r.json()
    assert funnel["params"]["mode"] == "strict" and funnel["params"]["filters"]["channels"] == []
    r = client.post(
        "/api/v1/insights",
        json={"name": "weekly", "kind": "retention", "params": {"unit": "day", "periods": 3, "cohorts": 2}},
    )
    retention = r.json()
    assert [i["id"] for i in client.get("/api/v1/insights").json()] == [retention["id"], funnel["id"]]
    assert [i["id"] for i in client.get("/api/v1/insights?kind=funnel").json()] == [funnel["id"]]

    ran = client.get(f"/api/v1/insights/{funnel['id']}/result").json()
    api = client.get(
        "/api/v1/analytics/funnel",
        params={"steps": ",".join(FUNNEL["steps"]), "window_days": 3, "mode": "strict", "breakdown": "channel",
                "exclusion": "app_open:1:3", "start": "2026-03-01", "end": "2026-03-07"},
    ).json()  # fmt: skip
    assert ran["result"] == api and ran["insight"]["name"] == "严格漏斗"
    assert sum(s["persons"] for s in api["steps"] if s["step"] == 1) > 0

    r = client.post(
        "/api/v1/dashboards", json={"name": "周会", "insight_ids": [funnel["id"], retention["id"]]}
    )
    assert r.status_code == 201, r.text
    board = r.json()
    results = client.get(f"/api/v1/dashboards/{board['id']}/results").json()
    assert [x["insight"]["id"] for x in results] == [funnel["id"], retention["id"]]
    assert results[0]["result"] == api
    assert (
        results[1]["result"] == client.get("/api/v1/analytics/retention?unit=day&periods=3&cohorts=2").json()
    )

    # a deleted insight leaves every dashboard it was on
    assert client.delete(f"/api/v1/insights/{funnel['id']}").status_code == 200
    assert client.get(f"/api/v1/dashboards/{board['id']}").json()["insight_ids"] == [retention["id"]]
    assert client.get(f"/api/v1/insights/{funnel['id']}").status_code == 404
    r = client.put(f"/api/v1/dashboards/{board['id']}", json={"name": "周会", "insight_ids": [funnel["id"]]})
    assert r.status_code == 404 and r.json()["field"] == "insight_id"


def test_insights_and_dashboards_on_each_store(store, admin_headers) -> None:
    """Saving, listing, ordering and deleting on SQLite and PostgreSQL (no analysis run: no warehouse)."""
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        ids = [
            c.post("/api/v1/insights", json={"name": f"漏斗 {n}", "kind": "funnel", "params": FUNNEL}).json()[
                "id"
            ]
            for n in range(3)
        ]
        board = c.post("/api/v1/dashboards", json={"name": "看板", "insight_ids": ids[::-1]}).json()
        assert board["insight_ids"] == ids[::-1]
        r = c.put(
            f"/api/v1/insights/{ids[0]}", json={"name": "改名", "kind": "trends", "params": {"events": ["x"]}}
        )
        assert r.status_code == 200 and r.json()["params"]["interval"] == "day"
        assert c.delete(f"/api/v1/insights/{ids[1]}").status_code == 200
        assert c.get(f"/api/v1/dashboards/{board['id']}").json()["insight_ids"] == [ids[2], ids[0]]
        assert c.delete(f"/api/v1/dashboards/{board['id']}").status_code == 200
        assert c.get("/api/v1/dashboards").json() == []
        assert [i["name"] for i in c.get("/api/v1/insights").json()] == ["漏斗 2", "改名"]


def test_trends_count_events_and_persons_per_day(client, random_data) -> None:
    got = client.get(
        "/api/v1/analytics/trends",
        params={"event": ["page_view", "order_paid"], "start": "2026-03-01", "end": "2026-03-07"},
    ).json()
    days = [date(2026, 3, d).isoformat() for d in range(1, 8)]
    assert got["buckets"] == days
    events = Counter(e["local"].date().isoformat() for e in random_data.events if e["event"] == "page_view")
    persons = Counter(
        d for d, _ in {(e["local"].date().isoformat(), e["person_id"]) for e in random_data.events
                       if e["event"] == "page_view"}
    )  # fmt: skip
    paid = Counter(o["local"].date().isoformat() for o in random_data.orders if o["status"] == "paid")
    page_view, order_paid = got["series"]
    assert page_view["counts"] == [events[d] for d in days]
    assert page_view["persons"] == [persons[d] for d in days]
    assert order_paid["counts"] == [paid[d] for d in days]
    by_channel = client.get(
        "/api/v1/analytics/trends",
        params={"event": "page_view", "breakdown": "channel", "start": "2026-03-01", "end": "2026-03-07"},
    ).json()
    assert {s["breakdown"] for s in by_channel["series"]} == {"wecom", "douyin"}
    totals = [sum(s["counts"][i] for s in by_channel["series"]) for i in range(len(days))]
    assert totals == page_view["counts"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"steps": ["exposure"]}, "params.steps"),
        ({"steps": ["exposure"] * 50}, "params.steps"),
        ({"steps": ["exposure", "x' OR 1=1; --,="]}, "params.steps.1"),
        ({"steps": ["exposure", ""]}, "params.steps.1"),
        ({"steps": ["a", "b"], "window_days": 10**20}, "params.window_days"),
        ({"steps": ["a", "b"], "window_days": -1}, "params.window_days"),
        ({"steps": ["a", "b"], "mode": "sideways"}, "params.mode"),
        ({"steps": ["a", "b"], "breakdown": "person_id"}, "params.breakdown"),
        (
            {"steps": ["a", "b"], "exclusions": [{"event": "x", "from_step": 0, "to_step": 2}]},
            "params.exclusions.0.from_step",
        ),
        ({"steps": ["a", "b"], "filters": {"start": "2026-03-09", "end": "2026-03-01"}}, "params.filters"),
        ({"steps": ["a", "b"], "drop": "table"}, "params.drop"),
    ],
)
def test_hostile_builder_params_are_refused_naming_the_field(client, params, field) -> None:
    r = client.post("/api/v1/insights", json={"name": "x", "kind": "funnel", "params": params})
    assert r.status_code == 422, r.text
    assert any(e["reason"].startswith(field) or e["field"].startswith(field) for e in r.json()["errors"]), (
        r.json()
    )


def test_hostile_api_queries_answer_422_not_500(client) -> None:
    for query in (
        "/api/v1/analytics/funnel?steps=a,b&mode=x",
        "/api/v1/analytics/funnel?steps=a,b&exclusion=nope",
        "/api/v1/analytics/funnel?steps=a,b&exclusion=x:1:9",
        "/api/v1/analytics/funnel?steps=a,a&mode=unordered",
        "/api/v1/analytics/trends?event=a&interval=hour",
        "/api/v1/analytics/trends?event=page_view&interval=day&start=1980-01-01&end=2100-01-01",
        "/api/v1/insights/99999999999999999999",
        "/api/v1/insights?kind=sql",
    ):
        r = client.get(query)
        assert 400 <= r.status_code < 500, (query, r.status_code, r.text)
    r = client.post("/api/v1/dashboards", json={"name": "x", "insight_ids": [1, 1]})
    assert r.status_code in (404, 422)
    r = client.post("/api/v1/insights", json={"name": "x", "kind": "cohort", "params": {}})
    assert r.status_code == 422
