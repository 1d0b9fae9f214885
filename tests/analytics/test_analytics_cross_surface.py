"""One set of numbers (issue #18): on the demo brand, for every metric of the KPI sheet in the metric
catalogue, the CLI (`liebian analyze kpis --format json`), the API (`GET /api/v1/analytics/kpis`), the
console's overview (its page data and the cards it renders), the weekly report (its data and its HTML
table) and the demo summary give the same value for the same filters, on DuckDB and on Spark
(LIEBIAN_TEST_SPARK=1). Additive counts also add up over the console's daily trend."""

from __future__ import annotations

import json
import re
from datetime import date
from html import unescape
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.analytics import catalogue
from liebian.analytics import service as analytics
from liebian.analytics.overview import overview
from liebian.auth.service import create_api_key
from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.engine.backend import analytics_backend, export_parquet
from liebian.reports import service as reports
from liebian.web import console
from liebian.web.app import create_app
from liebian.web.console import ConsoleFilters, format_cell
from liebian.web.pages import overview as overview_page

# The same questions asked of every surface: everything; the demo's last full week (the weekly
# report's period); and one campaign in one channel over a month.
WEEK = ("2026-11-02", "2026-11-08")  # Monday to Sunday; the demo's data ends on 2026-11-15
CASES: dict[str, dict[str, str]] = {
    "all": {},
    "week": {"start": WEEK[0], "end": WEEK[1]},
    "campaign_channel": {
        "start": "2026-10-01",
        "end": "2026-10-31",
        "channel": "miniprogram",
        "campaign": "c_invite",
    },
}
SHEET = [m.key for m in catalogue.sheet_metrics()]
ADDITIVE = ("new_users", "new_referred_users", "invites_sent", "paid_orders", "revenue_fen")
CARD = re.compile(r'<div class="card"><div class="label">([^<]*)</div><div class="value">([^<]*)</div></div>')


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and a == pytest.approx(b, rel=1e-12, abs=1e-15)
    return a == b


def _assert_same(got: dict[str, Any], want: dict[str, Any], keys: list[str], where: str) -> None:
    differ = {k: (got.get(k), want.get(k)) for k in keys if not _same(got.get(k), want.get(k))}
    assert not differ, f"{where} differs from the API: {differ}"


def _cli(case: dict[str, str], engine: str) -> dict[str, Any]:
    from liebian.cli import app

    args = [a for key, value in case.items() for a in (f"--{key}", value)]
    res = CliRunner().invoke(app, ["analyze", "kpis", "--format", "json", "--engine", engine, *args])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)


def _console_cards(client: TestClient, case: dict[str, str], locale: str) -> dict[str, str]:
    page = client.get("/", params=case | {"lang": locale})
    assert page.status_code == 200, page.text
    return {unescape(label): unescape(value) for label, value in CARD.findall(page.text)}


@pytest.fixture
def surfaces(engine: str, demo_brand, monkeypatch: pytest.MonkeyPatch):
    """The demo brand, with the server's engine (API, console) set to the engine under test
    (`engine`: DuckDB, and Spark when LIEBIAN_TEST_SPARK=1)."""
    if engine == "spark":
        export_parquet()
    monkeypatch.setenv("LIEBIAN_ENGINE", engine)
    reset_settings_cache()
    with console._CACHE_LOCK:  # the console keeps results per warehouse state, not per engine
        console._CACHE.clear()
    with session_scope() as s:
        key, _ = create_api_key(s, name=f"cross-surface {engine}", actor="test", kind="service", role="admin")
    with TestClient(create_app(run_migrations=False), headers={"Authorization": f"Bearer {key}"}) as client:
        yield engine, client


def _check_console(
    client: TestClient, name: str, case: dict[str, str], api: dict[str, Any], engine: str
) -> None:
    """The overview's page data equals the API; on DuckDB also its cards (both languages) and its
    daily trend (on Spark the page's extra analyses, the trend and the radar, take minutes: the cards
    are rendered from the same page data whatever the engine)."""
    af = ConsoleFilters(**case).to_analytics()
    if engine == "spark":
        _assert_same(
            console.cached_analytics("run_kpis", af), api, SHEET, f"console page data ({name}, spark)"
        )
        return
    page_kpis, trend, _by_channel, _period = overview_page._analyses(af)
    _assert_same(page_kpis, api, SHEET, f"console page data ({name}, {engine})")
    for locale in ("zh-CN", "en"):
        cards = _console_cards(client, case, locale)
        for key, kind in overview_page.CARDS:
            label = catalogue.metric(key).name(locale)
            assert cards[label] == format_cell(api[key], kind, locale), (name, locale, key)
    if case.get("start"):  # the trend covers the chosen period: its days add up to the sheet
        for key in ADDITIVE:
            assert sum(day[key] for day in trend) == api[key], (name, key)


@pytest.mark.slow
def test_every_surface_gives_the_same_kpi_sheet(surfaces) -> None:
    engine, client = surfaces
    sheets: dict[str, dict[str, Any]] = {}
    # Spark asks two of the questions (the filtered one is compared with DuckDB below)
    cases = CASES if engine == "duckdb" else {k: CASES[k] for k in ("all", "week")}
    for name, case in cases.items():
        r = client.get("/api/v1/analytics/kpis", params=case)
        assert r.status_code == 200, r.text
        api = sheets[name] = r.json()
        assert api["reached"] > 0 and api["participants"] > 0, name  # every case has data to compare
        _assert_same(_cli(case, engine), api, SHEET, f"CLI ({name}, {engine})")
        _check_console(client, name, case, api, engine)

    # the weekly report: its data and the KPI table of its HTML
    report = reports.build_report("weekly", date.fromisoformat(WEEK[0]), date.fromisoformat(WEEK[1]), engine)
    _assert_same(report["kpis"], sheets["week"], SHEET, f"weekly report ({engine})")
    for lang in ("zh-CN", "en"):
        html = unescape(reports.render_html(report, lang))
        for key in reports.KPI_ROWS:
            name, shown = (
                catalogue.metric(key).name(lang),
                catalogue.format_value(key, sheets["week"][key], lang),
            )
            assert f"<td>{name}</td><td>{shown}</td>" in html, (lang, key)

    # the demo summary: the whole warehouse, with the sheet's (ledger) costs
    with analytics_backend(engine) as backend:
        summary = overview(backend, costs=analytics.costs_for(analytics.make_filters()))
    shared = [key for key in summary if key in SHEET]
    assert {"participation_rate", "new_users", "k_factor", "retention_d1", "aov_fen"} <= set(shared)
    _assert_same(summary, sheets["all"], shared, f"demo summary ({engine})")
    # every probability of the sheet is one, on every question asked
    for name, sheet in sheets.items():
        for m in catalogue.sheet_metrics():
            if m.probability and sheet[m.key] is not None:
                assert 0 <= sheet[m.key] <= 1, (name, m.key)


@pytest.mark.slow
def test_spark_gives_the_duckdb_sheet(spark_required, demo_brand) -> None:
    export_parquet()
    for name, case in CASES.items():
        filters = analytics.make_filters(
            case.get("start"), case.get("end"), [case.get("channel", "")], [case.get("campaign", "")]
        )
        duck, spark = analytics.run_kpis(filters, "duckdb"), analytics.run_kpis(filters, "spark")
        _assert_same(spark, duck, SHEET, f"Spark ({name})")
