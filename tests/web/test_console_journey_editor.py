"""The journey form editor (issue #22): steps as forms (trigger, wait, branch, action) with add,
remove and reorder, every field checked with a catalogued message next to it, saved through the
automation service (the definition stays JSON), and copied back into the editor unchanged.

Over HTTP (TestClient) for the operations and hostile values; in Chromium for the whole build →
save → reload round trip."""

from __future__ import annotations

import re

import pytest
from console_helpers import check_accessibility, check_page, login
from fastapi.testclient import TestClient
from playwright.sync_api import expect

from liebian.automation import service
from liebian.db.session import session_scope
from liebian.web.app import create_app
from liebian.web.pages import journey_form

BASE = {
    "name": "唤醒旅程", "trigger_type": "silence", "trigger_days": "14", "goal_event": "order_paid",
    "goal_days": "14", "holdout_pct": "10", "quiet_hours": "", "activate": "1",
    "steps-0-kind": "action", "steps-0-action": "tag", "steps-0-name": "woken",
}  # fmt: skip


def test_operations_add_remove_and_move_steps_keep_branch_targets() -> None:
    state = journey_form.from_form(BASE)
    for kind in ("wait", "branch", "action"):
        journey_form.apply(state, "add", kind)
    assert [s["kind"] for s in state["steps"]] == ["action", "wait", "branch", "action"]
    state["steps"][2] |= {"cond": "event", "cond_value": "order_paid", "then": "4", "else": "next"}
    journey_form.apply(state, "up-3", "")  # step 4 becomes step 3: the branch follows it
    assert state["steps"][3]["then"] == "3" and state["steps"][2]["kind"] == "action"
    journey_form.apply(state, "remove-2", "")  # its target is gone: the branch goes on to the next step
    assert [s["kind"] for s in state["steps"]] == ["action", "wait", "branch"] and state["steps"][2][
        "then"
    ] == "next"
    for bad in ("remove-99", "up-0", "down-2", "up-x", "explode"):  # out of range or unknown: nothing changes
        assert len(journey_form.apply(state, bad, "")["steps"]) == 3


def test_a_definition_round_trips_through_the_form_fields() -> None:
    definition = {
        "trigger": {"type": "event", "event": "signup", "lookback_hours": 12.5},
        "steps": [
            {"wait": {"hours": 48.0}},
            {"branch": {"if": {"tag": "vip"}, "then": 3, "else": "exit"}},
            {"action": {"type": "webhook", "channel": "sms", "url": "https://sms.example.com/send",
                        "secret": "s" * 20, "payload": {"template": "t1"}}},
            {"action": {"type": "campaign", "name": "spring"}},
        ],
        "goal": {"event": "order_paid", "within_days": 7.0}, "holdout_pct": 20, "quiet_hours": "22-8",
    }  # fmt: skip
    state = journey_form.from_definition(definition, "x")
    back, errors = journey_form.to_definition(state)
    assert errors == {}
    assert back == definition | {"steps": [definition["steps"][0], definition["steps"][1],
                                           definition["steps"][2], {"action": {"type": "campaign", "name": "spring"}}]}  # fmt: skip


def test_hostile_values_are_named_next_to_their_field_and_never_5xx(sqlite_store, admin_headers) -> None:
    hostile = BASE | {
        "name": "", "trigger_days": "1e309", "holdout_pct": "99", "quiet_hours": "25-3",
        "steps-0-kind": "wait", "steps-0-hours": "nan",
        "steps-1-kind": "branch", "steps-1-cond": "event", "steps-1-cond_value": "x" * 500, "steps-1-then": "77",
        "steps-1-else": "<script>alert(1)</script>",
        "steps-2-kind": "action", "steps-2-action": "webhook", "steps-2-channel": "", "steps-2-url": "javascript:alert(1)",
        "steps-2-secret": "short", "steps-2-payload": "[1, 2]",
        "steps-3-kind": "teleport", "op": "save",
    }  # fmt: skip
    with TestClient(create_app(), headers={**admin_headers, "HX-Request": "true"}) as client:
        r = client.post("/journeys/editor", data=hostile)
        assert r.status_code == 200, r.text
        for field in ("name", "trigger_days", "holdout_pct", "quiet_hours", "steps-0-hours", "steps-1-cond_value",
                      "steps-1-then", "steps-1-else", "steps-2-channel", "steps-2-url", "steps-2-secret",
                      "steps-2-payload", "steps-3-kind"):  # fmt: skip
            assert f'id="err-{field}"' in r.text, field
        assert (
            "<script>alert(1)</script>" not in r.text
            and "请输入以 http:// 或 https:// 开头的完整地址。" in r.text
        )
        assert client.post("/journeys/editor", data={"op": "add", "add_kind": "branch"}).status_code == 200
        assert (
            client.post("/journeys/editor", data={"steps-0-kind": "wait", "op": "down-0" * 50}).status_code
            == 200
        )
        with session_scope() as s:
            assert service.list_journeys(s) == []  # nothing refused was saved
        good = client.post("/journeys/editor", data=BASE | {"op": "save"})
        assert good.status_code == 204 and good.headers["HX-Redirect"].startswith("/journeys/")
        dup = client.post("/journeys/editor", data=BASE | {"op": "save"})
        assert 'id="err-name"' in dup.text and "已有同名旅程" in dup.text
        english = client.post("/journeys/editor?lang=en", data=hostile)
        assert english.status_code == 200 and "Enter a full address starting with http://" in english.text


