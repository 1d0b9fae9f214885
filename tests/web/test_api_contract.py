"""The API's contract, generated from the app's route table: every /api/v1 route declares what it
answers (a Pydantic response model, or a non-JSON response class), and a DomainError raised in a
service reaches the client with its status, code, field and both messages."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import pytest
from fastapi.datastructures import DefaultPlaceholder
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient
from pydantic import BaseModel

import liebian
from liebian.automation import service as automation
from liebian.error_messages import MESSAGES
from liebian.errors import DomainError
from liebian.rewards.service import LedgerError
from liebian.web.app import create_app


def _names_a_model(annotation) -> bool:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return True
    return any(_names_a_model(arg) for arg in typing.get_args(annotation))


def _declares_its_answer(rc) -> bool:
    response_class = rc.response_class
    if not isinstance(response_class, DefaultPlaceholder) and response_class is not JSONResponse:
        return True  # a file, CSV, HTML, plain-text or empty (204) answer
    return rc.response_model is not None and _names_a_model(rc.response_model)


def test_every_api_route_declares_its_response(data_dir):
    app = create_app(run_migrations=False)
    routes = [rc for rc in iter_route_contexts(app.routes) if rc.path.startswith("/api/v1")]
    assert len(routes) > 150, "the route table lost its routes"
    missing = sorted(
        f"{method} {rc.path}"
        for rc in routes
        if not _declares_its_answer(rc)
        for method in sorted(rc.methods - {"HEAD"})
    )
    assert not missing, f"routes without a response model or a non-JSON response class: {missing}"


@pytest.fixture
def client(sqlite_store, admin_headers):
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as c:
        yield c


def _refuse(*_args, **_kwargs):
    raise LedgerError("not_payable", "reward_id: reward 7 is not approved", 409, field="reward_id")


def test_a_domain_error_reaches_the_client_in_both_languages(client, monkeypatch):
    monkeypatch.setattr(automation, "get_journey", _refuse)
    r = client.get("/api/v1/journeys/7")
    assert r.status_code == 409
    body = r.json()
    zh = MESSAGES["not_payable"][0].format(message="reward_id: reward 7 is not approved")
    assert body == {
        "detail": "reward_id: reward 7 is not approved",
        "code": "not_payable",
        "field": "reward_id",
        "message_en": "reward_id: reward 7 is not approved",
        "message_zh": zh,
    }
    for asked in ({"headers": {"Accept-Language": "zh-CN,zh;q=0.9,en;q=0.8"}}, {"params": {"lang": "zh-CN"}}):
        r = client.get("/api/v1/journeys/7", **asked)
        assert (r.status_code, r.json()["detail"], r.json()["code"]) == (409, zh, "not_payable")
    r = client.get("/api/v1/journeys/7", headers={"Accept-Language": "en-US"})
    assert r.json()["detail"] == "reward_id: reward 7 is not approved"


def test_a_422_keeps_the_errors_list_and_names_the_field(client):
    # a real raise site: the ledger wants an idempotency key
    r = client.post("/api/v1/payouts/issue", json={"reward_ids": [1]})
    assert r.status_code == 422
    body = r.json()
    assert body["code"] == "invalid" and body["field"] == "idempotency_key"
    assert body["errors"] == [{"field": "idempotency_key", "reason": body["detail"].partition(": ")[2]}]
    assert body["message_zh"].startswith("请求无效")


def test_every_raised_code_has_both_languages():
    err = DomainError("no_such_code_anywhere", "something went wrong")
    assert (err.message, err.message_zh, err.status) == ("something went wrong", "something went wrong", 400)
    for code, (zh, en) in MESSAGES.items():
        e = DomainError(code)
        assert e.message == en and e.message_zh.startswith(zh.split("{")[0]), code


# A domain error class with its code as the first string argument (after an optional status).
RAISE_SITE = re.compile(
    r"\b(?:LedgerError|FraudError|MonitorError|WecomError|CallbackRejected|AuthError|PrivacyError|"
    r"CryptoError|CampaignError|DomainError|Invalid|NotFound|Conflict|Unavailable)\(\s*(?:\d+,\s*)?\"([a-z_]+)\""
)


def test_every_code_a_domain_raises_has_a_chinese_message():
    src = Path(liebian.__file__).parent
    codes = {
        code for path in src.rglob("*.py") for code in RAISE_SITE.findall(path.read_text(encoding="utf-8"))
    }
    assert len(codes) > 20, "the raise-site pattern lost the domains' raises"
    assert not sorted(codes - set(MESSAGES)), "codes without an entry in liebian/error_messages.py"
