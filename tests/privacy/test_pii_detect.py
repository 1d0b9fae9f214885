"""The PII detector (privacy/pii.py) and the policy the ingest pipeline applies with it."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from liebian.config import reset_settings_cache
from liebian.ingest.service import import_file, ingest_items
from liebian.privacy import pii
from liebian.privacy.crypto import identifier_hmac

sys.path.insert(0, str(Path(__file__).parents[1] / "ingest"))
from ingest_helpers import read_rejects, rows, write_csv  # noqa: E402

ID_CARD = "11010519491231002X"  # the standard's worked example: check character X
CARD = "6222021234567890128"  # 19 digits, Luhn-valid
PHONE = "13912345678"


def test_detector_finds_each_kind_and_checks_the_check_digits():
    text = f"电话 +86 139-1234-5678，身份证{ID_CARD}，卡号 {CARD}，邮箱 Li.Ming@Example.com。"
    found = {(f.kind, f.value) for f in pii.find(text)}
    assert found == {
        ("phone", PHONE),
        ("id_card", ID_CARD),
        ("bank_card", CARD),
        ("email", "li.ming@example.com"),
    }
    # a wrong check character / Luhn digit is no identifier; a longer run of digits holds no phone
    assert pii.find("11010519491231002Y 6222021234567890129 order 2024013912345678901") == []
    assert pii.id_card_valid(ID_CARD) and not pii.id_card_valid("110105194912310021")
    assert pii.luhn_valid("4111111111111111") and not pii.luhn_valid("4111111111111112")


def test_scrub_hashes_and_masks_or_drops():
    text = f"call {PHONE} or mail a@b.cn"
    hashed = pii.scrub(text, "hash")
    assert PHONE not in hashed and "a@b.cn" not in hashed
    assert f"[phone:139****5678:{identifier_hmac(PHONE)}]" in hashed
    assert f"[email:a***@b.cn:{identifier_hmac('a@b.cn')}]" in hashed
    assert pii.scrub(text, "drop") == "call [phone] or mail [email]"
    assert pii.scrub("no identifiers, 2024-05-01 12:00") == "no identifiers, 2024-05-01 12:00"
    assert pii.clear_identifiers([hashed, pii.scrub(text, "drop")]) == []


EXTRA = ["phone", "手机号", "mobile", "receiver_phone", "备注"]


def _event_rows():
    return [
        ["e1", "2024-05-01 10:00:00", "u1", "openid", "signup", "wechat",
         "13812345671", "138 1234 5672", "+8613812345673", "138-1234-5674", f"身份证 {ID_CARD}"],
        # a bad row (unknown channel): its raw row goes to the rejects with the same identifiers
        ["e2", "2024-05-01 10:00:00", "13812345675", "phone", "signup", "nowhere",
         "13812345676", "", "", "", f"卡 {CARD} mail x@y.com"],
    ]  # fmt: skip


def _assert_no_clear_identifiers(values) -> None:
    assert pii.clear_identifiers(values) == []


def test_file_import_keeps_no_identifier_in_properties_or_rejects(data_dir, sqlite_store, tmp_path):
    path = write_csv(
        tmp_path / "events.csv",
        ["event_id", "ts", "user_id", "id_type", "event", "channel", *EXTRA],
        _event_rows(),
    )
    result = import_file(path, "events")
    assert result.rows_loaded == 1 and result.rows_rejected == 1
    (props,) = rows("SELECT props FROM events WHERE event_id = 'e1'")[0]
    stored = json.loads(props)
    assert stored["phone"] == f"[phone:138****5671:{identifier_hmac('13812345671')}]"
    assert stored["receiver_phone"].startswith("[phone:138****5674:")
    _assert_no_clear_identifiers([props])
    _assert_no_clear_identifiers([v for r in rows("SELECT * FROM rejects") for v in r])
    rejects = read_rejects(result.rejects_path)
    assert rejects and all("[phone:" in r["raw"] for r in rejects)
    _assert_no_clear_identifiers([Path(result.rejects_path).read_bytes()])


def test_collector_messages_and_drop_policy(data_dir, sqlite_store, monkeypatch):
    monkeypatch.setenv("LIEBIAN_PII_POLICY", "drop")
    reset_settings_cache()
    items = [
        {"message_id": "m1", "ts": "2024-05-01T10:00:00+08:00", "group_id": "g1", "user_id": "u1",
         "id_type": "openid", "text": f"加我 {PHONE} 或 {ID_CARD}", "mobile": PHONE},
        {"message_id": "m2", "ts": "not a time", "group_id": "g1", "user_id": "u1",
         "id_type": "openid", "text": f"卡号{CARD}"},
    ]  # fmt: skip
    summary, outcomes = ingest_items("messages", items)
    assert [o.status for o in outcomes] == ["accepted", "rejected"]
    text, props = rows("SELECT text, props FROM messages WHERE message_id = 'm1'")[0]
    assert text == "加我 [phone] 或 [id_card]"
    assert json.loads(props) == {"mobile": "[phone]"}
    assert "[bank_card]" in rows("SELECT raw FROM rejects")[0][0]


@pytest.mark.parametrize("value", ["13812345678", "1381234567", "0571-12345678"])
def test_orders_properties_are_scrubbed(data_dir, sqlite_store, tmp_path, value):
    path = write_csv(
        tmp_path / "orders.csv",
        ["order_id", "ts", "user_id", "id_type", "channel", "amount", "收货人手机"],
        [["o1", "2024-05-01 10:00:00", "u1", "openid", "jd", "10.00", value]],
    )
    assert import_file(path, "orders").rows_loaded == 1
    (props,) = rows("SELECT props FROM orders")[0]
    _assert_no_clear_identifiers([props])


def test_hashes_timestamps_and_order_numbers_are_no_identifiers():
    hmacs = [identifier_hmac(f"1390000{i:04d}") for i in range(3000)]
    assert pii.clear_identifiers(hmacs) == []  # 64 hex characters: digit runs inside are no phones
    assert pii.find("ts 1714550400000, order 20240501123456789012, id 123456789012345678") == []


def test_a_batch_after_a_closed_connection_is_scrubbed_while_the_warehouse_stays_open(data_dir, sqlite_store):
    """The server keeps the warehouse open between flushes (campaigns.outbox.WarehouseAnchor), so
    every batch's connection shares one DuckDB catalogue. The scrub function of a batch whose
    connection has closed must not be what the next batch calls: that crashed the process."""
    import duckdb

    from liebian.engine.warehouse import warehouse_path

    ingest_items("messages", [])  # creates the warehouse file
    anchor = duckdb.connect(str(warehouse_path()))
    try:
        for n in range(3):
            items = [{"message_id": f"m{n}", "ts": "2024-05-01T10:00:00+08:00", "group_id": "g1",
                      "user_id": f"u{n}", "id_type": "openid", "text": f"加我 {PHONE}"}]  # fmt: skip
            assert [o.status for o in ingest_items("messages", items)[1]] == ["accepted"]
        left = anchor.execute(
            "SELECT function_name FROM duckdb_functions() WHERE function_name LIKE 'liebian_pii%'"
        ).fetchall()
    finally:
        anchor.close()
    assert left == []  # each batch removed its function
    texts = [t for (t,) in rows("SELECT text FROM messages ORDER BY message_id")]
    assert len(texts) == 3 and all("[phone:" in t for t in texts)
    _assert_no_clear_identifiers(texts)
