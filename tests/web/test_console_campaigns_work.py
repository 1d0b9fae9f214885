"""Campaign work in the browser (issue 22), over real HTTP (TestClient): the editor grows its tier
rows and never answers 5xx to hostile values, irreversible actions need confirm=1, the participants
page names people and shows their link, poster, progress, referrals and rewards, and poster URLs
are signed and expiring (no API key)."""

from __future__ import annotations

import csv
import io
import re
from urllib.parse import parse_qs, urlsplit

import pytest
import zxingcpp
from fastapi.testclient import TestClient
from PIL import Image
from test_console_campaigns import CONFIRM, RULES_TEXT, _errors, _form

from liebian.web.app import create_app


@pytest.fixture
def client(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers, raise_server_exceptions=False) as c:
        yield c


def _tier_form(**overrides: str) -> dict[str, str]:
    tiers = {"tiers.0.threshold": "1", "tiers.0.reward.code": "T1", "tiers.0.reward.value_fen": "5",
             "tiers.1.threshold": "3", "tiers.1.reward.code": "T3", "tiers.1.reward.value_fen": "30"}  # fmt: skip
    return _form(type="invite_task", **tiers) | overrides


def _rows(html: str) -> list[str]:
    return re.findall(r'id="f-tiers-(\d+)-threshold"', html)


# --- the editor ---------------------------------------------------------------------------------


def test_a_new_campaign_starts_with_one_tier_row_and_the_caps_before_it(client) -> None:
    page = client.get("/campaigns/new").text
    assert _rows(page) == ["0"]
    # caps, budget and compliance come before the tiers: in view however many tiers there are
    order = [
        page.index(f'id="{dom}"')
        for dom in ("f-per-inviter-cap", "f-budget-fen", "f-collects", "f-tiers-0-threshold")
    ]
    assert order == sorted(order)
    assert 'id="add-row"' in page and "添加档位" in page


def test_the_add_button_brings_the_next_row_and_moves_on(client) -> None:
    row = client.get("/campaigns/editor/row?kind=invite_task&n=1", headers={"HX-Request": "true"})
    assert row.status_code == 200
    assert _rows(row.text) == ["1"] and "第 2 档" in row.text
    # the button comes back out of band, asking for the row after
    assert 'hx-swap-oob="true"' in row.text and "n=2" in row.text
    full = client.get("/campaigns/editor/row?kind=invite_task&n=50").text
    assert _rows(full) == [] and "最多 50 行" in full
    for bad in ("abc", "-1", "99999999999999999999", ""):
        assert client.get(f"/campaigns/editor/row?kind=invite_task&n={bad}").status_code == 200
    assert _rows(client.get("/campaigns/editor/row?kind=bogus&n=1").text) == []
    ranks = client.get("/campaigns/editor/row?kind=leaderboard&n=2").text
    assert 'id="f-leaderboard-rewards-2-code"' in ranks and "添加名次" in ranks


def test_a_saved_campaign_shows_its_own_tiers_and_no_spare_rows(client) -> None:
    assert client.post("/campaigns/new", data=_tier_form(id="three-tiers", per_inviter_cap="5") | {
        "tiers.2.threshold": "5", "tiers.2.reward.code": "T5", "tiers.2.reward.value_fen": "50"}).status_code == 204  # fmt: skip
    page = client.get("/campaigns/three-tiers/edit").text
    assert _rows(page) == ["0", "1", "2"]
    assert 'value="5"' in page and 'value="50.00"' in page


HOSTILE = [str(10**30), "-1", "abc", "", "x" * 10_000, "1e400", "nan", "9" * 5000, "\x00", "１２"]
FIELDS = [
    "tiers.0.threshold", "tiers.0.reward.value_fen", "tiers.0.reward.code", "per_inviter_cap", "budget_fen",
    "hold_days", "start_at", "title", "rules_text", "risk_policy.hold_at", "regions", "type", "landing_url",
    "poster_template", "poster.background", "poster.pattern", "poster.brand", "qualifying_event.kind",
]  # fmt: skip


