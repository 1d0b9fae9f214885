"""The metric catalogue is the one definition of every metric (issue #18): the KPI sheet gives exactly
its metrics, each computed by its formula; every surface names only catalogue metrics and takes
their names and units from it; docs/metrics.md is what the catalogue generates."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.analytics import benchmarks, catalogue, kpis, metrics_doc, overview, scorecard, service
from liebian.analytics.catalogue import METRICS
from liebian.cli import app
from liebian.monitor import rules
from liebian.reports import service as reports
from liebian.web.app import create_app
from liebian.web.i18n import translator
from liebian.web.pages import overview as overview_page

FILTER_KEYS = {"start", "end", "channels", "campaigns", "segment_size"}


def test_docs_metrics_md_is_what_the_catalogue_generates() -> None:
    doc = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
    current = doc.read_text(encoding="utf-8")
    assert metrics_doc.render(current) == current, "run: python -m liebian.analytics.metrics_doc --write"
    for m in METRICS:  # every metric, with both names, in the page
        assert f"| `{m.key}` | {m.zh} {m.en} |" in current, m.key


def test_the_check_fails_when_the_page_drifts(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    page = tmp_path / "metrics.md"
    original = metrics_doc.DOC.read_text(encoding="utf-8")
    page.write_text(
        original.replace("| `reached` | 触达人数 Reached |", "| `reached` | 触达 Reach |"), "utf-8"
    )
    monkeypatch.setattr(metrics_doc, "DOC", page)
    assert metrics_doc.main(["--check"]) == 1
    assert metrics_doc.main(["--write"]) == 0 and metrics_doc.main(["--check"]) == 0
    assert page.read_text(encoding="utf-8") == original


def test_each_metric_is_defined_once_and_completely() -> None:
    keys = [m.key for m in METRICS]
    assert len(keys) == len(set(keys))
    for m in METRICS:
        assert m.zh.strip() and m.en.strip() and m.formula and m.population and m.time and m.filters, m.key
        assert m.section in catalogue.SECTIONS and m.unit in catalogue.DISPLAY, m.key
        assert (m.numerator is None) == (m.denominator is None), m.key
        # only a probability is shown as a percentage
        assert (m.display == "pct") == m.probability, m.key
    # a probability divides a count by a count (persons by the persons that contain them), never money
    for m in METRICS:
        if m.probability and m.numerator and m.denominator:
            for part in (m.numerator, m.denominator):
                unit = catalogue.metric(part).unit if catalogue.is_metric(part) else "count"
                assert unit == "count" or part == "dau_avg_30d", (m.key, part)


def test_the_sheet_gives_exactly_the_catalogue_metrics_by_their_formulas(rows) -> None:
    r = rows
    for p in (1, 2, 3):
        r.event(p, "2026-03-01 10:00:00", "signup")
        r.event(p, "2026-03-01 10:01:00", "join_campaign")
    r.event(1, "2026-03-01 11:00:00", "invite_share")
    r.event(4, "2026-03-01 12:00:00", "invite_click")
    r.event(4, "2026-03-01 12:01:00", "signup")
    r.event(4, "2026-03-02 09:00:00", "app_open")
    r.edge(1, 4, "2026-03-01 12:01:00")
    r.order(4, "2026-03-01 13:00:00", 5000)
    r.order(2, "2026-03-02 13:00:00", 3000)
    r.order(2, "2026-03-02 14:00:00", 1000, status="refunded")
    r.write()
    filters = service.make_filters(start="2026-03-01", end="2026-03-02")
    sheet = service.run_kpis(filters, "duckdb", reward_cost_fen=1200, other_cost_fen=300)
    assert set(sheet) - FILTER_KEYS - {"k_factor_basis"} == {m.key for m in catalogue.sheet_metrics()}
    counts = {m.key: sheet[m.key] for m in catalogue.sheet_metrics() if m.numerator is None}
    for m in catalogue.sheet_metrics():
        if m.numerator and m.numerator in sheet and m.denominator in sheet:
            den = sheet[m.denominator]
            assert sheet[m.key] == (None if not den else pytest.approx(sheet[m.numerator] / den)), m.key
    # an independent calculation of the hand-made rows
    assert counts["new_users"] == 4 and counts["participants"] == 3 and counts["reached"] == 4
    assert counts["revenue_fen"] == 8000 and counts["paid_orders"] == 2 and counts["refunded_fen"] == 1000
    assert counts["total_cost_fen"] == 1500 and counts["cac_fen"] == 1500 / 4
    assert sheet["roi"] == pytest.approx((8000 - 1500) / 1500)
    assert sheet["participation_rate"] == pytest.approx(3 / 4)
    assert sheet["retention_d1"] == pytest.approx(1 / 4)  # P4 came back on 03-02
    assert sheet["shares_per_active"] == pytest.approx(1 / 4)


def test_every_surface_names_only_catalogue_metrics() -> None:
    named = {
        "series": (*kpis.SERIES_COUNTS, *kpis.RATES),
        "scorecard": tuple(i.key for i in scorecard.INDICATORS),
        "benchmarks": benchmarks.CORE,
        "demo summary": overview.KEYS,
        "report": (*reports.KPI_ROWS, *reports.TARGET_METRICS),
        "alert rules": tuple(rules.RULE_KPIS.values()),
        "console overview": (
            *overview_page.CARD_METRICS,
            *overview_page.TREND_LINES,
            *overview_page.BY_CHANNEL,
        ),
    }
    for surface, keys in named.items():
        unknown = [k for k in keys if not catalogue.is_metric(k)]
        assert not unknown, f"{surface} names metrics the catalogue does not define: {unknown}"
    assert {m.key: (m.numerator, m.denominator) for m in METRICS if m.series and m.numerator} == kpis.RATES
    for rule, (key, base) in rules.HOURLY_RULES.items():
        assert catalogue.metric(key).denominator == base, rule


def test_labels_and_units_come_from_the_catalogue() -> None:
    zh, en = translator("zh-CN"), translator("en")
    for m in METRICS:
        assert (zh(f"kpi.{m.key}"), en(f"kpi.{m.key}")) == (m.zh, m.en)
    assert [i.label for i in scorecard.INDICATORS] == [
        catalogue.metric(i.key).label for i in scorecard.INDICATORS
    ]
    assert dict(overview_page.CARDS)["roi"] == "float"  # ROI can exceed 1: not shown as a percentage
    assert dict(overview_page.CARDS)["participation_rate"] == "pct"
    rows = overview.overview_rows({"refund_rate": 0.25, "gmv_fen": 123456, "k_factor": 1.5})
    assert rows == [
        {"metric": "GMV", "value": "¥1,234.56"},
        {"metric": "退款率 Refund rate", "value": "25.0%"},
        {"metric": "K 因子 K-factor", "value": "1.5"},  # decimals: at most two places (liebian.display)
    ]
    assert catalogue.metric("retention_d14").en == "D14 retention"
    with pytest.raises(KeyError):
        catalogue.metric("gmv_yuan")


def test_the_api_and_the_cli_serve_the_catalogue(rows, admin_headers) -> None:
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        r = client.get("/api/v1/analytics/metrics")
    assert r.status_code == 200, r.text
    got = {d["key"]: d for d in r.json()}
    assert list(got) == [m.key for m in METRICS]
    k = got["invite_conversion"]
    assert (k["name_zh"], k["unit"], k["probability"], k["numerator"], k["denominator"]) == (
        "邀请转化率", "probability", True, "referred_users", "invite_recipients",
    )  # fmt: skip
    assert "148 %" in k["differs"]
    res = CliRunner().invoke(app, ["analyze", "metrics", "--format", "json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == r.json()
    # the sheet as a table: the catalogue's names, probabilities as percentages
    rows.event(1, "2026-03-01 10:00:00", "signup")
    rows.event(1, "2026-03-01 10:01:00", "join_campaign")
    rows.write()
    res = CliRunner().invoke(app, ["analyze", "kpis", "--format", "table"])
    assert res.exit_code == 0, res.output
    assert "参与率 Participation rate" in res.stdout and "100.0%" in res.stdout
