"""The console's reports and journeys pages (issue #11).

Fast tests (TestClient, a small store): generating a report through the console keeps it, the HTML
and XLSX are the service's; targets are set and edited with errors naming the field; journeys are
created with their definition's errors named; a viewer sees no write controls.
Browser tests (Chromium over the 5k demo brand): generate a report from the console and open it and
its workbook; see a journey's statistics equal to the automation service's (its JSON API).
"""

from __future__ import annotations

import io
import json
import re
import time
from datetime import date, datetime, timedelta
from html import unescape

import pytest
from console_helpers import check_accessibility, check_page, role_page
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from liebian.db.session import session_scope
from liebian.demo.generator import DEFAULT_END_DATE
from liebian.engine import warehouse
from liebian.reports import service as reports
from liebian.web.app import create_app
from liebian.web.i18n import format_number, format_percent
from shared_helpers import export_lines

HX = {"HX-Request": "true"}


def _orders() -> None:
    with warehouse.connect() as con:
        for i, (person, ts, fen) in enumerate(
            [(1, "2026-11-02 02:00:00", 1000), (2, "2026-11-03 03:00:00", 3000)]
        ):
            con.execute(
                "INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status,"
                " channel, status_ts, batch_id, ingested_at) VALUES (?, ?, ?, 'unionid', ?, ?, 'CNY', 'paid',"
                " 'wecom', ?, 'b', ?)",
                [f"o{i}", ts, person, f"u{person}", fen, ts, datetime(2026, 11, 9)],
            )


def _wait_done(client: TestClient, doc_id: int) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        html = client.get("/reports/documents").text
        status = re.search(rf'data-document="{doc_id}" data-status="(\w+)"', html).group(1)
        if status in ("done", "failed"):
            assert status == "done", html
            return
        assert 'hx-trigger="reports-changed from:body, every 2s"' in html  # the list polls while it works
        time.sleep(0.2)
    raise AssertionError("the report was not generated in time")


def test_generate_a_report_keep_it_and_open_its_html_and_xlsx(sqlite_store, admin_headers):
    _orders()
    with TestClient(create_app(), headers=admin_headers) as client:
        bad = client.post(
            "/reports/generate", data={"kind": "weekly", "start": "2026-11-02", "end": ""}, headers=HX
        )
        assert "start, end: give both or neither" in bad.text
        assert (
            "不是日期"
            in client.post("/reports/generate", data={"kind": "weekly", "start": "2.11", "end": "x"}).text
        )
        ok = client.post("/reports/generate", data={"kind": "weekly", "start": "2026-11-02", "end": "2026-11-08"},
                         headers=HX)  # fmt: skip
        assert ok.status_code == 200 and ok.headers["HX-Trigger"] == "reports-changed"
        doc_id = int(re.search(r"#(\d+)", ok.text).group(1))
        _wait_done(client, doc_id)
        page = client.get("/reports")
        assert f'href="/reports/{doc_id}/report.html"' in page.text and "2026-11-02 – 2026-11-08" in page.text
        html = client.get(f"/reports/{doc_id}/report.html")
        xlsx = client.get(f"/reports/{doc_id}/report.xlsx")
        assert client.get("/reports/999/report.html").status_code == 404
        csv_rows = export_lines(client.get("/reports?export=reports&format=csv").content)
    with session_scope() as s:
        kept = reports.get_document(s, doc_id)["report"]
    # the kept report, with the export watermark's footer before </body>
    unmarked = reports.render_html(kept)
    assert html.status_code == 200 and html.text.startswith(unmarked[: unmarked.rindex("</body>")])
    assert '<footer class="liebian-export"' in html.text
    assert "2026-11-02" in html.text and "<svg" in html.text
    wb = load_workbook(io.BytesIO(xlsx.content))
    assert wb.sheetnames == ["About", *reports.XLSX_SHEETS]
    kpis = {row[0]: row[1] for row in wb["KPIs"].iter_rows(min_row=2, values_only=True)}
    assert kpis["revenue_fen"] == 4000 and kpis["buyers"] == 2  # the two orders above, independently
    assert len(csv_rows) == 2 and csv_rows[1].startswith(f"{doc_id},weekly,2026-11-02,2026-11-08,done")