def test_hostile_values_in_any_field_are_refused_next_to_it_never_5xx(client) -> None:
    failures = []
    for name in FIELDS:
        for value in HOSTILE:
            r = client.post("/campaigns/new", data=_tier_form() | {name: value})
            if r.status_code >= 500:
                failures.append((name, value[:12], r.status_code))
    assert failures == []
    # a huge tier threshold: the page names the field and the reason, in Chinese, and keeps the value
    page = client.post("/campaigns/new", data=_tier_form() | {"tiers.1.threshold": str(10**30)}).text
    assert (
        "小于或等于" in _errors(page)["tiers-1-threshold"] or "不能大于" in _errors(page)["tiers-1-threshold"]
    )
    assert re.search(r'<a href="#f-tiers-1-threshold">第 2 档 · [^<]+</a>: ', page), (
        "the summary names the field"
    )
    assert str(10**30) in page
    # made-up row keys neither crash nor draw thousands of rows
    for key in (
        "tiers.99999999999999999999.threshold",
        "tiers.abc.threshold",
        "tiers.-1.threshold",
        "tiers..x",
    ):
        r = client.post("/campaigns/new", data=_tier_form() | {key: "1"})
        assert r.status_code == 204 or (r.status_code < 500 and len(_rows(r.text)) <= 50)
    assert (
        client.get("/campaigns/new?_submitted=1&type=invite_task&tiers.99999999.threshold=1").status_code
        == 200
    )
    assert client.post("/campaigns/editor/preview", data={"type": "invite_task", "poster.background": "red",
                                                          "title": "x" * 10_000, "end_at": "abc"}).status_code == 200  # fmt: skip


def test_a_bad_colour_is_named_and_the_service_reasons_are_in_english_too(client) -> None:
    errors = _errors(client.post("/campaigns/new", data=_tier_form(**{"poster.background": "#12345"})).text)
    assert errors["poster-background"] == "请选择颜色（形如 #c41e3a）"
    page = client.post("/campaigns/new?lang=en", data=_tier_form(**{"tiers.1.threshold": "1"}))
    client.cookies.clear()
    assert _errors(page.text)["tiers-1-threshold"] == "tier thresholds must increase"


# --- confirmations ------------------------------------------------------------------------------


def test_launch_and_end_need_confirmation(client) -> None:
    assert client.post("/campaigns/new", data=_tier_form(id="careful")).status_code == 204
    replayed = client.post("/campaigns/careful/launch")
    assert replayed.status_code == 200 and "需要先确认" in replayed.text
    assert client.get("/api/v1/campaigns/careful").json()["status"] == "draft"
    detail = client.get("/campaigns/careful").text
    assert 'hx-confirm="确定发布这个活动吗' in detail and 'hx-vals=\'{"confirm": "1"}\'' in detail
    assert (
        client.post("/campaigns/careful/launch", data=CONFIRM).headers["HX-Redirect"] == "/campaigns/careful"
    )
    assert "需要先确认" in client.post("/campaigns/careful/end").text
    assert client.get("/api/v1/campaigns/careful").json()["status"] == "live"
    assert client.post("/campaigns/careful/end", data=CONFIRM).status_code == 204
    assert client.get("/api/v1/campaigns/careful").json()["status"] == "ended"


# --- posters and participants -------------------------------------------------------------------


def _decode(png: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))]


def _launched(client, cid: str) -> None:
    doc = {"type": "invite_task", "title": "春季邀友", "rules_text": RULES_TEXT, "per_inviter_cap": 3,
           "budget_fen": 1_000_000, "qualifying_event": {"kind": "signup"}, "end_at": "2030-12-31T13:00:00Z",
           "tiers": [{"threshold": 1, "reward": {"code": "T1", "value_fen": 500}},
                     {"threshold": 3, "reward": {"code": "T3", "value_fen": 3000}}],
           "poster": {"brand": "花间咖啡", "background": "#205080", "pattern": "dots"}}  # fmt: skip
    assert client.post("/api/v1/campaigns", json={"id": cid, "rules": doc}).status_code == 201
    assert client.post(f"/api/v1/campaigns/{cid}/launch").status_code == 200


def test_the_invite_gives_a_signed_poster_url_that_needs_no_key(client, public_headers) -> None:
    _launched(client, "signed")
    invite = client.post("/api/v1/campaigns/signed/invites", headers=public_headers,
                         json={"id_type": "unionid", "id": "u-alice", "nickname": "小红"}).json()  # fmt: skip
    url = urlsplit(invite["poster_url"])
    assert url.path == f"/p/{invite['code']}.png" and {"exp", "sig"} <= set(parse_qs(url.query))
    anonymous = TestClient(client.app, raise_server_exceptions=False)  # no key, no cookie
    r = anonymous.get(f"{url.path}?{url.query}")
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    assert _decode(r.content) == [invite["link"]]
    query = parse_qs(url.query)
    exp, sig = query["exp"][0], query["sig"][0]
    tampered = anonymous.get(f"{url.path}?exp={exp}&sig={sig[:-1]}{'a' if sig[-1] != 'a' else 'b'}")
    assert tampered.status_code == 403 and tampered.json()["code"] == "bad_poster_signature"
    stretched = anonymous.get(f"{url.path}?exp={int(exp) + 86400}&sig={sig}")  # a later expiry, same sig
    assert stretched.status_code == 403
    for bad in ("", "abc", "-1", str(10**30)):
        assert anonymous.get(f"{url.path}?exp={bad}&sig={sig}").status_code == 403
    assert "签名" in anonymous.get(f"{url.path}?exp={exp}&sig=x", headers={"Accept-Language": "zh-CN"}).text