@pytest.mark.browser
def test_build_save_reload_round_trips_in_the_browser(browser, console_url, console_store) -> None:
    # a patient tab (the shared machine can be slow to serve the first pages); no timing is asserted
    context, page, errors = login(browser, console_url, "admin", timeout=120_000)
    try:
        _build_save_reload(page)
    finally:
        context.close()
    assert not errors, "errors in the browser console:\n" + "\n".join(errors)


def _build_save_reload(page) -> None:
    page.goto("/journeys/new")
    editor = page.locator("#journey-editor")
    editor.locator("input[name=name]").fill("表单旅程")
    editor.locator("select[name=trigger_type]").select_option("event")
    editor.locator("input[name=trigger_event]").wait_for()
    editor.locator("input[name=trigger_event]").fill("signup")
    steps = page.locator(".journey-step")
    while n := steps.count():  # start from an empty list of steps
        steps.first.get_by_role("button", name="删除此步").click()
        # the editor is swapped in by htmx: wait for the step to be gone, not for the network
        # (counting before the swap clicked a button that the swap then removed)
        expect(steps).to_have_count(n - 1)
    for kind in ("wait", "branch", "action"):
        page.locator("select[name=add_kind]").select_option(kind)
        page.get_by_role("button", name="添加步骤").click()
        page.locator(f".journey-step[data-kind={kind}]").wait_for()
    page.locator("input[name='steps-0-hours']").fill("48")
    page.locator("select[name='steps-1-cond']").select_option("event")
    page.locator("input[name='steps-1-cond_value']").fill("order_paid")
    page.locator("select[name='steps-1-then']").select_option("exit")
    page.locator("select[name='steps-2-action']").select_option("webhook")
    page.locator("input[name='steps-2-url']").wait_for()
    page.locator("input[name='steps-2-channel']").fill("sms")
    page.locator("input[name='steps-2-url']").fill("ftp://nowhere")
    page.locator("input[name='steps-2-secret']").fill("a-signing-secret-of-24ch")
    page.locator("#journey-save").click()
    page.locator("#err-steps-2-url").wait_for()  # refused inline, the rest kept
    assert page.locator("input[name='steps-0-hours']").input_value() == "48"
    page.locator("input[name='steps-2-url']").fill("https://sms.example.com/send")
    page.locator("#journey-save").click()
    page.wait_for_url(re.compile(r"/journeys/\d+$"))
    assert page.locator("h1").inner_text().startswith("表单旅程")
    check_page(page, "journey-editor-saved")
    with session_scope() as s:
        saved = next(j for j in service.list_journeys(s) if j.name == "表单旅程")
    assert saved.definition["trigger"] == {"type": "event", "event": "signup", "lookback_hours": 24.0}
    assert saved.definition["steps"][0]["wait"] == {"hours": 48.0}
    assert saved.definition["steps"][1]["branch"] == {
        "if": {"event": "order_paid", "tag": None},
        "then": "exit",
        "else": "next",
    }
    assert saved.definition["steps"][2]["action"]["url"] == "https://sms.example.com/send"
    page.locator("#journey-copy").click()  # reload it into the editor: every step comes back
    page.locator("#journey-editor").wait_for()
    assert [page.locator(".journey-step").nth(i).get_attribute("data-kind") for i in range(3)] == [
        "wait",
        "branch",
        "action",
    ]
    assert page.locator("input[name='steps-0-hours']").input_value() == "48"
    assert page.locator("input[name='steps-1-cond_value']").input_value() == "order_paid"
    assert page.locator("select[name='steps-1-then']").input_value() == "exit"
    assert page.locator("input[name='steps-2-url']").input_value() == "https://sms.example.com/send"
    assert page.locator("input[name=trigger_event]").input_value() == "signup"
    check_accessibility(page)
    page.goto("/journeys/new?lang=en")
    assert page.get_by_role("button", name="Add step").is_visible()
