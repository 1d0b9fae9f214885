"""The schedule (weekly on Monday, monthly by the 5th), delivery by e-mail through a real local SMTP
server and by signed webhook to a real receiver, exactly once per period, retry after a failure;
SMART targets; the API's authorisation and the CLI."""

from __future__ import annotations

import base64
import io
import json
from datetime import date, datetime

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from reports_helpers import SECRET, parse_html
from typer.testing import CliRunner

from liebian.auth.service import create_api_key
from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.reports import service
from liebian.web.app import create_app
from shared_helpers import export_sheet

MONDAY_NOV_2 = datetime(2026, 11, 2, 4, 0)  # 12:00 in Shanghai, Monday 2 November


def test_due_days_and_periods():
    assert service.due_reports(date(2026, 11, 2)) == [
        ("weekly", date(2026, 10, 26), date(2026, 11, 1)),
        ("monthly", date(2026, 10, 1), date(2026, 10, 31)),
    ]
    assert service.due_reports(date(2026, 11, 5)) == [("monthly", date(2026, 10, 1), date(2026, 10, 31))]
    assert service.due_reports(date(2026, 11, 6)) == []  # Friday the 6th: past the 5th, not Monday
    assert service.due_reports(date(2026, 11, 9)) == [("weekly", date(2026, 11, 2), date(2026, 11, 8))]
    assert service.period_of("monthly", date(2026, 3, 3)) == (date(2026, 2, 1), date(2026, 2, 28))
    assert service.period_of("weekly", date(2026, 1, 1)) == (date(2025, 12, 22), date(2025, 12, 28))
    # the local day decides: 23:30 UTC on Sunday is already Monday in Shanghai
    assert service.today_local(datetime(2026, 11, 8, 23, 30)) == date(2026, 11, 9)


def test_email_and_webhook_delivery_exactly_once_with_retry(sqlite_store, mailbox, report_receiver):
    with session_scope() as s:
        mail = service.subscribe(s, "weekly", "email", "ops@example.com")
        hook = service.subscribe(s, "monthly", "webhook", report_receiver.url, SECRET)
    report_receiver.fail = True
    first = service.run_scheduled(MONDAY_NOV_2)
    assert {(r["subscription_id"], r["status"]) for r in first} == {
        (mail["id"], "sent"),
        (hook["id"], "failed"),
    }
    assert "HTTPStatusError" in next(r["detail"] for r in first if r["status"] == "failed")

    (rcpts, msg) = mailbox.messages[0]
    assert rcpts == ["ops@example.com"] and "2026-10-26 – 2026-11-01" in msg["Subject"]
    html = msg.get_body(("html",)).get_content()
    parse_html(html)
    (att,) = list(msg.iter_attachments())
    assert att.get_filename() == "liebian-weekly-2026-10-26.xlsx"
    wb = load_workbook(io.BytesIO(att.get_content()))
    assert wb.sheetnames == ["About", *service.XLSX_SHEETS]

    # an hour later: the e-mail is not sent again; the failed webhook is retried and delivered
    report_receiver.fail = False
    second = service.run_scheduled(MONDAY_NOV_2.replace(hour=5))
    assert [(r["subscription_id"], r["status"]) for r in second] == [(hook["id"], "sent")]
    assert len(mailbox.messages) == 1
    (body,) = report_receiver.received
    assert (body["kind"], body["period_start"], body["period_end"]) == ("monthly", "2026-10-01", "2026-10-31")
    load_workbook(io.BytesIO(base64.b64decode(body["xlsx_base64"])))
    assert service.run_scheduled(MONDAY_NOV_2.replace(hour=6)) == []
    # Tuesday the 3rd: the monthly report is still due but was delivered; nothing weekly
    assert service.run_scheduled(datetime(2026, 11, 3, 4)) == []
    with session_scope() as s:
        runs = service.list_runs(s)
    assert sorted((r["kind"], r["status"]) for r in runs) == [("monthly", "sent"), ("weekly", "sent")]


