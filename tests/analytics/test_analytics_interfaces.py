"""Scorecard, benchmarks, channel radar; the CLI and HTTP interfaces; DuckDB vs Spark identity."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.analytics import benchmarks as bench
from liebian.analytics import service
from liebian.analytics.scorecard import INDICATORS, score
from liebian.cli import app as cli_app
from liebian.web.app import create_app

P = ("2026-03-01", "2026-03-07")


def test_score_weights_and_contributions():
    mid = {i.key: (i.low + i.high) / 2 for i in INDICATORS}
    values = {
        i.key: {"scale": i.high, "activity": i.low, "conversion": mid[i.key]}[i.dimension] for i in INDICATORS
    }
    got = score(values)  # mature: scale 20 / activity 30 / conversion 50
    assert got["score"] == pytest.approx(0.2 * 10 + 0.3 * 1 + 0.5 * 5.5)
    assert sum(r["contribution"] for r in got["indicators"]) == pytest.approx(got["score"])
    assert len(got["indicators"]) == 15 and len(got["first_level"]) == 4
    launch = score(values, stage="launch")  # scale 50 / activity 30 / conversion 20
    assert launch["score"] == pytest.approx(0.5 * 10 + 0.3 * 1 + 0.2 * 5.5)
    # an indicator without data is left out and the rest renormalised
    values["k_factor"] = None
    partial = score(values, weights={"scale": 1, "activity": 0, "conversion": 0})
    assert partial["score"] == pytest.approx(10) and partial["stage"] == "custom"
    with pytest.raises(
        ValueError, match="weights need a non-negative weight for each of activity, conversion, scale"
    ):
        score(values, weights={"scale": 1})
    with pytest.raises(ValueError, match="stage must be one of"):
        score(values, stage="huge")


def test_scorecard_compares_with_previous_period(scenario, load):
    load()
    f = service.make_filters(*P)
    card = service.run_scorecard(f)
    now = service.run_kpis(f)
    before = service.run_kpis(service.make_filters("2026-02-22", "2026-02-28"))
    values = {r["key"]: r["value"] for r in card["indicators"]}
    # 10 is a WeCom member without a sign-up (existing); now 2, 3, 7, 8 (test_analytics_kpis)
    assert before["new_users"] == 0 and now["new_users"] == 4
    assert values["new_user_growth"] is None  # no growth rate over an empty base
    assert values["k_factor"] == pytest.approx(now["k_factor"])
    assert values["aov_change"] == pytest.approx((now["aov_fen"] - 9000) / 9000)
    assert 1 <= card["score"] <= 10
    assert card["previous_period"] == {"start": "2026-02-22", "end": "2026-02-28"}


def test_channel_radar_normalises_by_the_best_channel(scenario, load):
    load()
    rows = {r["channel"]: r for r in service.run_channels(service.make_filters(*P))}
    assert set(rows) == {"wecom", "douyin", "miniprogram"}
    for axis in ("invites_sent", "k_factor", "conversion_rate", "aov_fen", "retention_d7"):
        best = max(r[axis] or 0 for r in rows.values())
        for name, r in rows.items():
            want = service.run_kpis(service.make_filters(*P, channels=[name]))[axis]
            assert r[axis] == want
            assert r[f"{axis}_norm"] == pytest.approx((want or 0) / best if best else 0)
    wecom = rows["wecom"]
    assert wecom["fission_power"] == pytest.approx((wecom["invites_sent_norm"] + wecom["k_factor_norm"]) / 2)


def test_benchmark_comparison_and_reference_validation(tmp_path):
    kpi = {
        "participation_rate": 0.33,
        "conversion_rate": 0.05,
        "k_factor": 0.2,
        "retention_d7": None,
        "ltv_fen": 100,
    }
    ref = {"demo": {"participation_rate": 0.3, "conversion_rate": 0.1, "k_factor": 0.2, "ltv_fen": 0}}
    got = {r["indicator"]: r["verdict"] for r in bench.compare(kpi, "demo", ref)}
    assert got == {"participation_rate": "on par", "conversion_rate": "below", "k_factor": "on par",
                   "retention_d7": "n/a", "ltv_fen": "n/a"}  # fmt: skip
    assert {"food_service", "education", "ecommerce", "beauty"} <= set(bench.DEFAULT_REFERENCE)
    bad = tmp_path / "ref.json"
    bad.write_text(json.dumps({"demo": {"k_factor": "high"}}))
    with pytest.raises(ValueError, match=r"reference.demo.k_factor: must be a non-negative number"):
        bench.load_reference(bad)
    bad.write_text(json.dumps({"demo": {"gmv": 1}}))
    with pytest.raises(ValueError, match=r"reference.demo.gmv: unknown indicator"):
        bench.load_reference(bad)


def test_cli_outputs_json_csv_and_names_bad_input(scenario, load, data_dir):
    load()
    runner = CliRunner()
    out = runner.invoke(cli_app, ["analyze", "kpis", "--start", P[0], "--end", P[1], "--format", "json"])
    assert out.exit_code == 0, out.output
    assert json.loads(out.stdout)["participants"] == 4
    seg = data_dir / "seg.txt"
    seg.write_text("person_id\n1\n3\n")
    out = runner.invoke(cli_app, ["analyze", "funnel", "--start", P[0], "--end", P[1], "--segment-file", str(seg),
                                  "--steps", "join_campaign,order_paid", "--format", "csv"])  # fmt: skip
    assert out.exit_code == 0, out.output
    lines = out.stdout.strip().splitlines()
    assert lines[0].startswith("step,name,event,persons") and len(lines) == 3
    assert lines[1].split(",")[3] == "2" and lines[2].split(",")[3] == "1"  # 3's order was cancelled
    out = runner.invoke(cli_app, ["analyze", "retention", "--unit", "day", "--periods", "2", "--format", "json",
                                  "--start", P[0], "--end", P[1]])  # fmt: skip
    assert out.exit_code == 0 and json.loads(out.stdout)[0]["cohort"] == "2026-03-01"
    out = runner.invoke(cli_app, ["analyze", "benchmarks", "beauty", "--format", "json"])
    assert out.exit_code == 0 and len(json.loads(out.stdout)) == 5
    out = runner.invoke(cli_app, ["analyze", "kpis", "--start", "2026-02-30"])
    assert out.exit_code == 2 and "start: '2026-02-30' is not a date" in out.output


def test_http_endpoints_and_errors(scenario, load, admin_headers):
    load()
    client = TestClient(create_app(run_migrations=False), headers=admin_headers)
    base = "/api/v1/analytics"
    r = client.get(f"{base}/kpis", params={"start": P[0], "end": P[1], "channel": ["douyin"]})
    assert r.status_code == 200
    assert r.json()["participants"] == 1 and r.json()["channels"] == ["douyin"]
    r = client.get(f"{base}/funnel", params={"start": P[0], "end": P[1], "breakdown": "channel"})
    assert r.status_code == 200 and r.json()["steps"][0]["name"] == "触达 reach"
    r = client.get(f"{base}/funnel/dropped", params={"start": P[0], "end": P[1], "at_step": 2})
    assert r.status_code == 200 and [d["person_id"] for d in r.json()] == [7, 8]
    for path in ("retention", "revenue", "referral-tree", "channels", "scorecard"):
        r = client.get(f"{base}/{path}", params={"start": P[0], "end": P[1]})
        assert r.status_code == 200, (path, r.text)
    r = client.get(f"{base}/benchmarks", params={"sector": "education", "segment": "1,3"})
    assert r.status_code == 200 and r.json()["comparison"][0]["indicator"] == "participation_rate"
    r = client.get(f"{base}/kpis", params={"segment": "1,abc"})
    assert r.status_code == 422
    assert r.json()["errors"] == [
        {"field": "filters", "reason": "segment: item 2 ('abc') is not a person id"}
    ]
    r = client.get(f"{base}/benchmarks", params={"sector": "mining"})
    assert r.status_code == 422 and "sector must be one of" in r.json()["errors"][0]["reason"]
    r = client.get(f"{base}/retention", params={"unit": "year"})
    assert r.status_code == 422 and r.json()["errors"][0]["field"].endswith("unit")


@pytest.mark.spark
def test_duckdb_and_spark_give_identical_results(scenario, load, spark_required):
    load("spark")  # writes the warehouse and exports Parquet
    f = service.make_filters(*P, campaigns=["c1", "c2"])
    runs = {}
    for engine in ("duckdb", "spark"):
        runs[engine] = {
            "kpis": service.run_kpis(f, engine, reward_cost_fen=5000),
            "funnel": service.run_funnel(f, breakdown="channel", engine=engine),
            "dropped": service.run_dropped(f, 3, engine=engine),
            "retention": service.run_retention(f, unit="day", periods=8, engine=engine),
            "revenue": service.run_revenue(f, unit="week", periods=2, cohort_by="referral", engine=engine),
            "tree": service.run_referral_tree(f, engine=engine),
        }
    assert runs["spark"] == runs["duckdb"]
