"""Complaints over HTTP (FastAPI TestClient, real store): intake by operators and by the public key
for its participant's own person, hostile input refused naming the field, assign and resolve, what
is due; the console page "what is due" in Chinese and English; the CLI."""

from __future__ import annotations

import json

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.auth.service import create_user
from liebian.cli import app as cli_app
from liebian.db.session import session_scope
from liebian.privacy import tokens
from liebian.web.app import create_app

PHONE = "13912345678"


@pytest.fixture
def client(store: str, admin_headers: dict[str, str]):
    with session_scope() as s:
        create_user(s, "xiaoli", "a-long-password-1", "operator", actor="test")
    with TestClient(create_app(), headers=admin_headers) as c:
        yield c


def _body(**fields) -> dict:
    return {"channel": "miniprogram", "category": "reward", "text": f"奖励没到账，电话 {PHONE}"} | fields


def test_intake_assign_resolve(client: TestClient) -> None:
    made = client.post("/api/v1/complaints", json=_body(id_type="phone", id_value=PHONE))
    assert made.status_code == 201, made.text
    case = made.json()
    assert case["state"] == "open" and case["owner"] == "" and PHONE not in case["text"]
    assert case["due_at"].endswith("Z")

    assigned = client.post(f"/api/v1/complaints/{case['id']}/assign", json={"owner": "xiaoli"})
    assert assigned.status_code == 200 and assigned.json()["owner"] == "xiaoli"
    assert [c["id"] for c in client.get("/api/v1/complaints/due").json()] == [case["id"]]

    resolved = client.post(
        f"/api/v1/complaints/{case['id']}/resolve", json={"resolution": "upheld", "reason": "已补发"}
    )
    assert resolved.status_code == 200 and resolved.json()["state"] == "resolved"
    assert client.get("/api/v1/complaints/due").json() == []
    assert client.get("/api/v1/complaints", params={"status": "resolved"}).json()[0]["id"] == case["id"]
    again = client.post(
        f"/api/v1/complaints/{case['id']}/resolve", json={"resolution": "upheld", "reason": "x"}
    )
    assert again.status_code == 409 and again.json()["code"] == "case_closed"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_body(extra="x"), "extra"),
        (_body(channel="carrier pigeon"), "channel"),
        (_body(category="nonsense"), "category"),
        (_body(text=""), "text"),
        (_body(text="x" * 4001), "text"),
        (_body(person_id=-1), "person_id"),
        (_body(person_id=2**63), "person_id"),
        (_body(person_id=1, id_type="phone", id_value=PHONE), "person_id"),
        (_body(id_type="phone"), "id_type"),
        (_body(id_type="fax", id_value="123"), "id_type"),
        (_body(kind="subject_request", category="deletion"), "person_id"),
        (_body(received_at="3026-01-01T00:00:00Z"), "received_at"),
        (_body(owner="nobody"), "owner"),
    ],
)
def test_hostile_input_is_refused_naming_the_field(client: TestClient, body: dict, field: str) -> None:
    answer = client.post("/api/v1/complaints", json=body)
    assert answer.status_code == 422, answer.text
    assert field in json.dumps(answer.json()["errors"] if "errors" in answer.json() else answer.json())


def test_unknown_case_and_person_are_404(client: TestClient) -> None:
    assert client.get("/api/v1/complaints/999").status_code == 404
    assert client.post("/api/v1/complaints", json=_body(person_id=424242)).status_code == 404
    assert client.post("/api/v1/complaints/999/assign", json={"owner": "xiaoli"}).status_code == 404


def test_the_public_key_files_for_its_own_person_only(
    client: TestClient, public_headers: dict[str, str]
) -> None:
    owner = client.post("/api/v1/complaints", json=_body(id_type="phone", id_value=PHONE)).json()["person_id"]
    token = tokens.issue(owner)
    public = {**public_headers, "Authorization": ""}
    assert client.post("/api/v1/complaints", json=_body(), headers=public).status_code == 401
    mine = client.post("/api/v1/complaints", json=_body(), headers={**public, tokens.HEADER: token})
    assert mine.status_code == 201 and mine.json()["person_id"] == owner
    other = client.post(
        "/api/v1/complaints", json=_body(person_id=owner + 1), headers={**public, tokens.HEADER: token}
    )
    assert other.status_code == 403
    assigned = client.post(
        "/api/v1/complaints", json=_body(owner="xiaoli"), headers={**public, tokens.HEADER: token}
    )
    assert assigned.status_code == 403
    # a front end files; it does not read the queue
    assert client.get("/api/v1/complaints/due", headers=public).status_code in (401, 403)


def test_the_due_page_in_chinese_and_english(client: TestClient) -> None:
    case = client.post("/api/v1/complaints", json=_body(category="food_safety")).json()
    zh = client.get("/complaints", params={"lang": "zh-CN"})
    assert zh.status_code == 200
    assert "待处理的投诉与个人信息请求" in zh.text and "食品安全" in zh.text and "处理中" in zh.text
    assert f">{case['id']}<" in zh.text and PHONE not in zh.text and "139****5678" in zh.text
    en = client.get("/complaints", params={"lang": "en"})
    assert "What is due" in en.text and "Food safety" in en.text and "Open" in en.text
    assert 'href="/complaints"' in en.text  # in the menu of a role that handles complaints


def test_the_page_says_when_nothing_is_due(client: TestClient) -> None:
    page = client.get("/complaints", params={"lang": "en"})
    assert page.status_code == 200 and "Nothing is due." in page.text


def test_cli_add_list_show_assign_resolve(store: str) -> None:
    with session_scope() as s:
        create_user(s, "xiaoli", "a-long-password-1", "operator", actor="test")
    runner = CliRunner()

    def run(*args: str) -> str:
        result = runner.invoke(cli_app, ["--user", "xiaoli", "complaints", *args, "--format", "json"])
        assert result.exit_code == 0, result.output
        return result.output

    made = json.loads(
        run("add", "--text", f"电话 {PHONE}", "--category", "service", "--channel", "phone",
            "--id-type", "phone", "--id-value", PHONE, "--received-at", "2026-12-06T10:00")
    )  # fmt: skip
    assert made["due_at"].startswith("2026-12-07T02:00")  # 10:00 in Shanghai is 02:00 UTC, + 24 h
    assert PHONE not in made["text"]
    assert json.loads(run("list", "--due"))[0]["id"] == made["id"]
    assert json.loads(run("assign", str(made["id"]), "xiaoli"))["owner"] == "xiaoli"
    assert json.loads(run("show", str(made["id"])))["owner"] == "xiaoli"
    done = json.loads(run("resolve", str(made["id"]), "--resolution", "upheld", "--reason", "已致歉"))
    assert done["status"] == "resolved" and done["resolved_by"] == "user:xiaoli"
    bad = runner.invoke(cli_app, ["--user", "xiaoli", "complaints", "add", "--text", "x", "--category", "bogus",
                                  "--channel", "phone"])  # fmt: skip
    assert bad.exit_code == 2 and "category" in bad.output