def test_set_and_edit_a_target_progress_measured_by_the_chosen_report(sqlite_store, admin_headers):
    _orders()
    form = {"name": "GMV 翻倍", "metric": "revenue_fen", "baseline": "2000", "target": "6,000",
            "start_date": "2026-11-01", "due_date": "2026-11-15", "owner": "运营"}  # fmt: skip
    with TestClient(create_app(), headers=admin_headers) as client:
        assert "baseline：'lots' 不是数字" in unescape(
            client.post("/reports/targets", data=form | {"baseline": "lots"}).text
        )
        assert (
            "due_date: must be after start_date"
            in client.post("/reports/targets", data=form | {"due_date": "2026-10-01"}).text
        )
        assert "metric: 'gmv' is not a KPI" in unescape(
            client.post("/reports/targets", data=form | {"metric": "gmv"}).text
        )
        created = client.post("/reports/targets", data=form, headers=HX)
        (target,) = client.get("/api/v1/reports/targets").json()
        assert created.status_code == 204
        assert created.headers["HX-Redirect"] == f"/reports?saved={target['id']}#target-{target['id']}"
        assert (target["name"], target["baseline"], target["target"]) == ("GMV 翻倍", 2000, 6000)
        unmeasured = client.get("/reports").text  # no report yet to measure it by
        assert "还没有可用的报告来衡量进度" in unmeasured and 'id="target-progress"' not in unmeasured
        with session_scope() as s:
            doc = reports.request_document(s, "weekly", date(2026, 11, 2), date(2026, 11, 8))
            newer = reports.request_document(s, "weekly", date(2026, 11, 9), date(2026, 11, 15))
        for d in (doc, newer):
            reports.produce_document(d["id"])
        # by default the newest report measures: no revenue that week, (0 − 2000) / 4000 = −50%
        newest = client.get("/reports").text.split(f'data-target="{target["id"]}"')[1].split("</tr>")[0]
        assert "-50.0%" in newest and "落后" in newest
        page = client.get(f"/reports?report={doc['id']}").text
        # revenue 4000 fen in the week: (4000 − 2000) / (6000 − 2000) = 50%; 7 of 14 days elapsed
        row = page.split(f'data-target="{target["id"]}"')[1].split("</tr>")[0]
        assert "¥40.00" in row and "50.0%" in row and "按计划" in row
        assert 'id="target-progress"' in page  # the progress chart
        edit = client.get(f"/reports?edit={target['id']}").text
        assert f'hx-put="/reports/targets/{target["id"]}"' in edit and 'value="GMV 翻倍"' in edit
        client.put(f"/reports/targets/{target['id']}", data=form | {"target": "50%", "metric": "conversion_rate",
                                                                    "baseline": "0.1"})  # fmt: skip
        (edited,) = client.get("/api/v1/reports/targets").json()
        assert (edited["metric"], edited["baseline"], edited["target"]) == ("conversion_rate", 0.1, 0.5)
        assert client.delete(f"/reports/targets/{target['id']}").headers["HX-Refresh"] == "true"
        assert client.get("/api/v1/reports/targets").json() == []


