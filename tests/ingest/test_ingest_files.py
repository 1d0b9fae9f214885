"""File import: every format and encoding, bad rows, rejects, idempotency."""

from __future__ import annotations

import json
from pathlib import Path

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from ingest_helpers import EVENT_HEADER, read_rejects, rows, scalar, write_csv

from liebian.ingest.files import FileImportError
from liebian.ingest.presets import PresetError
from liebian.ingest.service import import_file

GOOD = [
    ["e1", "2026-11-03 00:00:00", "o_alice", "openid", "signup", "小程序"],
    ["e2", "2026/11/3 14:05:06", "o_bob", "openid", "view", "企业微信"],
    ["e3", "1793000000", "o_alice", "openid", "share", "抖音"],
]


def _expected_events() -> list[tuple]:
    from datetime import datetime

    return [
        ("e1", datetime(2026, 11, 2, 16, 0), "o_alice", "signup", "miniprogram"),
        ("e2", datetime(2026, 11, 3, 6, 5, 6), "o_bob", "view", "wecom"),
        ("e3", datetime(2026, 10, 26, 7, 33, 20), "o_alice", "share", "douyin"),
    ]


def _loaded_events() -> list[tuple]:
    return rows("SELECT event_id, ts, user_id, event, channel FROM events ORDER BY event_id")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_every_encoding(sqlite_store, tmp_path: Path, encoding: str) -> None:
    path = write_csv(tmp_path / "events.csv", EVENT_HEADER, GOOD, encoding=encoding)
    result = import_file(path, "events")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 3, 0)
    assert result.encoding == ("gb18030" if encoding.startswith("gb") else encoding)
    # The Chinese channel names were decoded correctly, or they would be unknown channels.
    assert _loaded_events() == _expected_events()


def test_xlsx(sqlite_store, tmp_path: Path) -> None:
    from datetime import datetime

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(EVENT_HEADER + ["amount_hint"])
    sheet.append(["e1", datetime(2026, 11, 3, 0, 0), "o_alice", "openid", "signup", "小程序", 12])
    sheet.append(["e2", "2026/11/3 14:05:06", "o_bob", "openid", "view", "企业微信", None])
    sheet.append([None] * 7)  # an empty row in the middle is skipped, not rejected
    sheet.append(["e3", 1793000000, "o_alice", "openid", "share", "抖音", 3.5])
    sheet.append(["e4", "not a time", "o_alice", "openid", "share", "抖音", None])
    path = tmp_path / "events.xlsx"
    book.save(path)
    result = import_file(path, "events")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (4, 3, 1)
    assert _loaded_events() == _expected_events()
    # Excel numbers come back as the integers they were, not 12.0
    assert json.loads(scalar("SELECT props FROM events WHERE event_id = 'e1'")) == {"amount_hint": "12"}
    (reject,) = read_rejects(result.rejects_path)
    assert (reject["line"], reject["field"], reject["reason"]) == (
        "6",
        "ts",
        "unreadable timestamp not a time",
    )


def test_jsonl_with_a_broken_line(sqlite_store, tmp_path: Path) -> None:
    lines = [json.dumps(dict(zip(EVENT_HEADER, r, strict=True)), ensure_ascii=False) for r in GOOD]
    lines.insert(1, '{"event_id": "e9", "ts": ')  # truncated export
    lines.insert(2, "")  # blank lines are no rows
    lines.append("[1, 2]")
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = import_file(path, "events")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (5, 3, 2)
    assert _loaded_events() == _expected_events()
    rejects = read_rejects(result.rejects_path)
    assert [(r["line"], r["field"]) for r in rejects] == [("2", "json"), ("6", "json")]
    assert rejects[0]["reason"].startswith("broken JSON")
    assert rejects[0]["raw"] == '{"event_id": "e9", "ts": '
    assert rejects[1]["reason"] == "not a JSON object"


def test_parquet_with_typed_columns(sqlite_store, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    table = pa.table(
        {
            "event_id": ["e1", "e2", "e3"],
            # a zone-aware Parquet timestamp is an instant; epoch numbers work as well
            "ts": pa.array(
                [datetime(2026, 11, 2, 16, 0, tzinfo=UTC), datetime(2026, 11, 3, 6, 5, 6, tzinfo=UTC), None],
                pa.timestamp("us", tz="UTC"),
            ),
            "user_id": ["o_alice", "o_bob", "o_alice"],
            "id_type": ["openid"] * 3,
            "event": ["signup", "view", "share"],
            "channel": ["小程序", "企业微信", "抖音"],
            "score": pa.array([1.5, None, 2.0]),
        }
    )
    path = tmp_path / "events.parquet"
    pq.write_table(table, path)
    result = import_file(path, "events")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 1)
    assert _loaded_events() == _expected_events()[:2]
    (reject,) = read_rejects(result.rejects_path)
    assert (reject["line"], reject["field"], reject["reason"]) == ("3", "ts", "missing ts")
    assert json.loads(scalar("SELECT props FROM events WHERE event_id = 'e1'")) == {"score": "1.5"}


