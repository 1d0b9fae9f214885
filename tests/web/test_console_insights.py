"""The insight builder in Chromium over the demo brand: a funnel built step by step (added, moved,
removed, window, strict order, an exclusion step) shows the numbers the real HTTP API answers for
the same steps and window; it is saved, reopened and shown on a dashboard; retention and trends
build; hostile parameters are refused on the page naming the field (422, never a 5xx)."""

from __future__ import annotations

import csv
import io
import re

import pytest
from console_helpers import check_accessibility, check_page, login, open_page
from playwright.sync_api import expect

PATIENCE_MS = 120_000  # the machine may be busy: waiting longer only slows a slow run, it asserts nothing


@pytest.fixture
def page(browser, console_url: str):
    """conftest's logged-in admin tab, with more patience; no browser-console error allowed."""
    context, tab, errors = login(browser, console_url, "admin", timeout=PATIENCE_MS)
    tab.console_errors = errors
    yield tab
    context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


def _column(page, table: str, index: int) -> list[int]:
    cells = page.locator(f"#{table} tbody tr td:nth-child({index})").all_inner_texts()
    return [int(re.sub(r"[^\d]", "", c)) for c in cells]


def _api_persons(page, **params) -> list[int]:
    response = page.request.get("/api/v1/analytics/funnel", params=params)
    assert response.status == 200, response.text()
    return [s["persons"] for s in response.json()["steps"]]


@pytest.mark.browser
def test_a_funnel_built_in_the_builder_equals_the_api(page) -> None:
    page.goto("/insights")
    steps = page.locator("#funnel-steps select[name=step]")
    expect(steps).to_have_count(4)  # the fission funnel to start from
    page.locator("#add-step").click()
    expect(steps).to_have_count(5)
    steps.nth(4).select_option("invite_share")
    page.get_by_role("button", name="上移 5").click()  # invite_share before order_paid
    page.get_by_role("button", name="删除 5").click()  # drop order_paid
    expect(steps).to_have_count(4)
    assert [steps.nth(i).input_value() for i in range(4)] == [
        "exposure",
        "page_view",
        "join_campaign",
        "invite_share",
    ]
    form = page.locator("#insight-form")
    form.get_by_label("转化窗口（天）").fill("3")
    form.get_by_label("步骤顺序").select_option("ordered")
    page.locator("#add-exclusion").click()
    form.locator("select[name=ex_event]").select_option("app_open")
    form.locator("input[name=ex_to]").fill("3")
    page.locator("#run-insight").click()
    check_page(page, "insights-funnel", min_charts=1)
    check_accessibility(page)

    shown = _column(page, "funnel_steps", 4)
    api = _api_persons(
        page, steps="exposure,page_view,join_campaign,invite_share", window_days="3", exclusion="app_open:1:3"
    )
    assert shown == api and shown[0] > 0 and shown[-1] > 0
    # the exclusion made a difference, and strict order is another answer the page gives as the API does
    plain = _api_persons(page, steps="exposure,page_view,join_campaign,invite_share", window_days="3")
    assert plain != api
    form.get_by_label("步骤顺序").select_option("strict")
    page.locator("#run-insight").click()
    strict = _api_persons(
        page, steps="exposure,page_view,join_campaign,invite_share", window_days="3", mode="strict",
        exclusion="app_open:1:3",
    )  # fmt: skip
    assert _column(page, "funnel_steps", 4) == strict

    # save it, open it again, put it on a dashboard
    save = page.locator("#save-insight")
    save.get_by_label("名称").fill("严格裂变漏斗")
    save.get_by_role("button", name="保存洞察").click()
    page.wait_for_url(re.compile(r"/insights/\d+\?"))
    expect(page.locator("#insight-title")).to_have_text("严格裂变漏斗")
    assert _column(page, "funnel_steps", 4) == strict
    page.goto("/insights/saved")
    expect(page.locator("#saved-insights")).to_contain_text("严格裂变漏斗")
    page.goto("/dashboards")
    board = page.locator("#dashboard-form")
    board.get_by_label("看板名称").fill("周会看板")
    board.locator("label.check", has_text="严格裂变漏斗").locator("input").check()
    board.get_by_role("button", name="创建看板").click()
    page.wait_for_url(re.compile(r"/dashboards/\d+$"))
    check_page(page, "insights-dashboard", min_charts=1)
    assert _column(page, "p1_funnel_steps", 4) == strict


@pytest.mark.browser
def test_retention_and_trends_build_from_the_same_analyses(page) -> None:
    page.goto("/insights?kind=retention&unit=week&periods=4&cohorts=3")
    check_page(page, "insights-retention", min_charts=1)
    expect(page.locator("#retention_matrix tbody tr")).to_have_count(3)
    # in English: counts to the unit (the Chinese page shows 1.2万 from 10,000 on)
    page.goto(
        "/insights?kind=trends&event=page_view&event=order_paid&interval=week&breakdown=channel&lang=en"
    )
    check_page(page, "insights-trends", min_charts=1)
    api = page.request.get(
        "/api/v1/analytics/trends?event=page_view&event=order_paid&interval=week&breakdown=channel"
    ).json()
    # the page lists the API's rows in its order, up to 200, says how many more, and the export has them all
    counts = [c for s in api["series"] for c in s["counts"]]
    shown = _column(page, "trends_table", 4)
    assert shown == counts[: len(shown)] and sum(counts) > 0
    if len(counts) > len(shown):
        assert len(shown) == 200
        expect(page.locator(".table-box", has=page.locator("#trends_table"))).to_contain_text(
            f"Rows not shown (export to see them): {len(counts) - 200}"
        )
    export = page.request.get(
        "/insights?kind=trends&event=page_view&event=order_paid&interval=week&breakdown=channel"
        "&export=trends_table&format=csv"
    )
    assert export.status == 200
    exported = list(csv.DictReader(io.StringIO(export.text().lstrip("\ufeff"))))
    # the last line is the export's watermark footer (privacy/watermark.py), not a row
    assert [int(r["Count"]) for r in exported[:-1]] == counts


