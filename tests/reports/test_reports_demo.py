"""Reports end to end on the demo brand: the HTML parses, the XLSX opens with openpyxl with the
expected sheets, and every number in it equals what the analytics and fraud APIs return."""

from __future__ import annotations

import io
from datetime import date

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from reports_helpers import parse_html

from liebian.auth.service import create_api_key
from liebian.db.session import session_scope
from liebian.reports import service
from liebian.web.app import create_app
from shared_helpers import export_sheet

START, END = "2026-10-01", "2026-10-31"
PERIOD = f"start={START}&end={END}"


def _headers(role: str) -> dict[str, str]:
    with session_scope() as s:
        key, _ = create_api_key(s, name=f"reports test {role}", actor="test", kind="service", role=role)
    return {"Authorization": f"Bearer {key}"}


def same(a, b) -> bool:
    """Equal; floats to the 15 significant digits an XLSX cell holds (openpyxl writes 15, as Excel does)."""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, float) or isinstance(b, float):
        return a is not None and b is not None and a == pytest.approx(b, rel=1e-13, abs=0)
    return a == b and type(a) is type(b)


def _rows(ws) -> list[dict]:
    values = export_sheet(ws)  # without the export watermark's footer row and hidden column
    return [dict(zip(values[0], row, strict=True)) for row in values[1:]]


@pytest.fixture
def client(demo_brand):
    with session_scope() as s:
        target = service.create_target(
            s, "次日留存 32%→41%", "retention_d1", 0.32, 0.41,
            date(2026, 10, 1), date(2026, 12, 31),
        )  # fmt: skip
    with TestClient(create_app(run_migrations=False)) as c:
        yield c, _headers("admin"), _headers("viewer")
    with session_scope() as s:
        service.delete_target(s, target["id"])


def test_xlsx_numbers_equal_the_analytics_api(client):
    c, admin, viewer = client
    r = c.get(f"/api/v1/reports/report.xlsx?kind=monthly&{PERIOD}", headers=viewer)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["About", *service.XLSX_SHEETS]

    kpis = c.get(f"/api/v1/analytics/kpis?{PERIOD}", headers=admin).json()
    sheet = {row["metric"]: row["value"] for row in _rows(wb["KPIs"])}
    numeric = {k: v for k, v in kpis.items() if isinstance(v, int | float) or v is None}
    numeric.pop("segment_size", None)
    assert same(sheet, numeric)
    assert kpis["reached"] > 1000 and kpis["revenue_fen"] > 0  # a real month of the demo brand

    funnel = c.get(f"/api/v1/analytics/funnel?{PERIOD}", headers=admin).json()["steps"]
    assert same(_rows(wb["Funnel"]), funnel)
    campaigns = c.get(f"/api/v1/analytics/funnel?{PERIOD}&breakdown=campaign", headers=admin).json()["steps"]
    assert same(_rows(wb["Campaigns"]), campaigns) and len({x["breakdown"] for x in campaigns}) >= 2
    cohorts = c.get(
        f"/api/v1/analytics/retention?{PERIOD}&unit=week&periods=6&cohorts=8", headers=admin
    ).json()
    assert same(_rows(wb["Cohorts"]), cohorts["matrix"])
    tree = c.get(f"/api/v1/analytics/referral-tree?{PERIOD}&top=10", headers=admin).json()
    assert same(_rows(wb["Top spreaders"]), tree["top_spreaders"]) and len(tree["top_spreaders"]) == 10
    fraud = c.get("/api/v1/fraud/rate", headers=admin).json()
    cols = ("campaign_id", "title", "referrals", "rejected", "fraud_rate")
    assert same(_rows(wb["Fraud"]), [{k: f[k] for k in cols} for f in fraud])

    # the SMART target: progress recomputed independently from the API's retention_d1
    (target,) = _rows(wb["Targets"])
    assert target["metric"] == "retention_d1" and same(target["current"], kpis["retention_d1"])
    assert target["progress"] == pytest.approx((kpis["retention_d1"] - 0.32) / (0.41 - 0.32))
    assert target["time_elapsed"] == pytest.approx(30 / 91)  # 2026-10-01 → 10-31 of 10-01 → 12-31
    recs = _rows(wb["Recommendations"])
    assert recs and all(r["recommendation"] for r in recs)
    if kpis["k_factor"] < 1:
        assert "k_factor<1" in {r["rule"] for r in recs}


def test_html_report_parses_and_carries_the_numbers(client):
    c, admin, viewer = client
    r = c.get(f"/api/v1/reports/report.html?kind=monthly&{PERIOD}", headers=viewer)
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    doc = parse_html(r.text)
    assert {"kpis", "targets", "funnel", "campaigns", "cohorts", "spreaders", "recommendations"} <= doc.ids
    assert doc.count["svg"] == 3  # target progress, funnel, top spreaders
    kpis = c.get(f"/api/v1/analytics/kpis?{PERIOD}", headers=admin).json()
    assert f"{kpis['reached']:,}" in r.text and "次日留存 32%→41%" in r.text
    body = c.get(f"/api/v1/reports/report.json?kind=monthly&{PERIOD}", headers=viewer).json()
    assert body["kpis"] == kpis


def test_weekly_default_period_and_bad_input(client):
    c, admin, viewer = client
    body = c.get(
        "/api/v1/reports/report.json?kind=weekly&start=2026-11-02&end=2026-11-08", headers=viewer
    ).json()
    assert (body["period_start"], body["period_end"]) == ("2026-11-02", "2026-11-08")
    r = c.get("/api/v1/reports/report.json?kind=weekly&start=2026-11-02", headers=viewer)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "start"
    r = c.get("/api/v1/reports/report.json?kind=weekly&start=2026-11-09&end=2026-11-02", headers=viewer)
    assert r.status_code == 422 and r.json()["errors"][0]["field"] == "end"
    assert c.get("/api/v1/reports/report.json?kind=daily", headers=viewer).status_code == 422
    assert c.get(f"/api/v1/reports/report.json?{PERIOD}").status_code == 401
