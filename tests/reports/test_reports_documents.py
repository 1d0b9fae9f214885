"""Kept reports (the console's list): asked for, built once by whichever worker claims them, read back
equal to a fresh build; the schedule keeps what it sends; a failure is recorded with its reason.
SMART targets can be edited under the same checks, and progress is measured by a kept report."""

from __future__ import annotations

import json
from datetime import date, datetime

import pytest
from reports_helpers import parse_html

from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.reports import service
from liebian.reports.service import ReportError


def _buyers() -> None:
    """Three paid orders in the week of 2026-11-02 (Shanghai), two by new persons."""
    with warehouse.connect() as con:
        for i, (person, ts, fen) in enumerate([(1, "2026-11-02 02:00:00", 1000), (2, "2026-11-03 03:00:00", 2500),
                                                (1, "2026-11-04 05:00:00", 500)]):  # fmt: skip
            con.execute(
                "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id,"
                " ingested_at) VALUES (?, ?, ?, 'unionid', ?, 'signup', 'wecom', 'b', ?)",
                [f"e{i}", ts, person, f"u{person}", datetime(2026, 11, 9)],
            )
            con.execute(
                "INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status,"
                " channel, status_ts, batch_id, ingested_at) VALUES (?, ?, ?, 'unionid', ?, ?, 'CNY', 'paid',"
                " 'wecom', ?, 'b', ?)",
                [f"o{i}", ts, person, f"u{person}", fen, ts, datetime(2026, 11, 9)],
            )


def test_a_requested_report_is_built_once_and_reads_back_like_a_fresh_one(store):
    _buyers()
    with session_scope() as s:
        doc = service.request_document(s, "weekly", requested_by="user:ops", as_of=date(2026, 11, 10))
    assert (doc["status"], doc["period_start"], doc["period_end"]) == ("pending", "2026-11-02", "2026-11-08")
    with session_scope() as s:
        with pytest.raises(ReportError, match="is pending, not ready") as exc:
            service.get_document(s, doc["id"])
        assert exc.value.status == 409
    built = service.produce_document(doc["id"])
    assert built["status"] == "done" and built["finished_at"]
    assert service.produce_document(doc["id"])["finished_at"] == built["finished_at"]  # claimed once only
    with session_scope() as s:
        kept = service.get_document(s, doc["id"])["report"]
        listed = service.list_documents(s)
    fresh = service.generate("weekly", date(2026, 11, 2), date(2026, 11, 8))
    assert kept["kpis"]["revenue_fen"] == fresh["kpis"]["revenue_fen"] == 4000
    assert kept["kpis"]["buyers"] == 2 and kept["funnel"] == fresh["funnel"]
    assert [d["id"] for d in listed] == [doc["id"]] and listed[0]["requested_by"] == "user:ops"
    parse_html(service.render_html(kept))
    assert service.render_xlsx(kept)[:2] == b"PK"


def test_bad_requests_name_the_field(store):
    with session_scope() as s:
        for args, field in [
            (("yearly",), "kind"),
            (("weekly", date(2026, 11, 8), None), "start"),
            (("weekly", date(2026, 11, 8), date(2026, 11, 1)), "end"),
        ]:
            with pytest.raises(ReportError) as exc:
                service.request_document(s, *args)
            assert exc.value.field == field
        with pytest.raises(ReportError, match="does not exist") as missing:
            service.get_document(s, 404)
        assert missing.value.status == 404


def test_a_failed_build_keeps_its_reason_and_a_cut_off_one_shows_as_failed(store, monkeypatch):
    with session_scope() as s:
        doc = service.request_document(s, "monthly", date(2026, 10, 1), date(2026, 10, 31))

    def broken(*_args, **_kwargs):
        raise RuntimeError("warehouse gone")

    monkeypatch.setattr(service, "build_report", broken)
    failed = service.produce_document(doc["id"])
    assert failed["status"] == "failed" and "warehouse gone" in failed["detail"]
    with session_scope() as s:
        stale = service.request_document(s, "weekly", date(2026, 11, 2), date(2026, 11, 8))
    later = datetime.fromisoformat(stale["created_at"]) + service.STALE_AFTER * 2
    monkeypatch.setattr(service, "utcnow", lambda: later)
    with session_scope() as s:
        shown = {d["id"]: d for d in service.list_documents(s)}
    assert shown[stale["id"]]["status"] == "failed" and "interrupted" in shown[stale["id"]]["detail"]


def test_the_schedule_keeps_the_report_it_sends(sqlite_store, mailbox):
    _buyers()
    with session_scope() as s:
        service.subscribe(s, "weekly", "email", "ops@example.com")
    service.run_scheduled(datetime(2026, 11, 9, 4, 0))  # Monday 9 November, noon in Shanghai
    with session_scope() as s:
        (doc,) = service.list_documents(s)
        kept = service.get_document(s, doc["id"])["report"]
    assert (doc["kind"], doc["period_start"], doc["requested_by"]) == ("weekly", "2026-11-02", "schedule")
    assert kept["kpis"]["revenue_fen"] == 4000
    assert len(mailbox.messages) == 1


