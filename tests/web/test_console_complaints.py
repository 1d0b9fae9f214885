"""The "what is due" page of complaints and data-subject requests in Chromium: an overdue
complaint and an open request arranged through the complaints service, the page in Chinese then in
English with the due items (overdue first), the menu entry only for roles that handle complaints,
the CSV export carrying the export watermark."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from console_helpers import check_accessibility, check_page, role_page

from liebian.complaints import service as complaints
from liebian.db.session import session_scope
from liebian.privacy import watermark


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@pytest.mark.browser
def test_the_due_page_in_both_languages_with_the_due_items(page, browser, console_url, console_store):
    marker = uuid.uuid4().hex[:8]
    with session_scope() as s:
        late = complaints.create(
            s,
            complaints.Intake("complaint", "wecom", "food_safety", f"喝完肚子疼 {marker}，电话 13812345678",
                              owner="operator1", received_at=_now() - timedelta(hours=30)),
            actor="test",
        )  # fmt: skip
        request = complaints.create(
            s,
            complaints.Intake("subject_request", "app", "deletion", f"请删除我的数据 {marker}", person_id=None,
                              id_type="phone", id_value="13812345678"),
            actor="test",
        )  # fmt: skip

    page.goto("/complaints?lang=zh-CN")
    assert page.locator("h1").inner_text() == "待处理的投诉与个人信息请求"
    rows = page.locator("table#due tbody tr")
    texts = [rows.nth(i).inner_text() for i in range(rows.count())]
    mine = [t for t in texts if marker in t]
    assert len(mine) == 2 and "食品安全" in mine[0] and "已超时" in mine[0] and "operator1" in mine[0]
    assert "删除" in mine[1] and "个人信息权利请求" in mine[1] and "未分配" in mine[1]
    assert "13812345678" not in page.content() and "138****5678" in mine[0]
    assert texts.index(mine[0]) < texts.index(mine[1])  # overdue first
    assert int(page.locator("#count-overdue").inner_text()) >= 1
    check_page(page, "complaints-zh")
    check_accessibility(page)

    page.goto("/complaints?lang=en")
    assert page.locator("h1").inner_text().startswith("What is due")
    row = page.locator("table#due tbody tr", has_text=marker).first
    assert "Food safety" in row.inner_text() and "Overdue" in row.inner_text()
    assert page.locator("nav a[href='/complaints']").count() == 1

    # the export of the list carries the watermark: footer, mark, audit entry
    export = page.request.get("/complaints?export=due&format=csv")
    assert export.ok
    lines = export.body().decode("utf-8-sig").splitlines()
    assert lines[-1].startswith(watermark.FOOTER_START) and "console /complaints table due (csv)" in lines[-1]
    with session_scope() as s:
        assert watermark.trace(s, "\n".join(lines[1:11]).encode())["verdict"] == "identified"
        for case in (late, request):
            complaints.resolve(s, case["id"], "withdrawn", "test over", actor="test")

    # a viewer neither sees the entry nor opens the page
    context, viewer = role_page(browser, console_url, "viewer1")
    try:
        viewer.goto("/")
        assert viewer.locator("nav a[href='/complaints']").count() == 0
        assert viewer.request.get("/complaints").status == 403
    finally:
        context.close()
