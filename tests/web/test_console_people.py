"""Persons in the console: the search (/people) finds a person by id, full or masked phone, openid or
nickname; the profile (/people/{id}) shows masked identifiers, nickname, channels, the timeline of
events and orders from the warehouse, referrals both ways, rewards, tags and consent, times in the
display zone. Persons are shown by name in other tables (the fraud queue, the referrals' top
spreaders, a campaign's referrals); the campaign audit names the API key a front end acted with.
Data arrives through the real API (TestClient) on SQLite and PostgreSQL."""

from __future__ import annotations

import re

import pytest
from console_helpers import check_accessibility, check_page, login
from fastapi.testclient import TestClient
from test_console_fraud import cases_of, held_referrals
from test_console_rewards import earned_rewards

from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.privacy import service as privacy
from liebian.web.app import create_app
from shared_helpers import export_csv, make_api_key

PHONE = "13912345678"
OPENID = "oAbCdEf123456789"


def _arrange(client: TestClient) -> int:
    """One human seen on two channels (an openid on the mini-program, a phone in the app), linked
    by OneID; three events and a paid order of ¥128.50. Returns their person id."""
    events = [
        {"event_id": "pp-1", "ts": "2026-11-01T09:00:00+08:00", "user_id": OPENID, "id_type": "openid",
         "event": "page_view", "channel": "miniprogram"},
        {"event_id": "pp-2", "ts": "2026-11-02T21:30:00+08:00", "user_id": OPENID, "id_type": "openid",
         "event": "signup", "channel": "miniprogram"},
        {"event_id": "pp-3", "ts": "2026-11-03T08:15:00+08:00", "user_id": PHONE, "id_type": "phone",
         "event": "custom_thing", "channel": "app"},
    ]  # fmt: skip
    assert client.post("/api/v1/events/batch", json={"items": events}).json()["accepted"] == 3
    order = {"order_id": "PP-O1", "ts": "2026-11-03T10:00:00+08:00", "user_id": PHONE, "id_type": "phone",
             "amount": 128.5, "channel": "app"}  # fmt: skip
    assert client.post("/api/v1/orders/batch", json={"items": [order]}).json()["accepted"] == 1
    linked = client.post(
        "/api/v1/identities/link",
        json={"a": {"id_type": "openid", "id": OPENID}, "b": {"id_type": "phone", "id": PHONE}},
    ).json()
    assert linked["outcome"] in ("merged", "already_same")
    with session_scope() as s:
        person = identity.find_person(s, "phone", PHONE)
        privacy.publish_notice(
            s, title="隐私政策", body="我们如何使用您的信息。", purposes=["marketing"], actor="test"
        )
        privacy.record_consent(s, person, "marketing", True, source="test", actor="test")
    return person