def test_bad_rows_are_rejected_with_line_field_and_reason(
    sqlite_store, data_dir: Path, tmp_path: Path
) -> None:
    path = write_csv(
        tmp_path / "mixed.csv",
        EVENT_HEADER + ["campaign_id"],
        [
            ["e1", "2026-11-03 10:00", "o_a", "openid", "view", "app", "c1"],  # line 2: good
            ["e2", "next tuesday", "o_a", "openid", "view", "app", ""],  # line 3: bad ts
            ["", "2026-11-03 10:00", "o_a", "openid", "view", "app", ""],  # line 4: missing id
            ["e4", "2026-11-03 10:00", "o_a", "openid", "view", "火星", ""],  # line 5: unknown channel
            ["e5", "2026-11-03 10:00", "o_a", "wechat_id", "view", "app", ""],  # line 6: unknown id_type
            ["e6", "2026-11-03 10:00", "o_b", "openid", "view", "门店", "c1"],  # line 7: good
        ],
    )
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write("e7,2026-11-03 10:00,o_c\r\n")  # line 8: too few columns
    result = import_file(path, "events")
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate, result.rows_rejected) == (7, 2, 0, 5)
    assert scalar("SELECT count(*) FROM events") == 2
    rejects = read_rejects(result.rejects_path)
    assert Path(result.rejects_path).parent == data_dir / "rejects"
    got = [(r["line"], r["field"], r["reason"]) for r in rejects]
    assert got[:4] == [
        ("3", "ts", "unreadable timestamp next tuesday"),
        ("4", "event_id", "missing event_id"),
        ("5", "channel", "unknown channel 火星"),
        ("6", "id_type", "unknown id_type wechat_id"),
    ]
    assert got[4][0] == "8" and got[4][2].startswith("too few columns")
    # the raw row travels with the reject, so it can be fixed and re-imported
    assert json.loads(rejects[0]["raw"])["ts"] == "next tuesday"
    assert rejects[4]["raw"] == "e7,2026-11-03 10:00,o_c"
    # the same rejects are visible in the warehouse
    table = rows("SELECT line, field, reason, source, batch_id FROM rejects ORDER BY line")
    assert [(r[0], r[1]) for r in table] == [
        (3, "ts"),
        (4, "event_id"),
        (5, "channel"),
        (6, "id_type"),
        (8, "row"),
    ]
    assert {r[3] for r in table} == {"file:mixed.csv"} and {r[4] for r in table} == {result.batch_id}
    assert result.reasons["unreadable timestamp"] == 1 and result.reasons["unknown channel"] == 1
    batch = rows("SELECT rows_read, rows_loaded, rows_rejected FROM import_batches")
    assert batch == [(7, 2, 5)]


def test_rows_after_a_broken_csv_line_keep_their_line_numbers(sqlite_store, tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        ",".join(EVENT_HEADER)
        + "\n"
        + "e1,2026-11-03,u,openid,view,app\n"
        + "e2,2026-11-03,u,openid,view,app,extra,extra\n"  # line 3: too many columns
        + "e3,2026-11-03,u,openid,view,app\n"
        + "e4,never,u,openid,view,app\n",  # line 5
        encoding="utf-8",
    )
    result = import_file(path, "events")
    assert [(r["line"], r["field"]) for r in read_rejects(result.rejects_path)] == [("3", "row"), ("5", "ts")]


def test_reimport_adds_nothing_and_duplicates_in_a_file_load_once(sqlite_store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "events.csv",
        EVENT_HEADER,
        GOOD + [GOOD[0], ["e2", "2026-11-04", "o_x", "openid", "x", "app"]],
    )
    first = import_file(path, "events")
    assert (first.rows_loaded, first.rows_duplicate) == (3, 2)
    # the first occurrence wins inside a file
    assert scalar("SELECT user_id FROM events WHERE event_id = 'e2'") == "o_bob"
    again = import_file(path, "events")
    assert (again.rows_loaded, again.rows_duplicate, again.rows_rejected) == (0, 5, 0)
    assert scalar("SELECT count(*) FROM events") == 3
    assert scalar("SELECT count(*) FROM identity_map") == 2


def test_extra_columns_become_properties_and_optional_columns_load(sqlite_store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "events.csv",
        EVENT_HEADER + ["campaign_id", "invite_code", "device_id", "ip", "received_at", "商品", "页面"],
        [
            [
                "e1",
                "2026-11-03 10:00",
                "o_a",
                "openid",
                "view",
                "app",
                "c1",
                "INV9",
                "dev-1",
                "10.0.0.1",
                "2026-11-03 10:00:30",
                "面霜",
                "",
            ]
        ],
    )
    import_file(path, "events")
    from datetime import datetime

    (row,) = rows("SELECT campaign_id, invite_code, device_id, ip, received_at, props FROM events")
    assert row[:5] == ("c1", "INV9", "dev-1", "10.0.0.1", datetime(2026, 11, 3, 2, 0, 30))
    assert json.loads(row[5]) == {"商品": "面霜"}  # empty values are not stored


