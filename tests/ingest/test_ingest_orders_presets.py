"""Orders (status updates, money), channel presets, identity evidence and community messages."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import openpyxl
import pytest
from ingest_helpers import FIXTURES, read_rejects, rows, scalar, write_csv

from liebian.db.session import session_scope
from liebian.identity import service as identity
from liebian.ingest.presets import PresetError
from liebian.ingest.service import import_file

ORDER_HEADER = ["order_id", "ts", "user_id", "id_type", "amount", "status", "channel"]


def test_orders_one_row_per_order_and_later_states_update_it(store, tmp_path: Path) -> None:
    first = write_csv(
        tmp_path / "day1.csv",
        ORDER_HEADER,
        [
            ["A1", "2026-11-03 10:00", "13800138000", "phone", "¥1,299.00", "paid", "小程序"],
            ["A2", "2026-11-03 11:00", "o_b", "openid", "89.90", "已支付", "app"],
            ["A3", "2026-11-03 12:00", "o_c", "openid", "10", "paid", "app"],
        ],
    )
    r1 = import_file(first, "orders")
    assert (r1.rows_loaded, r1.rows_duplicate, r1.rows_rejected) == (3, 0, 0)
    second = write_csv(
        tmp_path / "day2.csv",
        ORDER_HEADER,
        [
            [
                "A1",
                "2026-11-05 09:00",
                "13800138000",
                "phone",
                "1299",
                "已退款",
                "小程序",
            ],  # refund of a known order
            ["A2", "2026-11-03 11:00", "o_b", "openid", "89.90", "paid", "app"],  # the same state again
            ["A3", "2026-11-04 08:00", "o_c", "openid", "10", "cancelled", "app"],
            ["A3", "2026-11-06 08:00", "o_c", "openid", "10", "paid", "app"],  # paid never undoes a cancel
            ["A4", "2026-11-05 10:00", "o_d", "openid", "5", "paid", "app"],
        ],
    )
    r2 = import_file(second, "orders")
    assert (r2.rows_loaded, r2.rows_updated, r2.rows_duplicate) == (3, 2, 2)
    got = {r[0]: r[1:] for r in rows("SELECT order_id, amount_fen, status, ts, status_ts FROM orders")}
    assert got["A1"] == (129900, "refunded", datetime(2026, 11, 3, 2, 0), datetime(2026, 11, 5, 1, 0))
    assert got["A2"] == (8990, "paid", datetime(2026, 11, 3, 3, 0), datetime(2026, 11, 3, 3, 0))
    assert got["A3"][1] == "cancelled" and got["A3"][3] == datetime(2026, 11, 4, 0, 0)
    assert got["A4"][1] == "paid"
    assert scalar("SELECT count(*) FROM orders") == 4
    again = import_file(second, "orders")
    assert (again.rows_loaded, again.rows_duplicate) == (0, 5)
    # the registry (SQLite or PostgreSQL) knows each buyer once and the warehouse agrees with it
    with session_scope() as session:
        assert identity.identifier_count(session) == 4
        phone_person = identity.find_person(session, "phone", "13800138000")
    assert scalar("SELECT person_id FROM orders WHERE order_id = 'A1'") == phone_person
    assert "13800138000" not in json.dumps(rows("SELECT * FROM orders"), default=str)


def test_wecom_contacts_preset(sqlite_store) -> None:
    result = import_file(FIXTURES / "wecom_contacts.csv", "events", "wecom_contacts")
    assert result.encoding == "utf-8-sig"
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 3, 2)
    got = rows("SELECT user_id, id_type, event, channel, ts, invite_code, props FROM events ORDER BY user_id")
    assert [g[:5] for g in got] == [
        ("wmAAA001", "external_userid", "add_external_contact", "wecom", datetime(2026, 11, 3, 1, 15)),
        ("wmAAA002", "external_userid", "add_external_contact", "wecom", datetime(2026, 11, 3, 2, 20)),
        ("wmAAA003", "external_userid", "add_external_contact", "wecom", datetime(2026, 11, 3, 3, 0)),
    ]
    assert got[0][5] == "camp_spring"
    assert json.loads(got[0][6]) == {"来源": "扫描渠道二维码", "标签": "高意向;宝妈", "staff": "lisi"}
    # names and the phone in the remark are personal data the preset does not keep
    dump = json.dumps(rows("SELECT * FROM events"), default=str, ensure_ascii=False)
    assert "张三" not in dump and "138 0013 8000" not in dump
    assert [(r["line"], r["field"]) for r in read_rejects(result.rejects_path)] == [
        ("5", "user_id"),
        ("6", "ts"),
    ]
    # no event id in the export: the derived one makes a re-import a no-op
    assert import_file(FIXTURES / "wecom_contacts.csv", "events", "wecom_contacts").rows_loaded == 0


def test_miniprogram_orders_preset_from_xlsx(sqlite_store, tmp_path: Path) -> None:
    import csv

    with (FIXTURES / "miniprogram_orders.csv").open(encoding="utf-8") as fh:
        table = list(csv.reader(fh))
    book = openpyxl.Workbook()
    for row in table:
        book.active.append(row)
    path = tmp_path / "小程序订单.xlsx"
    book.save(path)
    for source in (FIXTURES / "miniprogram_orders.csv", path):
        result = import_file(source, "orders", "miniprogram_orders")
        assert result.rows_rejected == 2
        assert sorted(result.reasons) == ["negative amount", "unknown order status"]
    got = rows("SELECT order_id, user_id, id_type, amount_fen, status, channel FROM orders ORDER BY order_id")
    assert got == [
        # unionid preferred over openid; the refund row of the same order updated its state
        ("MP20261103001", "uUNION1", "unionid", 129900, "refunded", "miniprogram"),
        ("MP20261103002", "oOPEN2", "openid", 8990, "paid", "miniprogram"),
    ]
    assert "13800138000" not in json.dumps(rows("SELECT * FROM orders"), default=str)


def test_douyin_orders_preset_gbk(sqlite_store) -> None:
    result = import_file(FIXTURES / "douyin_orders_gbk.csv", "orders", "douyin_orders")
    assert result.encoding == "gb18030"
    assert (result.rows_loaded, result.rows_rejected) == (3, 0)
    got = rows("SELECT order_id, user_id, id_type, amount_fen, status, ts FROM orders ORDER BY order_id")
    assert got == [
        # the tab Douyin puts before long numbers is gone; 实付金额 is the amount
        ("6920000000000001", "88001", "douyin_openid", 18900, "paid", datetime(2026, 11, 3, 12, 5)),
        ("6920000000000002", "88002", "douyin_openid", 27950, "cancelled", datetime(2026, 11, 3, 13, 10)),
        ("6920000000000003", "88001", "douyin_openid", 15900, "refunded", datetime(2026, 11, 4, 0, 0)),
    ]
    assert len({p for (p,) in rows("SELECT person_id FROM orders WHERE user_id = '88001'")}) == 1


def test_a_preset_names_the_columns_it_misses(sqlite_store, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "orders.csv", ["订单号", "下单时间"], [["1", "2026-11-03"]])
    with pytest.raises(PresetError, match=r"user_id \(用户unionid / unionid"):
        import_file(path, "orders", "miniprogram_orders")
    with pytest.raises(PresetError, match="imports orders, not events"):
        import_file(path, "events", "douyin_orders")
    with pytest.raises(PresetError, match="unknown preset"):
        import_file(path, "orders", "taobao")


def test_identity_links_merge_persons_across_channels(store, tmp_path: Path) -> None:
    events = write_csv(
        tmp_path / "events.csv",
        ["event_id", "ts", "user_id", "id_type", "event", "channel"],
        [
            ["e1", "2026-11-03 10:00", "o_mini", "openid", "view", "小程序"],
            ["e2", "2026-11-03 11:00", "wm_1", "external_userid", "add_external_contact", "企微"],
            ["e3", "2026-11-03 12:00", "13800138000", "phone", "view", "门店"],
        ],
    )
    import_file(events, "events")
    assert scalar("SELECT count(DISTINCT person_id) FROM events") == 3
    links = write_csv(
        tmp_path / "links.csv",
        ["id_type_a", "id_a", "id_type_b", "id_b", "ts", "source"],
        [
            ["openid", "o_mini", "external_userid", "wm_1", "2026-11-03 12:00", "wecom_api"],
            ["external_userid", "wm_1", "phone", "138-0013-8000", "2026-11-03 13:00", ""],
            ["openid", "o_mini", "external_userid", "wm_1", "2026-11-03 12:00", "wecom_api"],  # repeated
            ["openid", "o_x", "wechat", "x", "", ""],  # bad type
        ],
    )
    result = import_file(links, "identities")
    assert (result.rows_loaded, result.rows_duplicate, result.rows_rejected) == (2, 1, 1)
    assert result.details["merged"] == 2
    # one human: every event now carries the same person, in the warehouse and the registry
    (person,) = rows("SELECT DISTINCT person_id FROM events")
    with session_scope() as session:
        assert identity.find_person(session, "phone", "13800138000") == person[0]
    assert [(r["line"], r["field"]) for r in read_rejects(result.rejects_path)] == [("5", "id_type_b")]
    again = import_file(links, "identities")
    assert (again.rows_loaded, again.rows_duplicate) == (0, 3)


def test_messages_default_to_wecom(sqlite_store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "messages.csv",
        ["message_id", "ts", "group_id", "user_id", "id_type", "text", "channel"],
        [
            ["m1", "2026-11-03 10:00", "g1", "wm_1", "external_userid", "这个面霜太好用了！", ""],
            ["m2", "2026-11-03 10:01", "g1", "wm_2", "external_userid", "  求链接  ", "公众号"],
            ["m3", "2026-11-03 10:02", "", "wm_2", "external_userid", "hi", ""],
        ],
    )
    result = import_file(path, "messages")
    assert (result.rows_loaded, result.rows_rejected) == (2, 1)
    got = rows("SELECT message_id, group_id, text, channel FROM messages ORDER BY message_id")
    assert got == [("m1", "g1", "这个面霜太好用了！", "wecom"), ("m2", "g1", "求链接", "official_account")]
    assert import_file(path, "messages").rows_loaded == 0