def test_subscription_and_target_validation(sqlite_store):
    with session_scope() as s:
        with pytest.raises(service.ReportError, match="address: 'nobody' is not an e-mail"):
            service.subscribe(s, "weekly", "email", "nobody")
        with pytest.raises(service.ReportError, match="secret: a webhook needs a signing secret"):
            service.subscribe(s, "weekly", "webhook", "https://example.com/hook", "short")
        with pytest.raises(service.ReportError, match="metric: 'happiness' is not a KPI"):
            service.create_target(s, "t", "happiness", 0.1, 0.2, date(2026, 1, 1), date(2026, 4, 1))
        with pytest.raises(service.ReportError, match="due_date: must be after start_date"):
            service.create_target(s, "t", "retention_d1", 0.32, 0.41, date(2026, 4, 1), date(2026, 1, 1))
        t = service.create_target(s, "t", "retention_d7", 0.2, 0.3, date(2026, 1, 1), date(2026, 4, 1))
    # progress against the share of time elapsed
    assert service.progress(t, 0.25, date(2026, 1, 31))["status"] == "on track"  # 50% done, 33% of time
    assert service.progress(t, 0.21, date(2026, 3, 2))["status"] == "behind"
    assert service.progress(t, 0.31, date(2026, 2, 1))["status"] == "achieved"
    assert service.progress(t, None, date(2026, 2, 1))["status"] == "no data"


def _headers(role: str) -> dict[str, str]:
    with session_scope() as s:
        key, _ = create_api_key(s, name=f"t {role}", actor="test", kind="service", role=role)
    return {"Authorization": f"Bearer {key}"}


