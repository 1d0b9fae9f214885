"""The console's referral list says 已达标 / qualified for a friend who reached the qualifying event
(it said 已接受 / accepted), over real HTTP on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from campaigns.campaign_helpers import Api, rules
from liebian.web.app import create_app


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield Api(client)


@pytest.mark.parametrize(
    ("lang", "qualified", "accepted"), [("zh-CN", "已达标", "已接受"), ("en", "qualified", "accepted")]
)
def test_a_qualified_referral_reads_qualified(api: Api, lang: str, qualified: str, accepted: str) -> None:
    api.create(rules("double_sided"), "labels")
    code = api.invite("labels", "alice")["code"]
    assert api.accept(code, "bob").status_code == 201
    assert api.accept(code, "carl").status_code == 201
    assert api.order("labels", "bob", "o-bob").status_code == 200  # bob qualifies, carl does not
    page = api.c.get("/campaigns/labels", params={"lang": lang})
    assert page.status_code == 200, page.text[:300]
    rows = page.text.split('id="referrals"', 1)[1]
    assert rows.count(f">{qualified}<") == 1 and rows.count(f">{accepted}<") == 1


def test_the_compliance_panel_cites_the_rule_and_a_safer_alternative(api: Api) -> None:
    api.create(rules("share_coupon", platforms=["wechat"], shares_required=5), "share5", launch=False)
    zh = api.c.get("/campaigns/share5", params={"lang": "zh-CN"}).text
    en = api.c.get("/campaigns/share5", params={"lang": "en"}).text
    assert "《微信外部链接内容管理规范》" in zh and "诱导分享" in zh and "建议" in zh
    assert "induced sharing" in en and "Safer alternative" in en
