"""The alerts inbox: alerts arranged through the monitor service, then acknowledged and resolved in
Chromium (htmx), checked against the monitor service and its API; overdue and escalated alerts;
read-only for roles without campaign:write; errors named on the page."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from console_helpers import check_accessibility, check_page, role_page
from fastapi.testclient import TestClient

from liebian.db.session import session_scope
from liebian.monitor import notifications as monitor_notifications
from liebian.monitor import rules as monitor_rules
from liebian.monitor import service as monitor
from liebian.web.app import create_app
from shared_helpers import export_lines


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _raise(campaign: str, *, level: str = "重要", hours_ago: float = 0.0, **extra) -> dict:
    """One alert through the monitor service, as the rules would open it."""
    fields = {
        "kind": "threshold",
        "metric": "participation_rate",
        "scope": {"campaign_id": campaign, "channel": "wecom"},
        "level": level,
        "title": f"参与率低于15%（{campaign}）",
        "observed": 0.083,
        "threshold": 0.15,
        "period": "2026-11-14",
        "suggested_action": "raise_reward_tier",
    } | extra
    with session_scope() as s:
        alert, new = monitor.raise_alert(s, now=_now() - timedelta(hours=hours_ago), **fields)
    assert new
    return alert


def _get(alert_id: int) -> dict:
    with session_scope() as s:
        return monitor.get_alert(s, alert_id)


@pytest.mark.browser
def test_an_operator_acknowledges_then_resolves_an_alert_in_the_inbox(page, console_store):
    campaign = f"inbox-{uuid.uuid4().hex[:6]}"
    alert = _raise(campaign, expected=None)

    page.goto("/alerts")
    row = page.locator(f"#alert-{alert['id']}")
    assert row.get_attribute("data-status") == "open"
    assert "参与率低于15%" in row.inner_text() and campaign in row.inner_text()
    # observed against the threshold, as the service holds them
    assert row.locator(".observed").inner_text() == "8.30%"
    assert row.locator(".reference").inner_text() == "15.00%"
    assert "提高奖励档位" in row.inner_text()  # the suggested action
    # the open count is the service's
    with session_scope() as s:
        open_alerts = monitor.list_alerts(s, status="open", limit=10_000)
    assert int(page.locator("#count-open").inner_text()) == len(open_alerts)
    check_page(page, "alerts-inbox")
    check_accessibility(page)

    row.get_by_role("button", name="确认").click()
    page.wait_for_selector(f"#alert-{alert['id']}[data-status=acknowledged]")
    row = page.locator(f"#alert-{alert['id']}")
    assert "已确认告警" in row.inner_text() and "user:admin" in row.locator(".ack-by").inner_text()
    # acknowledged by that user: in the service and through the monitor API
    stored = _get(alert["id"])
    assert stored["status"] == "acknowledged" and stored["acknowledged_by"] == "user:admin"
    api = page.request.get(f"/api/v1/monitor/alerts/{alert['id']}").json()
    assert api["status"] == "acknowledged" and api["acknowledged_by"] == "user:admin"

    # resolving needs a root-cause note
    row.get_by_label("根因说明").fill("渠道接口故障，已恢复")
    row.get_by_role("button", name="解决").click()
    page.wait_for_selector(f"#alert-{alert['id']}[data-status=resolved]")
    stored = _get(alert["id"])
    assert stored["status"] == "resolved" and stored["resolved_by"] == "user:admin"
    assert stored["root_cause"] == "渠道接口故障，已恢复"
    # the resolved tab lists it with its root cause
    page.goto("/alerts?status=resolved")
    assert "渠道接口故障，已恢复" in page.locator(f"#alert-{alert['id']}").inner_text()


@pytest.mark.browser
def test_overdue_and_escalated_alerts_are_marked(page, console_store):
    campaign = f"late-{uuid.uuid4().hex[:6]}"
    # a 一般 alert opened 3 h ago: its 2 h deadline has passed
    late = _raise(campaign, level="一般", hours_ago=3)
    page.goto("/alerts?level=一般")
    row = page.locator(f"#alert-{late['id']}")
    assert "已超时" in row.inner_text() and "已升级" not in row.inner_text()
    # the escalation job raises it one level; the inbox shows it
    with session_scope() as s:
        escalated = [
            a
            for a in monitor_notifications.escalate_due(s, notify_fn=lambda *a, **k: [])
            if a["id"] == late["id"]
        ]
    assert escalated and escalated[0]["level"] == "重要"
    page.goto("/alerts")
    row = page.locator(f"#alert-{late['id']}")
    assert "已升级 ×1" in row.inner_text() and row.locator(".badge.level-major").count() == 1
    # its new deadline (4 h from now) is shown in local time (Asia/Shanghai, UTC+8)
    due = datetime.fromisoformat(_get(late["id"])["due_at"]) + timedelta(hours=8)
    assert due.strftime("%Y-%m-%d %H:%M") in row.inner_text()
    assert "已超时" not in row.inner_text()


@pytest.mark.browser
def test_a_viewer_reads_the_inbox_but_cannot_act(browser, console_url, console_store):
    alert = _raise(f"view-{uuid.uuid4().hex[:6]}")
    context, tab = role_page(browser, console_url, "viewer1")
    tab.goto("/alerts")
    row = tab.locator(f"#alert-{alert['id']}")
    assert row.count() == 1 and row.get_by_role("button").count() == 0
    csrf = tab.evaluate("JSON.parse(document.body.getAttribute('hx-headers'))['X-CSRF-Token']")
    refused = tab.request.post(f"/alerts/{alert['id']}/acknowledge", headers={"X-CSRF-Token": csrf})
    assert refused.status == 403
    context.close()
    assert not tab.console_errors
    assert _get(alert["id"])["status"] == "open"


def test_the_inbox_names_what_went_wrong(sqlite_store, admin_headers):
    with session_scope() as s:
        alert, _ = monitor.raise_alert(
            s, kind="anomaly", metric="participants", scope={"campaign_id": "c1"}, level="紧急",
            title="participants 骤降", observed=12.0, expected=80.0, period="2026-11-14",
        )  # fmt: skip
    with TestClient(create_app(), headers=admin_headers) as client:
        page = client.get("/alerts?lang=en")
        assert page.status_code == 200 and "Alerts inbox" in page.text
        assert '<span class="observed">12</span> / <span class="reference">80</span>' in page.text
        # resolving without a note: refused, and the message names the field
        empty = client.post(f"/alerts/{alert['id']}/resolve", data={"root_cause": "  "})
        assert empty.status_code == 200 and "root_cause" in empty.text and "flash error" in empty.text
        assert empty.headers["HX-Retarget"] == "#flash"
        assert client.post(f"/alerts/{alert['id']}/acknowledge").status_code == 200
        twice = client.post(f"/alerts/{alert['id']}/acknowledge")
        assert "only an open alert" in twice.text and "flash error" in twice.text
        missing = client.post("/alerts/999999/acknowledge")
        assert "not found" in missing.text
        bad = client.get("/alerts?status=closed")
        assert bad.status_code == 422 and "status: " in bad.text
        # the list exports with the service's values
        lines = export_lines(client.get("/alerts?status=all&export=alerts&format=csv").content)
    assert len(lines) == 2 and ",participants," in lines[1] and ",12.0,80.0," in lines[1]


def test_installing_the_default_rules_lists_them(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as client:
        assert "还没有阈值规则" in client.get("/alerts").text
        answer = client.post("/alerts/rules/defaults")
        assert answer.headers.get("HX-Redirect") == "/alerts"
        page = client.get("/alerts").text
    with session_scope() as s:
        rules = monitor_rules.list_rules(s)
    assert len(rules) == len(monitor_rules.DEFAULT_RULES)
    for rule in rules:
        assert rule["name"] in page
    assert "参与率 &lt; 15.00%" in page  # the metric by its name, not its code


def test_alert_counts_are_the_listed_alerts(sqlite_store):
    late = _raise("count-a", level="一般", hours_ago=3)  # past its 2 h deadline
    fresh = _raise("count-b")
    done = _raise("count-c", level="紧急")
    with session_scope() as s:
        monitor.acknowledge(s, fresh["id"], actor="user:a")
        monitor.resolve(s, done["id"], "fixed", actor="user:a")
        counts = monitor.alert_counts(s)
        listed = monitor.list_alerts(s, limit=10_000)
    now = _now()
    expected = {st: sum(a["status"] == st for a in listed) for st in monitor.STATUSES}
    expected["overdue"] = sum(
        a["status"] == "open" and datetime.fromisoformat(a["due_at"]) <= now for a in listed
    )
    assert counts == expected == {"open": 1, "acknowledged": 1, "resolved": 1, "overdue": 1}
    assert late["status"] == "open"