def test_an_expired_poster_link_is_refused() -> None:
    from datetime import datetime, timedelta

    from liebian.campaigns import invites
    from liebian.campaigns.common import CampaignError

    past = datetime(2020, 1, 1)
    path = invites.poster_path("a" * 23, past)
    query = parse_qs(urlsplit(path).query)
    with pytest.raises(CampaignError) as refused:
        invites.check_poster_link("a" * 23, int(query["exp"][0]), query["sig"][0])
    assert refused.value.status == 403 and refused.value.code == "expired_poster_link"
    # the same signature one second before the expiry passes
    invites.check_poster_link(
        "a" * 23, int(query["exp"][0]), query["sig"][0], now=past - timedelta(seconds=1)
    )


def test_participants_by_nickname_with_link_poster_progress_referrals_and_rewards(
    client, public_headers
) -> None:
    _launched(client, "roster")
    api = {"headers": public_headers}
    alice = client.post("/api/v1/campaigns/roster/invites", **api,
                        json={"id_type": "phone", "id": "13812345678", "nickname": "小红"}).json()  # fmt: skip
    client.post("/api/v1/campaigns/roster/invites", **api, json={"id_type": "unionid", "id": "u-bob"})
    for friend in ("f1", "f2"):
        r = client.post("/api/v1/invites/accept", **api,
                        json={"code": alice["code"], "id_type": "unionid", "id": f"roster-{friend}"})  # fmt: skip
        assert r.status_code == 201, r.text
    progress = client.get(
        "/api/v1/campaigns/roster/progress", params={"id_type": "phone", "id": "13812345678"}
    ).json()
    page = client.get("/campaigns/roster/participants").text
    rows = re.findall(r"<tr>(.*?)</tr>", page, re.S)[1:]
    assert len(rows) == 2
    first = rows[0]
    assert '<td translate="no" class="nickname">小红</td>' in first
    assert "138****5678" in first and "13812345678" not in page  # masked, never the raw phone
    assert str(progress["person_id"]) not in page  # no bare 16-digit person id anywhere
    assert alice["link"] in first and f"/p/{alice['code']}.png?exp=" in first
    verified = progress["qualified"]
    assert verified == 2  # signup qualifies: both friends count
    assert f"第 1 档 1/1 · 第 2 档 {verified}/3" in first
    assert re.search(r'class="int accepted">2<', first) and re.search(r'class="int verified">2<', first)
    # rewards by state as the ledger has them: the first tier's reward, pending
    ledger = client.get(
        "/api/v1/rewards", params={"campaign_id": "roster", "person_id": progress["person_id"]}
    ).json()
    assert [r["state"] for r in ledger] == ["pending"]
    assert "待发放（冻结期） 1" in first
    assert "（未留昵称）" in rows[1] and "无" in rows[1]
    # the poster on the page is the signed one: the browser loads it without a key
    poster = re.search(r'src="(/p/[^"]+)"', first).group(1).replace("&amp;", "&")
    assert TestClient(client.app).get(poster).status_code == 200
    # the export has every participant, the poster as a full URL
    lines = client.get("/campaigns/roster/participants?export=participants&format=csv").content.decode(
        "utf-8-sig"
    )
    table = list(csv.reader(io.StringIO(lines)))
    assert table[0][:3] == ["昵称", "标识（脱敏）", "邀请链接"]
    assert table[1][0] == "小红" and table[1][2] == alice["link"] and table[1][3].startswith("http")
    assert client.get("/campaigns/nope/participants").status_code == 404
    assert 'href="/campaigns/roster/participants"' in client.get("/campaigns/roster").text


def test_participants_are_paged(client, public_headers) -> None:
    from liebian.web.pages import participants

    _launched(client, "paged")
    for i in range(participants.PAGE_SIZE + 3):
        client.post("/api/v1/campaigns/paged/invites", headers=public_headers,
                    json={"id_type": "unionid", "id": f"p-{i}", "nickname": f"n{i:03d}"})  # fmt: skip
    first = client.get("/campaigns/paged/participants").text
    second = client.get("/campaigns/paged/participants?page=2").text
    assert first.count('class="nickname"') == participants.PAGE_SIZE and second.count('class="nickname"') == 3
    assert ">n000<" in first and ">n050<" in second and ">n000<" not in second
    assert "第 2 / 2 页，共 53 人" in second
    assert client.get("/campaigns/paged/participants?page=abc").status_code == 200
    assert client.get("/campaigns/paged/participants?page=99999").status_code == 200
