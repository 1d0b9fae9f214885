"""Data pages: the quality report (charts and tables from the quality service) and file import with
progress (upload, background import in the server process, progress fragment, batch result) — in
Chromium against the 5k demo, and with TestClient for the error paths and the services' additions
(ingest's progress hook and batch records, quality's current_report)."""

from __future__ import annotations

import re
import time
import uuid

import pytest
from console_helpers import check_accessibility, check_page
from fastapi.testclient import TestClient

from liebian.config import get_settings
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.ingest import service as ingest
from liebian.quality import service as quality
from liebian.web.app import create_app

HEADER = "event_id,ts,user_id,id_type,event,channel,备注\n"


def _events_csv(prefix: str, *, bad_line: bool = True) -> str:
    """Four events (channels written in Chinese, a Chinese note); the third data row (line 4, the
    header being line 1) has an unreadable time when `bad_line`."""
    rows = [
        f"{prefix}-1,2026-11-01 10:00:00,{prefix}-u1,unionid,view,企业微信,第一行",
        f"{prefix}-2,2026-11-01 10:05:00,{prefix}-u2,unionid,share,小程序,第二行",
        f"{prefix}-3,{'不是时间' if bad_line else '2026-11-01 10:30:00'},{prefix}-u3,unionid,view,抖音,坏行",
        f"{prefix}-4,2026-11-01 11:00:00,{prefix}-u4,unionid,signup,门店,第四行",
    ]
    return HEADER + "\n".join(rows) + "\n"


def test_import_reports_progress_and_keeps_a_batch_record(sqlite_store, tmp_path):
    path = tmp_path / "events.csv"
    path.write_bytes(_events_csv("p").encode("gbk"))
    heard: list[tuple[str, float]] = []
    result = ingest.import_file(path, "events", on_progress=lambda step, f: heard.append((step, f)))
    steps = [s for s, _ in heard]
    # every step of the pipeline is heard, in order, and the fraction only grows to 1
    order = [
        "reading",
        "normalising",
        "hashing identifiers",
        "deduplicating",
        "resolving identities",
        "loading",
    ]
    assert [s for s in dict.fromkeys(steps) if s != "done"] == order
    fractions = [f for _, f in heard]
    assert fractions == sorted(fractions) and heard[-1] == ("done", 1.0)
    assert result.encoding == "gb18030" and (result.rows_loaded, result.rows_rejected) == (3, 1)
    with warehouse.connect() as con:
        batch = ingest.get_batch(con, result.batch_id)
        latest = ingest.list_batches(con, limit=5)
        assert ingest.get_batch(con, "no-such-batch") is None
    assert (batch["rows_read"], batch["rows_loaded"], batch["rows_duplicate"], batch["rows_rejected"]) == (
        result.rows_read, result.rows_loaded, result.rows_duplicate, result.rows_rejected,
    )  # fmt: skip
    assert batch["rejects"] == [{"line": 4, "field": "ts", "reason": batch["rejects"][0]["reason"]}]
    assert batch["rejects"][0]["reason"].startswith("unreadable timestamp")
    assert latest[0]["batch_id"] == result.batch_id and latest[0]["source"] == "file:events.csv"


def test_the_console_report_is_the_quality_report_and_follows_new_data(sqlite_store, tmp_path):
    first = tmp_path / "a.csv"
    first.write_text(_events_csv("q"), encoding="utf-8")
    ingest.import_file(first, "events")
    with warehouse.connect() as con, session_scope() as s:
        shown, daily = quality.current_report(con, session=s)
        fresh = quality.quality_report(con, session=s, now=shown.generated_at)
        again, _ = quality.current_report(con, session=s)
        # daily volume: an independent count of events per channel
        counted = dict(con.execute("SELECT channel, count(*) FROM events GROUP BY 1").fetchall())
    assert shown.model_dump(exclude={"generated_at"}) == fresh.model_dump(exclude={"generated_at"})
    assert again is shown  # unchanged data in the same hour: the same report, not computed again
    events = daily[daily["tbl"] == "events"]
    assert events.groupby("channel")["n"].sum().to_dict() == counted
    assert shown.error_rate.rows_received == 4 and shown.quarantine.rejected_rows == 1

    more = tmp_path / "b.csv"
    more.write_text(_events_csv("r", bad_line=False), encoding="utf-8")
    ingest.import_file(more, "events")
    with warehouse.connect() as con, session_scope() as s:
        after, _ = quality.current_report(con, session=s)
    assert after.error_rate.rows_received == 8  # the new rows are in: nothing stale is served


def _wait_for_job(client: TestClient, html: str) -> str:
    job_id = re.search(r'id="job-([0-9a-f]+)"', html).group(1)
    for _ in range(200):
        fragment = client.get(f"/import/jobs/{job_id}").text
        if 'data-status="done"' in fragment or 'data-status="failed"' in fragment:
            return fragment
        time.sleep(0.1)
    raise AssertionError("the import did not finish")