def _cells(html: str, table_id: str) -> list[list[str]]:
    """The text of each row of a table (tags stripped)."""
    body = html.split(f'<table id="{table_id}">', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    return [
        [re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td[^>]*>(.*?)</td>", r, re.S)] for r in rows
    ]


def test_search_and_profile(store, admin_headers) -> None:
    with TestClient(create_app(), headers=admin_headers) as client:
        person = _arrange(client)
        for q in (str(person), PHONE, "139****5678", OPENID):
            found = client.get("/people", params={"q": q})
            assert found.status_code == 200 and f'href="/people/{person}"' in found.text, q
        assert "没有找到匹配的用户" in client.get("/people", params={"q": "nobody-like-this"}).text
        # hostile searches: a message, never a 5xx
        assert client.get("/people", params={"q": "x" * 500}).status_code == 422
        assert client.get("/people", params={"q": "a\x00b"}).status_code == 422
        for q in ("9" * 40, "%", "_", "' OR 1=1 --", "-1"):
            assert client.get("/people", params={"q": q}).status_code == 200, q

        html = client.get(f"/people/{person}").text
        # identifiers masked, never in clear
        assert PHONE not in html and OPENID not in html and "139****5678" in html and "oAb…789" in html
        assert _cells(html, "channels")[0][0] in ("App", "小程序")
        assert {row[0] for row in _cells(html, "channels")} == {"App", "小程序"}
        timeline = _cells(html, "timeline")
        # newest first, in the display zone (Asia/Shanghai) with its offset; events by name
        assert [row[0] for row in timeline] == ["2026-11-03 10:00 UTC+8", "2026-11-03 08:15 UTC+8",
                                                "2026-11-02 21:30 UTC+8", "2026-11-01 09:00 UTC+8"]  # fmt: skip
        assert [row[2] for row in timeline] == ["已支付", "custom_thing", "注册", "浏览页面"]
        assert timeline[0][5] == "¥128.50"
        assert _cells(html, "orders")[0][:3] == ["PP-O1", "2026-11-03 10:00 UTC+8", "¥128.50"]
        consent = {row[0]: row[1] for row in _cells(html, "consent")}
        assert consent["营销触达"] == "已授权（有效）" and consent["对外共享"] == "未授权或已撤回"
        en = client.get(f"/people/{person}?lang=en").text
        assert "Person profile" in en and "signed up" in en
        # the profile's tables export (watermarked), keeping the raw values
        rows = export_csv(client.get(f"/people/{person}?export=orders&format=csv").content)
        assert rows[1][:3] == ["PP-O1", "2026-11-03 02:00:00", "12850"]
        # unknown and hostile ids
        assert client.get("/people/123").status_code == 404
        assert client.get("/people/" + "9" * 30).status_code == 422
        assert client.get("/people/abc").status_code == 422


def test_referrals_rewards_and_labels_elsewhere(sqlite_store, admin_headers) -> None:
    cid, inviter = earned_rewards(1, nickname="小青")
    with TestClient(create_app(), headers=admin_headers) as client:
        assert f'href="/people/{inviter}"' in client.get("/people", params={"q": "小青"}).text
        html = client.get(f"/people/{inviter}").text
        assert "小青" in html
        invitee = _cells(html, "invitees")[0]
        assert invitee[1] == cid and invitee[3] == "已接受"
        assert [row[3] for row in _cells(html, "rewards")] == ["¥10.00"]
        # the campaign's referral table names the inviter instead of the 16-digit id
        detail = client.get(f"/campaigns/{cid}").text
        assert f'<a class="person" href="/people/{inviter}" title="{inviter}" translate="no">小青' in detail
        # but its export keeps the ids
        rows = export_csv(client.get(f"/campaigns/{cid}?export=referrals&format=csv").content)
        assert rows[1][1] == str(inviter)
        # the fraud queue and a case show inviter and friend by their masked identifier
        fraud_cid, _ = held_referrals(1)
        (case,) = cases_of(fraud_cid)
        queue = client.get(f"/fraud?campaign={fraud_cid}").text
        for pid in (case["inviter_person_id"], case["person_id"]):
            assert f'href="/people/{pid}"' in queue
        assert f"{fraud_cid[:3]}…" in queue  # unionid fr-…-inviter, masked
        assert f'href="/people/{case["person_id"]}"' in client.get(f"/fraud/cases/{case['id']}").text


def test_who_may_look_persons_up(sqlite_store) -> None:
    viewer = {"Authorization": f"Bearer {make_api_key(role='viewer')}"}
    analyst = {"Authorization": f"Bearer {make_api_key(role='analyst')}"}
    with TestClient(create_app()) as client:
        for headers in (viewer, analyst):
            assert client.get("/people", headers=headers).status_code == 403
            assert client.get("/people/1", headers=headers).status_code == 403


def test_the_campaign_audit_names_the_api_key_not_system(sqlite_store, admin_headers) -> None:
    from test_console_fraud import RULES

    from liebian.auth import service as auth_service

    with TestClient(create_app()) as client:
        client.post(
            "/api/v1/campaigns", headers=admin_headers, json={"id": "audit-key", "rules": RULES}
        ).raise_for_status()
        client.post("/api/v1/campaigns/audit-key/launch", headers=admin_headers).raise_for_status()
        with session_scope() as s:
            public, record = auth_service.create_api_key(s, name="H5 落地页", actor="test", kind="public")
            key_id = record.key_id
        front = {"X-API-Key": public}
        invite = client.post("/api/v1/campaigns/audit-key/invites", headers=front,
                             json={"id_type": "unionid", "id": "aud-inviter", "nickname": "阿明"}).json()  # fmt: skip
        accepted = client.post("/api/v1/invites/accept", headers=front,
                               json={"code": invite["code"], "id_type": "unionid", "id": "aud-friend"})  # fmt: skip
        assert accepted.status_code == 201
        audit = client.get("/api/v1/campaigns/audit-key/audit", headers=admin_headers).json()
        actors = {a["action"]: a["actor"] for a in audit}
        assert actors["invite.create"] == f"key:{key_id}" and actors["referral.accept"] == f"key:{key_id}"
        assert "system" not in {
            a["actor"] for a in audit if a["action"] in ("invite.create", "referral.accept")
        }
        # the console shows the key with its name
        assert f"key:{key_id} (H5 落地页)" in client.get("/campaigns/audit-key", headers=admin_headers).text


@pytest.mark.browser
def test_the_profile_in_the_browser(browser, console_url, console_store) -> None:
    cid, inviter = earned_rewards(1, nickname="小白")
    context, page, errors = login(browser, console_url, "admin", timeout=120_000)
    page.goto("/people")
    page.locator("#people-q").fill("小白")
    page.locator("#people-q").press("Enter")
    page.wait_for_load_state("networkidle")
    page.locator(f"#people-results a[href='/people/{inviter}']").click()
    page.wait_for_load_state("networkidle")
    assert "小白" in page.locator("#person-nickname").inner_text()
    assert page.locator("table#invitees tbody tr").count() == 1
    check_page(page, "person-profile")
    check_accessibility(page)
    context.close()
    assert not errors, errors
