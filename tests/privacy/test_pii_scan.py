"""The PII scan: after the demo and a full import with identifiers in extra columns and free text,
no table of either store, no export and no rejects file holds an identifier in clear text; and
`privacy inventory` is that scan (the reproduction: it claimed events held phones only as HMACs
while their properties held them in clear)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.config import get_settings
from liebian.demo.generator import DemoSpec
from liebian.demo.service import build
from liebian.engine.backend import export_parquet
from liebian.ingest.service import import_file
from liebian.privacy import inventory
from liebian.web.app import create_app

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
from ingest_helpers import write_csv  # noqa: E402

ID_CARD = "11010519491231002X"
CARD = "6222021234567890128"


def _import_with_pii(tmp_path: Path) -> None:
    header = ["order_id", "ts", "user_id", "id_type", "channel", "amount", "手机号", "receiver_phone", "备注"]
    rows = [
        [f"pii-{i}", "2024-05-01 10:00:00", f"1391234{i:04d}", "phone", "jd", "19.90",
         f"1381234{i:04d}", f"+86 137 1234 {i:04d}", f"身份证{ID_CARD} 卡{CARD} mail u{i}@example.com"]
        for i in range(50)
    ]  # fmt: skip
    rows.append(["pii-bad", "someday", "13912340000", "phone", "nowhere", "x", "13812349999", "", ""])
    result = import_file(write_csv(tmp_path / "orders.csv", header, rows), "orders")
    assert result.rows_loaded == 50 and result.rows_rejected == 1
    messages = [
        [f"pii-m{i}", "2024-05-01 10:00:00", "g1", f"u{i}", "openid", f"加我微信 138-1234-{i:04d}"]
        for i in range(20)
    ]
    header = ["message_id", "ts", "group_id", "user_id", "id_type", "text"]
    assert import_file(write_csv(tmp_path / "messages.csv", header, messages), "messages").rows_loaded == 20


@pytest.fixture
def brand(store, tmp_path):
    build(DemoSpec(persons=600))
    _import_with_pii(tmp_path)
    export_parquet()
    return store


def test_no_clear_identifier_anywhere_after_demo_and_import(brand, admin_headers):
    locations = inventory.scan()
    wheres = {loc.where for loc in locations}
    # the scan covers both stores, the exports and the rejects files
    assert {
        "identifiers.encrypted_value",
        "events.props",
        "orders.props",
        "messages.text",
        "rejects.raw",
    } <= wheres
    assert any(w.startswith("parquet/orders.parquet") for w in wheres)
    assert any(w.startswith("rejects/") for w in wheres)
    assert inventory.clear_identifiers(locations) == {}
    props = next(loc for loc in locations if loc.where == "orders.props")
    assert props.hashed >= 150  # 手机号, receiver_phone and 备注's identifiers, hashed and masked

    # `privacy inventory` (API and CLI) is this scan
    with TestClient(create_app(), headers=admin_headers) as client:
        rows = client.get("/api/v1/privacy/inventory").json()
    by_where = {r["where"]: r for r in rows}
    assert by_where["warehouse: orders.props"]["clear"] == 0
    assert "HMAC" in by_where["warehouse: orders.props"]["protection"]
    assert "AES-256-GCM" in by_where["operational: identifiers.encrypted_value"]["protection"]
    assert all(r["clear"] == 0 for r in rows if not r["where"].startswith("file: demo/"))
    out = CliRunner().invoke(cli_app, ["privacy", "inventory", "--format", "json"])
    assert out.exit_code == 0, out.output
    # the same locations (the API call itself added an audit entry with an IP since)
    assert set(by_where) <= {r["where"] for r in json.loads(out.output)}


def test_the_scan_finds_what_is_in_clear(sqlite_store, tmp_path):
    """The scan can fail: a rejects file and a Parquet file with a phone in clear are reported."""
    folder = get_settings().data_dir / "rejects"
    folder.mkdir(parents=True)
    (folder / "old.csv").write_text("line,field,reason,raw\n2,ts,bad,13812345678\n", encoding="utf-8")
    found = inventory.clear_identifiers(inventory.scan())
    assert found == {"file:rejects/old.csv": {"phone": 1}}