def test_import_page_errors_are_named(sqlite_store, admin_headers, tmp_path):
    with TestClient(create_app(), headers=admin_headers) as client:
        page = client.get("/import")
        assert page.status_code == 200 and 'hx-encoding="multipart/form-data"' in page.text
        wrong_preset = client.post(
            "/import", data={"kind": "events", "preset": "douyin_orders"},
            files={"file": ("x.csv", b"a\n1\n", "text/csv")},
        )  # fmt: skip
        assert (
            "flash error" in wrong_preset.text
            and "preset" in wrong_preset.text
            and "not events" in wrong_preset.text
        )
        no_file = client.post("/import", data={"kind": "events", "preset": "generic"})
        assert "flash error" in no_file.text and "file:" in no_file.text
        wrong_type = client.post(
            "/import",
            data={"kind": "events"},
            files={"file": ("notes.docx", b"x", "application/octet-stream")},
        )
        assert "unknown file type" in wrong_type.text
        # a file that cannot be read at all: the job fails and says why
        utf16 = client.post(
            "/import", data={"kind": "events"},
            files={"file": ("u16.csv", _events_csv("s").encode("utf-16"), "text/csv")},
        )  # fmt: skip
        failed = _wait_for_job(client, utf16.text)
        assert 'data-status="failed"' in failed and "UTF-16" in failed
        # a good file: the result is the batch record
        good = client.post(
            "/import", data={"kind": "events", "preset": "generic"},
            files={"file": ("好.csv", _events_csv("t").encode("gbk"), "text/csv")},
        )  # fmt: skip
        done = _wait_for_job(client, good.text)
        batch_id = re.search(r'data-batch="([^"]+)"', done).group(1)
        assert 'id="res-loaded">3<' in done and 'id="res-rejected">1<' in done
        detail = client.get(f"/import/batches/{batch_id}")
        # the reason by name in the console's language (the batch record keeps the importer's words)
        assert detail.status_code == 200 and "无法识别的时间" in detail.text
        assert client.get("/import/batches/nope").status_code == 404
        assert "找不到这个导入任务" in client.get("/import/jobs/unknown").text
        bad_period = client.get("/quality?start=2026-11-10&end=2026-11-01")
        assert bad_period.status_code == 422 and "is after end" in bad_period.text
    # the uploads were removed once imported
    assert not any((get_settings().data_dir / "tmp" / "uploads").glob("*/*"))


def test_an_analyst_reads_batches_but_cannot_upload(sqlite_store, tmp_path):
    from shared_helpers import make_api_key

    analyst = {"Authorization": f"Bearer {make_api_key('service', 'analyst')}"}
    public = {"X-API-Key": make_api_key("public", None)}
    with TestClient(create_app(), headers=analyst) as client:
        page = client.get("/import")
        assert page.status_code == 200 and 'id="import-form"' not in page.text
        refused = client.post(
            "/import", data={"kind": "events"}, files={"file": ("a.csv", b"a\n", "text/csv")}
        )
        assert refused.status_code == 403
    with TestClient(create_app(), headers=public) as client:
        # the public front-end key (ingest:write) does not read batch records
        assert client.get("/import").status_code == 403


@pytest.mark.browser
def test_quality_page_shows_the_quality_service_report(page, console_store):
    page.goto("/quality")
    check_page(page, "quality", min_charts=3)
    check_accessibility(page)
    api = page.request.get("/api/v1/quality/report").json()
    assert page.locator("#error-rate").inner_text() == f"{api['error_rate']['error_rate'] * 100:.3f}%"
    assert page.locator("#rejected-rows").inner_text() == f"{api['quarantine']['rejected_rows']:,}"
    assert int(page.locator("#anomaly-count").inner_text()) == len(api["volume_anomalies"])
    # the quarantine table lists the report's reasons with their counts
    rows = page.locator("table#quarantine tbody tr")
    assert rows.count() == min(100, len(api["quarantine"]["by_reason"]))
    first = api["quarantine"]["by_reason"][0]
    assert rows.first.locator("td").nth(4).inner_text().replace(",", "") == str(first["rows"])


@pytest.mark.browser
def test_upload_a_gbk_csv_and_watch_it_import(page, console_store):
    prefix = f"gbk{uuid.uuid4().hex[:6]}"
    page.goto("/import")
    page.get_by_label("数据类型").select_option("events")
    page.get_by_label("列映射预设").select_option("generic")
    page.locator("#import-file").set_input_files(
        files=[{"name": f"{prefix}.csv", "mimeType": "text/csv", "buffer": _events_csv(prefix).encode("gbk")}]
    )
    with page.expect_response(lambda r: r.url.endswith("/import") and r.request.method == "POST") as posted:
        page.get_by_role("button", name="开始导入").click()
    first = posted.value.text()
    # the upload answers at once with a progress fragment that polls; the import runs behind it
    assert "<progress" in first and 'hx-trigger="every 500ms"' in first
    job = page.locator("#import-status .job")
    job.first.wait_for()
    page.wait_for_selector("#import-status .job[data-status=done]", timeout=60_000)
    batch_id = job.get_attribute("data-batch")
    shown = {
        k: int(page.locator(f"#res-{k}").inner_text()) for k in ("read", "loaded", "duplicate", "rejected")
    }
    with warehouse.connect() as con:
        record = ingest.get_batch(con, batch_id)
    assert shown == {
        "read": record["rows_read"], "loaded": record["rows_loaded"],
        "duplicate": record["rows_duplicate"], "rejected": record["rows_rejected"],
    }  # fmt: skip
    assert shown == {"read": 4, "loaded": 3, "duplicate": 0, "rejected": 1}
    assert "gb18030" in job.inner_text()
    # the rejected line is named: line 4 (the header is line 1), field ts, and why
    reject = job.locator("table.rejects tbody tr")
    assert reject.count() == 1 and reject.locator("td").nth(0).inner_text() == "4"
    assert reject.locator("td").nth(1).inner_text() == "ts" and "unreadable timestamp" in reject.inner_text()
    check_page(page, "import-done")
    check_accessibility(page)
    # the batch page and the recent list, with a link to the quarantine
    page.get_by_role("link", name="查看此批次").click()
    page.wait_for_load_state("networkidle")
    assert batch_id in page.locator("h1").inner_text()
    assert page.locator("table#rejects tbody tr").count() == 1
    page.get_by_role("link", name="查看隔离区").click()
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/quality#quarantine-title")
    page.goto("/import")
    assert page.locator("table#batches tbody tr").first.locator("a").inner_text() == batch_id
