"""A review case shows its evidence graph: the persons, the devices / addresses / identifiers they
share and the referral links, in the console (chart data and an exportable table, zh-CN and
English), built from cases the real campaign engine held (over HTTP, SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest
from fastapi.testclient import TestClient

from liebian.web.app import create_app

UA_EMULATOR = "Mozilla/5.0 (Linux; Android 9; SM-G9650 Build/PQ3A) MicroMessenger/8.0.1 emulator"
FARM_IP = "47.96.3.4"


@pytest.fixture
def api(store: str, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        yield client


def _campaign(client: TestClient, cid: str) -> str:
    doc = {
        "type": "double_sided", "title": "邀友有礼", "rules_text": "每邀请一位新朋友完成首单即可获得奖励",
        "inviter_reward": {"code": "INV", "value_fen": 1000}, "friend_reward": {"code": "NEW", "value_fen": 500},
        "per_inviter_cap": 20, "budget_fen": 1_000_000, "hold_days": 7, "claim_window_days": 7,
        "collects": ["phone"], "consent_step": True, "require_new_friend": False,
    }  # fmt: skip
    assert client.post("/api/v1/campaigns", json={"id": cid, "rules": doc}).status_code == 201
    assert client.post(f"/api/v1/campaigns/{cid}/launch").status_code == 200
    return cid


def _chart(html: str) -> dict:
    found = re.search(
        r'<script type="application/json" id="evidence-graph-option">(.*?)</script>', html, re.S
    )
    assert found, "the case page carries its evidence graph"
    return dict(json.loads(found.group(1)))


def _rows(client: TestClient, case_id: int, lang: str) -> list[dict[str, str]]:
    r = client.get(f"/fraud/cases/{case_id}", params={"export": "evidence", "format": "csv", "lang": lang})
    assert r.status_code == 200
    return list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff"))))


def test_a_held_script_farm_case_shows_its_persons_shared_address_and_links(api: TestClient) -> None:
    cid = _campaign(api, "c_evidence")
    r = api.post(f"/api/v1/campaigns/{cid}/invites", json={"id_type": "unionid", "id": "scripter"})
    code = r.json()["code"]
    outs = [
        api.post("/api/v1/invites/accept", json={"code": code, "id_type": "unionid", "id": f"acct{i}",
                 "device_id": f"RAND-DEVICE-{i}", "ip": FARM_IP, "user_agent": UA_EMULATOR}).json()
        for i in range(7)
    ]  # fmt: skip
    held = outs[6]
    assert held["state"] == "held"
    assert api.post("/fraud/sync", data={"status": "open"}).status_code == 200
    (case,) = [c for c in api.get("/api/v1/fraud/cases", params={"campaign_id": cid}).json()
               if c["referral_id"] == held["referral_id"]]  # fmt: skip
    page = api.get(f"/fraud/cases/{case['id']}")
    assert page.status_code == 200
    assert FARM_IP not in page.text and "RAND-DEVICE-6" not in page.text  # masked, never clear

    series = _chart(page.text)["series"][0]
    names = [n["name"] for n in series["data"]]
    friend, inviter = f"p:{held['friend_person_id']}", f"p:{held['inviter_person_id']}"
    assert {friend, inviter} <= set(names)
    ip_nodes = [n for n in names if n.startswith("ip:")]
    assert len(ip_nodes) == 1
    links = {(names[link["source"]], names[link["target"]]) for link in series["links"]}
    assert (inviter, friend) in links  # the referral link
    assert (friend, ip_nodes[0]) in links  # the friend used the farm's address
    others = {f"p:{o['friend_person_id']}" for o in outs[:6]}
    assert {s for s, t in links if t == ip_nodes[0]} == others | {friend}  # every account on it

    zh = _rows(api, case["id"], "zh-CN")
    assert {"从", "关系", "到", "依据"} <= set(zh[0])
    assert any(
        r["关系"] == "邀请了" and r["从"].startswith("人员 ") and "（邀请人）" not in r["从"] for r in zh
    )
    used = [r for r in zh if r["关系"] == "使用了" and r["到"] == "IP 地址 47.96.*.*"]
    assert len(used) == 7 and {r["依据"] for r in used} == {"活动实时记录"}
    assert sum("(其他账户)" in r["从"] for r in used) == 6
    en = _rows(api, case["id"], "en")
    assert {r["Relation"] for r in en} >= {"invited", "used", "holds"}
    assert any(r["To"].startswith("Identifier unionid") for r in en)


def test_a_merge_case_shows_the_merged_persons(api: TestClient) -> None:
    cid = _campaign(api, "c_evidence_merge")
    code = api.post(f"/api/v1/campaigns/{cid}/invites", json={"id_type": "unionid", "id": "alice"}).json()[
        "code"
    ]
    ref = api.post(
        "/api/v1/invites/accept", json={"code": code, "id_type": "openid", "id": "alice-alt"}
    ).json()
    for who in ({"id_type": "unionid", "id": "alice"}, {"id_type": "openid", "id": "alice-alt"}):
        link = api.post(
            "/api/v1/identities/link", json={"a": who, "b": {"id_type": "phone", "id": "13700001111"}}
        )
        assert link.status_code == 200
    (case,) = api.get("/api/v1/fraud/cases", params={"campaign_id": cid}).json()
    en = _rows(api, case["id"], "en")
    merged = [r for r in en if r["Relation"] == "merged into"]
    # inviter, friend and the phone's own record became one person: the ones merged away show
    assert {r["Evidence from"] for r in merged} == {"OneID"}
    assert {r["To"] for r in merged} == {f"Person {case['person_id']} (inviter = friend)"}
    gone = {ref["friend_person_id"], ref["inviter_person_id"]} - {case["person_id"]}
    assert {f"Person {p} (merged)" for p in gone} <= {r["From"] for r in merged}
    assert any(r["To"].startswith("Identifier phone") for r in en)  # the phone that tied them, masked
    assert "13700001111" not in api.get(f"/fraud/cases/{case['id']}").text