def test_api_authorisation_and_targets(sqlite_store):
    with TestClient(create_app(run_migrations=False)) as c:
        operator, viewer = _headers("operator"), _headers("viewer")
        body = {"name": "次日留存", "metric": "retention_d1", "baseline": 0.32, "target": 0.41,
                "start_date": "2026-11-01", "due_date": "2027-01-31"}  # fmt: skip
        assert c.post("/api/v1/reports/targets", json=body, headers=viewer).status_code == 403
        r = c.post("/api/v1/reports/targets", json=body, headers=operator)
        assert r.status_code == 201 and r.json()["metric"] == "retention_d1"
        bad = c.post(
            "/api/v1/reports/targets", json={**body, "name": "x", "metric": "nope"}, headers=operator
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "metric"
        assert [t["name"] for t in c.get("/api/v1/reports/targets", headers=viewer).json()] == ["次日留存"]
        assert c.get("/api/v1/reports/subscriptions", headers=viewer).status_code == 403
        sub = {"kind": "weekly", "channel": "email", "address": "ops@example.com"}
        assert c.post("/api/v1/reports/subscriptions", json=sub, headers=operator).status_code == 201
        r = c.get("/api/v1/reports/report.xlsx?kind=weekly&start=2026-11-02&end=2026-11-08", headers=viewer)
        assert r.status_code == 200 and "liebian-weekly-2026-11-02.xlsx" in r.headers["content-disposition"]


def test_cli_generate_and_targets(sqlite_store, tmp_path):
    runner = CliRunner()
    r = runner.invoke(cli_app, ["report", "target-add", "d1", "--metric", "retention_d1", "--baseline", "0.32",
                                "--target", "0.41", "--start", "2026-11-01", "--due", "2027-01-31", "--format", "json"])  # fmt: skip
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["target"] == 0.41
    r = runner.invoke(cli_app, ["report", "generate", "--kind", "monthly", "--start", "2026-10-01",
                                "--end", "2026-10-31", "--out", str(tmp_path)])  # fmt: skip
    assert r.exit_code == 0, r.output
    parse_html((tmp_path / "liebian-monthly-2026-10-01.html").read_text(encoding="utf-8"))
    wb = load_workbook(tmp_path / "liebian-monthly-2026-10-01.xlsx")
    assert [row[0] for row in export_sheet(wb["Targets"])[1:]] == ["d1"]
    r = runner.invoke(cli_app, ["report", "generate", "--start", "2026-10-01"])
    assert r.exit_code == 2 and "give both or neither" in r.output
    r = runner.invoke(cli_app, ["report", "target-add", "x", "--metric", "nope", "--baseline", "0", "--target", "1",
                                "--start", "2026-11-01", "--due", "2027-01-31"])  # fmt: skip
    assert r.exit_code == 2 and "metric: 'nope' is not a KPI" in r.output


def test_two_schedulers_claim_a_delivery_once(store):
    import threading

    with session_scope() as s:
        sub = service.subscribe(s, "weekly", "email", "ops@example.com")
    got: list[int | None] = []
    barrier = threading.Barrier(6)

    def claim() -> None:
        barrier.wait()
        with session_scope() as s:
            got.append(service._claim(s, sub["id"], "weekly", date(2026, 10, 26), date(2026, 11, 1)))

    threads = [threading.Thread(target=claim) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len([g for g in got if g is not None]) == 1


def test_recommendations_fire_on_their_numbers():
    target = {"name": "d1", "metric": "retention_d1", "baseline": 0.32, "target": 0.41,
              "start_date": "2026-10-01", "due_date": "2026-12-31", "owner": ""}  # fmt: skip
    report = {
        "kpis": {"k_factor": 0.6, "silent_users": 120, "reactivation_rate": 0.05, "repurchase_rate": 0.5},
        "funnel": [
            {"step": 1, "name": "触达", "event": "exposure", "drop_off_rate": None},
            {"step": 2, "name": "兴趣", "event": "page_view", "drop_off_rate": 0.4},
            {"step": 3, "name": "参与", "event": "join_campaign", "drop_off_rate": 0.7},
        ],
        "fraud": [{"campaign_id": "c1", "fraud_rate": 0.012}, {"campaign_id": "c2", "fraud_rate": 0.004}],
        "targets": [service.progress(target, 0.33, date(2026, 11, 30))],  # 11% done, 66% of the time gone
    }
    recs = service.recommend(report)
    assert [r["rule"] for r in recs] == [
        "k_factor<1",
        "funnel_drop",
        "fraud_rate",
        "target_behind",
        "wake_up",
    ]
    assert "0.60" in recs[0]["recommendation"] and "参与" in recs[1]["recommendation"]
    assert "c1" in recs[2]["recommendation"] and "c2" not in recs[2]["recommendation"]
    healthy = {**report, "kpis": {"k_factor": 1.4, "repurchase_rate": 0.5}, "funnel": [], "fraud": [],
               "targets": [service.progress(target, 0.40, date(2026, 11, 30))]}  # fmt: skip
    assert service.recommend(healthy) == []


def test_alerts_of_the_period_are_in_the_report(sqlite_store):
    from liebian.monitor import service as monitor

    with session_scope() as s:
        inside, _ = monitor.raise_alert(
            s, kind="threshold", metric="fraud_rate", scope={"campaign_id": "c1"}, level="紧急",
            title="作弊率超过阈值", observed=0.02, expected=0.005, now=datetime(2026, 11, 3, 2),
        )  # fmt: skip
        monitor.raise_alert(
            s, kind="threshold", metric="dau", scope={}, level="一般", title="DAU 下降", observed=10.0,
            now=datetime(2026, 11, 1, 15, 30),  # 23:30 on 1 November in Shanghai: the week before
        )  # fmt: skip
    report = service.build_report("weekly", date(2026, 11, 2), date(2026, 11, 8))
    assert [a["id"] for a in report["alerts"]] == [inside["id"]]
    assert "urgent_alerts" in {r["rule"] for r in report["recommendations"]}
    wb = load_workbook(io.BytesIO(service.render_xlsx(report)))
    rows = list(wb["Alerts"].values)
    assert rows[0][:4] == ("id", "level", "status", "title") and rows[1][3] == "作弊率超过阈值"
    html = service.render_html(report)
    assert "alerts" in parse_html(html).ids and "作弊率超过阈值" in html and "DAU 下降" not in html