def test_referrals_become_edges_first_inviter_wins_and_never_oneself(sqlite_store, tmp_path: Path) -> None:
    header = EVENT_HEADER + ["campaign_id", "referrer_id", "referrer_id_type"]
    path = write_csv(
        tmp_path / "events.csv",
        header,
        [
            ["e1", "2026-11-03 10:00", "o_bob", "openid", "signup", "app", "c1", "o_alice", "openid"],
            [
                "e2",
                "2026-11-03 11:00",
                "o_bob",
                "openid",
                "signup",
                "app",
                "c1",
                "o_carol",
                "",
            ],  # later inviter
            [
                "e3",
                "2026-11-03 09:00",
                "o_dan",
                "openid",
                "signup",
                "app",
                "c1",
                "o_dan",
                "openid",
            ],  # oneself
            [
                "e4",
                "2026-11-03 12:00",
                "o_bob",
                "openid",
                "signup",
                "app",
                "c2",
                "o_carol",
                "openid",
            ],  # other campaign
        ],
    )
    import_file(path, "events")
    persons = dict(rows("SELECT id_value, person_id FROM identity_map"))
    edges = rows(
        "SELECT inviter_person_id, invitee_person_id, campaign_id, event_id FROM referral_edges ORDER BY campaign_id"
    )
    assert edges == [
        (persons["o_alice"], persons["o_bob"], "c1", "e1"),
        (persons["o_carol"], persons["o_bob"], "c2", "e4"),
    ]
    assert scalar("SELECT referrer_person_id FROM events WHERE event_id = 'e1'") == persons["o_alice"]
    # a later file naming another inviter for the same invitee and campaign adds no edge
    later = write_csv(
        tmp_path / "later.csv",
        header,
        [["e5", "2026-11-04 10:00", "o_bob", "openid", "view", "app", "c1", "o_erin", "openid"]],
    )
    import_file(later, "events")
    assert scalar("SELECT count(*) FROM referral_edges") == 2


def test_phones_never_reach_the_warehouse_in_clear(sqlite_store, tmp_path: Path) -> None:
    path = write_csv(
        tmp_path / "events.csv",
        EVENT_HEADER,
        [
            ["e1", "2026-11-03 10:00", "138 0013 8000", "phone", "view", "app"],
            ["e2", "2026-11-03 11:00", "+86 13800138000", "phone", "view", "app"],
        ],
    )
    import_file(path, "events")
    values = rows("SELECT DISTINCT user_id, person_id FROM events")
    assert len(values) == 1  # both spellings are one phone, one person
    from liebian.privacy.crypto import identifier_hmac

    assert values[0][0] == identifier_hmac("13800138000")
    dump = json.dumps(rows("SELECT * FROM events"), default=str) + json.dumps(
        rows("SELECT * FROM identity_map")
    )
    assert "13800138000" not in dump
    from liebian.db.session import session_scope
    from liebian.identity.service import person_view

    with session_scope() as session:
        view = person_view(session, values[0][1])
    assert [i["value"] for i in view.identifiers] == ["138****8000"]


def test_unreadable_files_are_clear_errors(sqlite_store, tmp_path: Path) -> None:
    latin1 = tmp_path / "latin1.csv"
    latin1.write_bytes(",".join(EVENT_HEADER).encode() + b"\ne1,2026-11-03,caf\xe9,openid,view,app\n")
    with pytest.raises(FileImportError, match="neither UTF-8"):
        import_file(latin1, "events")
    # A NUL byte in one field refuses the whole file: the normaliser then need not look for one.
    nul = tmp_path / "nul.csv"
    nul.write_bytes(",".join(EVENT_HEADER).encode() + b"\ne1,2026-11-03,u\x001,openid,view,app\n")
    with pytest.raises(FileImportError, match="neither UTF-8"):
        import_file(nul, "events")
    utf16 = tmp_path / "utf16.csv"
    utf16.write_text(",".join(EVENT_HEADER), encoding="utf-16")
    with pytest.raises(FileImportError, match="UTF-16"):
        import_file(utf16, "events")
    with pytest.raises(FileImportError, match="no such file"):
        import_file(tmp_path / "missing.csv", "events")
    (tmp_path / "events.doc").write_text("x", encoding="utf-8")
    with pytest.raises(FileImportError, match="unknown file type"):
        import_file(tmp_path / "events.doc", "events")
    no_channel = write_csv(tmp_path / "nochannel.csv", EVENT_HEADER[:-1], [GOOD[0][:-1]])
    with pytest.raises(PresetError, match="channel"):
        import_file(no_channel, "events")
    assert scalar("SELECT count(*) FROM events") == 0