@pytest.mark.browser
@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("step=exposure&step=page_view&window_days=100000000000000000000", "window_days"),
        ("&".join(["step=exposure"] * 50), "steps"),
        ("step=exposure&step=x%27%20OR%201%3D1%3B--", "steps"),  # "=" is no event name
        ("step=exposure&step=page_view&mode=sideways", "mode"),
        ("step=exposure&step=page_view&ex_event=app_open&ex_from=2&ex_to=1", "exclusions"),
        ("step=exposure&step=%3Cscript%3Ealert(1)%3C%2Fscript%3E", "事件"),
    ],
)
def test_hostile_builder_input_is_refused_on_the_page(page, query, field) -> None:
    response = page.goto(f"/insights?kind=funnel&{query}")
    assert response is not None and response.status == 422
    alert = page.locator(".flash.error")
    expect(alert).to_contain_text(field)
    assert page.locator("script:has-text('alert(1)')").count() == 0
    # the refused page itself is the 422 the browser reports: expected here, nothing else is
    page.console_errors[:] = [e for e in page.console_errors if "status of 422" not in e]


@pytest.mark.browser
def test_a_viewer_reads_insights_but_cannot_save(browser, console_url) -> None:
    context, page, _ = login(browser, console_url, "viewer1", timeout=PATIENCE_MS)
    try:
        response = page.goto("/insights")
        assert response is not None and response.status == 200
        assert page.locator("#save-insight").count() == 0
        posted = page.request.post("/insights/save", form={"name": "x", "kind": "funnel", "params": "{}"})
        assert posted.status == 403
    finally:
        context.close()


@pytest.mark.browser
def test_drop_offs_of_a_built_funnel_become_a_segment_and_enter_a_journey(page, console_store) -> None:
    from sqlalchemy import select

    from liebian.automation import service as automation
    from liebian.automation.models import JourneyEnrollment
    from liebian.db.session import session_scope
    from liebian.tags import service as tags

    definition = {
        "trigger": {"type": "event", "event": "never_tracked", "lookback_hours": 1},
        "steps": [{"action": {"type": "tag", "name": "followed_up"}}],
        "holdout_pct": 0,
    }
    with session_scope() as s:
        jid = automation.create_journey(s, "流失召回（测试）", definition).id
        automation.set_status(s, jid, "active")
    page.goto(
        "/insights?kind=funnel&step=exposure&step=page_view&step=join_campaign&window_days=3&mode=strict"
    )
    page.locator("#funnel_steps tbody tr").nth(1).locator("a").click()
    page.wait_for_url(re.compile(r"/funnel/dropped\?"))
    check_page(page, "insights-dropped")
    api = page.request.get(
        "/api/v1/analytics/funnel/dropped",
        params={
            "steps": "exposure,page_view,join_campaign",
            "window_days": "3",
            "mode": "strict",
            "at_step": "2",
        },
    ).json()
    expected = sorted(r["person_id"] for r in api)
    assert int(page.locator("#dropped-count").get_attribute("data-value") or -1) == len(expected) > 0

    segment = page.locator("#dropped-segment")
    segment.get_by_label("分群名称").fill("严格漏斗流失")
    segment.get_by_role("button", name="保存为分群").click()
    expect(page.locator("#dropped-action-result")).to_contain_text("严格漏斗流失")
    with session_scope() as s:
        assert tags.members(s, "严格漏斗流失", limit=100_000) == expected
    segment.get_by_role("button", name="保存为分群").click()  # the name is taken now: refused, named
    expect(page.locator("#dropped-action-result .flash.error")).to_contain_text("严格漏斗流失")

    page.once("dialog", lambda dialog: dialog.accept())
    journey = page.locator("#dropped-journey")
    journey.locator("select[name=journey_id]").select_option(str(jid))
    journey.get_by_role("button", name="发送到旅程").click()
    expect(page.locator("#dropped-action-result .flash.ok")).to_contain_text(
        f"{len(expected)}", timeout=PATIENCE_MS
    )
    with session_scope() as s:
        enrolled = s.scalars(
            select(JourneyEnrollment.person_id).where(JourneyEnrollment.journey_id == jid)
        ).all()
    assert sorted(enrolled) == expected


@pytest.mark.browser
def test_the_insight_pages_speak_one_language(browser, console_url) -> None:
    """The l10n crawl (tests/web/l10n_crawl.py) over this module's pages only, in both languages."""
    from l10n_crawl import PAGES, problems_of

    paths = [p for p in PAGES if p.startswith(("/insights", "/dashboards"))]
    assert len(paths) >= 5
    context, tab, _ = login(browser, console_url, "admin", timeout=PATIENCE_MS)
    try:
        found = {}
        for lang in ("zh-CN", "en"):
            for path in paths:
                open_page(tab, path + ("&" if "?" in path else "?") + f"lang={lang}")
                if problems := problems_of(tab, lang):
                    found[f"{lang} {path}"] = problems
    finally:
        context.close()
    assert not found, found