def test_subscriptions_from_the_console(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as client:
        bad = client.post(
            "/reports/subscriptions",
            data={
                "kind": "weekly",
                "channel": "webhook",
                "address": "https://hook.example.com/x",
                "secret": "short",
            },
        )
        assert "secret: a webhook needs a signing secret" in bad.text
        ok = client.post("/reports/subscriptions", data={"kind": "monthly", "channel": "email",
                                                         "address": "boss@example.com"})  # fmt: skip
        assert ok.headers["HX-Refresh"] == "true"
        (sub,) = client.get("/api/v1/reports/subscriptions").json()
        assert "boss@example.com" in client.get("/reports").text
        client.delete(f"/reports/subscriptions/{sub['id']}")
        assert client.get("/api/v1/reports/subscriptions").json()[0]["active"] is False


def test_a_viewer_reads_reports_but_cannot_change_them(sqlite_store):
    from shared_helpers import make_api_key

    viewer = {"Authorization": f"Bearer {make_api_key('service', 'viewer')}"}
    with TestClient(create_app(), headers=viewer) as client:
        page = client.get("/reports")
        assert page.status_code == 200 and "运营报告" in page.text
        assert 'hx-post="/reports/generate"' not in page.text and 'id="subscriptions"' not in page.text
        assert client.post("/reports/generate", data={"kind": "weekly"}).status_code == 403
        assert client.get("/journeys").status_code == 403  # journeys are campaign work


def test_create_a_journey_errors_name_the_field(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as client:
        new = client.get("/journeys/new?example=churn")
        assert new.status_code == 200 and "churn_risk" in new.text
        bad_json = client.post("/journeys", data={"name": "x", "definition": "{"})
        assert "definition：不是有效的 JSON" in bad_json.text
        bad = client.post(
            "/journeys",
            data={
                "name": "x",
                "definition": json.dumps(
                    {
                        "trigger": {"type": "silence", "days": 3},
                        "steps": [{"branch": {"if": {"event": "a"}, "then": 5}}],
                    }
                ),
            },
        )
        assert "goto 5 is not a step index" in bad.text and "definition" in bad.text
        quiet = {"trigger": {"type": "silence", "days": 3}, "steps": [{"action": {"type": "tag", "name": "t"}}],
                 "quiet_hours": "25-3"}  # fmt: skip
        assert (
            "quiet_hours"
            in client.post("/journeys", data={"name": "q", "definition": json.dumps(quiet)}).text
        )
        good = quiet | {"quiet_hours": "22-8"}
        made = client.post(
            "/journeys", data={"name": "安静", "definition": json.dumps(good)}
        )  # not activated
        jid = int(made.headers["HX-Redirect"].rsplit("/", 1)[1])
        assert client.get(f"/api/v1/journeys/{jid}").json()["status"] == "paused"
        detail = client.get(f"/journeys/{jid}").text
        assert "22:00–08:00" in detail and "本旅程设置" in detail and "已暂停" in detail
        assert "沉默超过 3 天" in detail and "打标签 t" in detail
        assert client.post(f"/journeys/{jid}/activate").headers["HX-Redirect"] == f"/journeys/{jid}"
        assert client.get(f"/api/v1/journeys/{jid}").json()["status"] == "active"
        dup = client.post("/journeys", data={"name": "安静", "definition": json.dumps(good), "activate": "1"})
        assert "a journey named '安静' exists" in unescape(dup.text)
        assert client.get("/journeys/999").status_code == 404


# ------------------------------------------------------------------------------------ in Chromium


@pytest.mark.browser
def test_generate_a_report_from_the_console_and_open_it(page):
    end = DEFAULT_END_DATE
    start = end - timedelta(days=6)
    page.goto("/reports")
    # a target first, so that the report measures it
    form = page.locator("#target-form form")
    form.get_by_label("目标", exact=True).fill("次日留存 32%→41%")
    form.get_by_label("指标").select_option("retention_d1")
    form.get_by_label("基线").fill("32%")
    form.get_by_label("目标值").fill("41%")
    form.get_by_label("开始日期").fill((start - timedelta(days=30)).isoformat())
    form.get_by_label("截止日期").fill((end + timedelta(days=60)).isoformat())
    form.get_by_role("button", name="保存").click()
    page.wait_for_url(re.compile(r".*/reports\?saved=\d+#target-\d+$"))
    assert page.locator("#targets-table tr.saved", has_text="次日留存 32%→41%").count() == 1

    generate = page.locator("#generate-form")
    generate.get_by_label("类型").select_option("weekly")
    generate.get_by_label("开始日期（可选）").fill(start.isoformat())
    generate.get_by_label("结束日期（可选）").fill(end.isoformat())
    generate.get_by_role("button", name="生成").click()
    flash = page.locator("#generate-result .flash.ok")
    flash.wait_for()
    doc_id = int(re.search(r"#(\d+)", flash.inner_text()).group(1))
    row = page.locator(f'#documents tr[data-document="{doc_id}"]')
    page.wait_for_selector(f'#documents tr[data-document="{doc_id}"][data-status="done"]', timeout=180_000)
    assert f"{start.isoformat()} – {end.isoformat()}" in row.inner_text()

    # the same period from the JSON API (computed afresh) equals the kept report
    api = page.request.get(f"/api/v1/reports/report.json?kind=weekly&start={start}&end={end}").json()
    with page.context.expect_page() as opened:
        row.get_by_role("link", name="查看 HTML").click()
    report_tab = opened.value
    report_tab.wait_for_load_state()
    assert "周报" in report_tab.title() and "Weekly" not in report_tab.title()  # in the console's language
    kpi_rows = dict(
        report_tab.locator("#kpis tr").evaluate_all(
            "rows => rows.slice(1).map(r => [r.cells[0].textContent, r.cells[1].textContent])"
        )
    )
    assert kpi_rows["新增用户"] == f"{api['kpis']['new_users']:,}"
    assert report_tab.locator("#targets").inner_text().count("次日留存 32%→41%") == 1
    report_tab.close()

    with page.expect_download() as download:
        row.get_by_role("link", name="下载 XLSX").click()
    wb = load_workbook(io.BytesIO(download.value.path().read_bytes()))
    assert wb.sheetnames == ["About", *reports.XLSX_SHEETS]
    kpis = {r[0]: r[1] for r in wb["KPIs"].iter_rows(min_row=2, values_only=True)}
    for key in ("new_users", "buyers", "revenue_fen", "participants"):
        assert kpis[key] == api["kpis"][key], key

    # the targets' progress is measured by the newest report: equal to the API's
    page.goto("/reports")
    assert page.locator("#measured-by").input_value() == str(doc_id)
    (expected,) = [x for x in api["targets"] if x["name"] == "次日留存 32%→41%"]
    target_row = page.locator("#targets-table tr", has_text="次日留存 32%→41%")
    assert target_row.locator("[data-progress]").inner_text() == format_percent(expected["progress"])
    assert target_row.locator("[data-current]").inner_text() == format_percent(expected["current"])
    check_page(page, "reports", min_charts=1)
    check_accessibility(page)


def _arrange_journey(name: str) -> int:
    """A welcome journey over the demo's sign-ups, run once at noon (Shanghai) on a fixed day;
    every other entrant gave marketing consent."""
    from liebian.automation import service
    from liebian.privacy import service as privacy

    now = datetime.combine(DEFAULT_END_DATE - timedelta(days=10), datetime.min.time()) + timedelta(hours=4)
    definition = {
        "trigger": {"type": "event", "event": "signup", "lookback_hours": 72},
        "steps": [
            {"action": {"type": "tag", "name": "welcomed"}},
            {"wait": {"hours": 48}},
            {"branch": {"if": {"event": "order_paid"}, "then": "exit", "else": "next"}},
            {"action": {"type": "webhook", "channel": "sms", "url": "https://sms.example.com/send",
                        "secret": "0123456789abcdef-secret", "payload": {"template": "welcome"}}},
        ],
        "goal": {"event": "order_paid", "within_days": 14},
        "holdout_pct": 20,
    }  # fmt: skip
    with warehouse.connect() as con:
        people = [r[0] for r in con.execute(
            "SELECT DISTINCT person_id FROM events WHERE event = 'signup' AND ts > ? AND ts <= ? ORDER BY 1",
            [now - timedelta(hours=72), now]).fetchall()]  # fmt: skip
    with session_scope() as s:
        if privacy.current_notice(s) is None:
            privacy.publish_notice(s, title="隐私政策", body="营销触达说明", purposes=["collection", "marketing"],
                                   reconsent_purposes=[], actor="test")  # fmt: skip
        for p in people[::2]:
            privacy.record_consent(s, p, "marketing", True, actor="test")
        jid = service.create_journey(s, name, definition).id
    result = service.run(jid, now)
    assert result["entered"] == len(people) > 20 and result["actions"].get("sent", 0) > 0
    return jid


@pytest.mark.browser
def test_a_journeys_statistics_equal_the_automation_service(page, console_store):
    jid = _arrange_journey("新用户欢迎（测试）")
    stats = page.request.get(f"/api/v1/journeys/{jid}/stats").json()
    t, c = stats["arms"]["treatment"], stats["arms"]["control"]
    assert t["actioned"] > 0 and c["actioned"] == 0  # the control group was held out

    page.goto("/journeys")
    row = page.locator("table#journeys tbody tr", has_text="新用户欢迎（测试）")
    cells = row.locator("td").all_inner_texts()
    assert cells[3:7] == [format_number(t["entered"], "zh-CN"), format_number(c["entered"], "zh-CN"),
                          format_number(t["actioned"], "zh-CN"), format_number(t["converted"], "zh-CN")]  # fmt: skip
    assert cells[7:11] == [format_percent(t["conversion_rate"]), format_percent(c["conversion_rate"]),
                           format_percent(stats["lift"]), format_percent(stats["uplift"])]  # fmt: skip
    check_page(page, "journeys", min_charts=1)
    check_accessibility(page)

    row.get_by_role("link", name="新用户欢迎（测试）").click()
    page.wait_for_url(f"**/journeys/{jid}")
    shown = {
        k: page.locator(f'[data-stat="{k}"]').inner_text()
        for k in ("entered", "actioned", "converted", "lift")
    }
    assert shown == {
        "entered": format_number(t["entered"], "zh-CN"),
        "actioned": format_number(t["actioned"], "zh-CN"),
        "converted": format_number(t["converted"], "zh-CN"),
        "lift": format_percent(stats["lift"]),
    }
    flow = page.locator("#journey-flow > li").all_inner_texts()
    assert (
        len(flow) == 6
        and "signup" in flow[0]
        and "等待 48 小时" in flow[2]
        and "14 天内发生 order_paid" in flow[5]
    )
    assert "退出旅程" in flow[3] and "sms" in flow[4]
    rules = page.locator("#journey-rules").inner_text()
    assert "21:00–09:00" in rules and "每 1 天最多 1 次" in rules and "20%" in rules
    assert "0123456789abcdef-secret" not in page.content()  # the webhook secret is never shown
    outcomes = dict(zip(*[iter(page.locator("table#outcomes td").all_inner_texts())] * 2, strict=True))
    assert outcomes["已执行"] == format_number(stats["outcomes"]["sent"], "zh-CN")
    check_page(page, "journey", min_charts=1)
    check_accessibility(page)

    page.get_by_role("button", name="暂停").click()
    page.locator("#journey-status", has_text="已暂停").wait_for()
    assert page.request.get(f"/api/v1/journeys/{jid}").json()["status"] == "paused"
    page.get_by_role("button", name="启用").click()
    page.locator("#journey-status", has_text="运行中").wait_for()


@pytest.mark.browser
def test_create_a_journey_in_the_console(page):
    # the raw JSON editor (the form editor is tests/web/test_console_journey_editor.py)
    page.goto("/journeys/new?mode=json&example=churn")
    assert "churn_risk" in page.get_by_label("旅程定义（JSON）").input_value()
    page.get_by_label("名称").fill("流失干预（草稿）")
    page.get_by_label("旅程定义（JSON）").fill('{"trigger": {"type": "silence"}}')
    page.get_by_role("button", name="创建旅程").click()
    page.locator("#journey-result .flash.error", has_text="definition.trigger.silence.days").wait_for()
    check_accessibility(page)
    page.goto("/journeys/new?mode=json&example=churn")
    page.get_by_label("名称").fill("流失干预（草稿）")
    page.get_by_label("创建后立即启用").uncheck()
    page.get_by_role("button", name="创建旅程").click()
    page.wait_for_url(re.compile(r".*/journeys/\d+$"))
    jid = int(page.url.rsplit("/", 1)[1])
    journey = page.request.get(f"/api/v1/journeys/{jid}").json()
    assert journey["status"] == "paused" and journey["definition"]["trigger"] == {
        "type": "churn_risk",
        "threshold": 0.7,
    }
    assert page.locator("#journey-status").inner_text() == "已暂停"


@pytest.mark.browser
def test_roles_see_reports_and_journeys_as_their_permissions_allow(browser, console_url):
    context, tab = role_page(browser, console_url, "viewer1")
    tab.goto("/reports")
    assert tab.locator("h1").inner_text() == "运营报告"
    assert tab.locator("#generate-form").count() == 0 and tab.locator("#target-form").count() == 0
    assert tab.locator("nav.side a[href^='/journeys']").count() == 0
    check_accessibility(tab)
    context.close()
    assert not tab.console_errors
    context, tab = role_page(browser, console_url, "operator1")
    tab.goto("/journeys")
    assert tab.get_by_role("link", name="新建旅程").is_visible()
    context.close()
    assert not tab.console_errors