def test_targets_are_edited_under_the_same_checks_and_measured_by_a_kept_report(store):
    with session_scope() as s:
        a = service.create_target(s, "GMV", "revenue_fen", 1000, 5000, date(2026, 11, 1), date(2026, 11, 30))
        service.create_target(s, "buyers", "buyers", 1, 4, date(2026, 11, 1), date(2026, 11, 30))
        with pytest.raises(ReportError, match="exists"):
            service.update_target(s, a["id"], "buyers", "revenue_fen", 1000, 5000, date(2026, 11, 1),
                                  date(2026, 11, 30))  # fmt: skip
        with pytest.raises(ReportError) as bad:
            service.update_target(s, a["id"], "GMV", "not_a_kpi", 1, 2, date(2026, 11, 1), date(2026, 11, 30))
        assert bad.value.field == "metric"
        with pytest.raises(ReportError) as missing:
            service.update_target(s, 999, "x", "buyers", 1, 2, date(2026, 11, 1), date(2026, 11, 30))
        assert missing.value.status == 404
        edited = service.update_target(s, a["id"], "GMV", "revenue_fen", 2000, 6000, date(2026, 11, 1),
                                       date(2026, 11, 11), owner="ops")  # fmt: skip
        assert (edited["baseline"], edited["due_date"], edited["owner"]) == (2000, "2026-11-11", "ops")
        rows = service.targets_progress(service.list_targets(s), {"revenue_fen": 4000, "buyers": None},
                                        date(2026, 11, 6))  # fmt: skip
    gmv, buyers = rows
    # (4000 − 2000) / (6000 − 2000) = 50% done after 5 of 10 days: on track
    assert gmv["progress"] == pytest.approx(0.5) and gmv["time_elapsed"] == pytest.approx(0.5)
    assert gmv["status"] == "on track"
    assert buyers["status"] == "no data" and buyers["progress"] is None


def test_kept_reports_over_http_and_the_cli(sqlite_store, admin_headers, tmp_path):
    import io
    import time

    from fastapi.testclient import TestClient
    from openpyxl import load_workbook
    from typer.testing import CliRunner

    from liebian.cli import app as cli_app
    from liebian.web.app import create_app

    _buyers()
    week = {"kind": "weekly", "start": "2026-11-02", "end": "2026-11-08"}
    with TestClient(create_app(), headers=admin_headers) as c:
        r = c.post("/api/v1/reports/documents", json=week)
        assert r.status_code == 202 and r.json()["status"] in ("pending", "running", "done"), r.text
        doc_id = r.json()["id"]
        deadline = time.monotonic() + 60
        while (kept := c.get(f"/api/v1/reports/documents/{doc_id}")).status_code == 409:
            assert time.monotonic() < deadline, "the report was not built within 60 s"
            time.sleep(0.2)
        assert kept.status_code == 200, kept.text
        fresh = c.get("/api/v1/reports/report.json", params=week).json()
        assert kept.json()["report"]["kpis"] == fresh["kpis"]  # the kept numbers are the analytics'
        assert kept.json()["requested_by"] and [
            d["id"] for d in c.get("/api/v1/reports/documents").json()
        ] == [doc_id]
        html = c.get(f"/api/v1/reports/documents/{doc_id}/report.html")
        assert html.status_code == 200 and parse_html(html.text) is not None
        xlsx = c.get(f"/api/v1/reports/documents/{doc_id}/report.xlsx")
        assert load_workbook(io.BytesIO(xlsx.content)).sheetnames
        missing = c.get("/api/v1/reports/documents/999")
        assert missing.status_code == 404 and missing.json()["errors"][0]["field"] == "document_id"
        bad = c.post(
            "/api/v1/reports/documents", json={"kind": "weekly", "start": "2026-11-08", "end": "2026-11-02"}
        )
        assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "end"

    runner = CliRunner()
    out = runner.invoke(
        cli_app, ["report", "keep", "--start", "2026-11-02", "--end", "2026-11-08", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    second = json.loads(out.stdout)[0]
    assert second["status"] == "done" and second["id"] != doc_id
    out = runner.invoke(cli_app, ["report", "documents", "--format", "json"])
    assert [d["id"] for d in json.loads(out.stdout)] == [second["id"], doc_id]
    target = tmp_path / "out"
    out = runner.invoke(cli_app, ["report", "document", str(second["id"]), "--out", str(target)])
    assert out.exit_code == 0, out.output
    written = sorted(p.name for p in target.iterdir())
    assert written == [
        f"liebian-weekly-2026-11-02-{second['id']}.html",
        f"liebian-weekly-2026-11-02-{second['id']}.xlsx",
    ]
    out = runner.invoke(cli_app, ["report", "document", "999"])
    assert out.exit_code == 2 and "report 999 does not exist" in out.output


def test_names_in_a_recommendation_are_data_in_either_language():
    """A campaign title (a name the operator gave) stays as written and is marked as data, so the
    English report does not read as mixed text; the rule's words are in the reader's language."""
    from liebian.reports.render import recommendation_text

    rec = {
        "rule": "fraud_rate",
        "recommendation": "stored",
        "params": {"campaign": "邀友有礼<b>", "fraud_rate": 0.012},
    }
    en, zh = recommendation_text(rec, "en"), recommendation_text(rec, "zh-CN")
    assert '<span translate="no">邀友有礼&lt;b&gt;</span>' in en and en.startswith("Campaign ")
    assert "1.2" in en and "作弊率" in zh and '<span translate="no">邀友有礼&lt;b&gt;</span>' in zh
    assert (
        str(recommendation_text({"rule": "unknown", "recommendation": "<i>x</i>"}, "en"))
        == "&lt;i&gt;x&lt;/i&gt;"
    )
