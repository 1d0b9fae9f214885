"""Re-importing a file: rows whose id is stored already are recognised before validation and
counted as duplicates; new rows are validated as on a first import, under their own line numbers."""

from __future__ import annotations

from pathlib import Path

from ingest_helpers import EVENT_HEADER, read_rejects, rows, scalar, write_csv

from liebian.ingest.service import import_file

FIRST = [
    ["e1", "2026-11-03 10:00", "o_a", "openid", "view", "app"],  # line 2
    ["e2", "2026-11-03 11:00", "o_b", "openid", "view", "app"],  # line 3
    ["e9", "next tuesday", "o_c", "openid", "view", "app"],  # line 4: rejected, never stored
    ["e3", "2026-11-03 12:00", "o_a", "openid", "share", "门店"],  # line 5
]


def _batch(batch_id: str) -> tuple:
    return rows(
        "SELECT rows_read, rows_loaded, rows_duplicate, rows_rejected FROM import_batches WHERE batch_id = ?",
        [batch_id],
    )[0]


def test_a_file_mixing_stored_and_new_rows(store, tmp_path: Path) -> None:
    first = import_file(write_csv(tmp_path / "first.csv", EVENT_HEADER, FIRST), "events")
    assert (first.rows_loaded, first.rows_duplicate, first.rows_rejected) == (3, 0, 1)
    path = write_csv(
        tmp_path / "second.csv",
        EVENT_HEADER,
        [
            [
                "e1",
                "never",
                "o_z",
                "openid",
                "view",
                "app",
            ],  # line 2: stored id -> duplicate, not re-validated
            ["e4", "2026-11-04 10:00", "o_d", "openid", "signup", "小程序"],  # line 3: new
        ],
    )
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write("e5,2026-11-04,o_e,openid,view,app,extra\r\n")  # line 4: too many columns
        fh.write("e2,2026-11-05,o_x,openid,view,app\r\n")  # line 5: stored -> duplicate
        fh.write("e9,still never,o_c,openid,view,app\r\n")  # line 6: never stored -> validated, rejected
        fh.write("e6,2026-11-04 11:00,o_d,openid,view,火星\r\n")  # line 7: new, unknown channel
        fh.write("e7,2026-11-04 12:00,o_f,openid,view,抖音\r\n")  # line 8: new
        fh.write("\t e3 ,2026-11-06,o_y,openid,view,app\r\n")  # line 9: e3 padded -> stored -> duplicate
        fh.write("e4,2026-11-04 13:00,o_g,openid,view,app\r\n")  # line 10: repeats line 3 in the file
    result = import_file(path, "events")
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate, result.rows_rejected) == (9, 2, 4, 3)
    assert _batch(result.batch_id) == (9, 2, 4, 3)
    got = [(r["line"], r["field"], r["reason"]) for r in read_rejects(result.rejects_path)]
    assert [g[:2] for g in got] == [("4", "row"), ("6", "ts"), ("7", "channel")]
    assert got[1][2] == "unreadable timestamp still never" and got[2][2] == "unknown channel 火星"
    warehouse_rejects = rows(
        "SELECT line, field FROM rejects WHERE batch_id = ? ORDER BY line", [result.batch_id]
    )
    assert warehouse_rejects == [(4, "row"), (6, "ts"), (7, "channel")]
    # the stored rows are untouched; the new ones loaded from their first line
    assert rows("SELECT event_id, user_id, channel FROM events ORDER BY event_id") == [
        ("e1", "o_a", "app"),
        ("e2", "o_b", "app"),
        ("e3", "o_a", "store"),
        ("e4", "o_d", "miniprogram"),
        ("e7", "o_f", "douyin"),
    ]
    assert scalar("SELECT count(*) FROM identity_map") == 4  # o_a, o_b, o_d, o_f


def test_a_file_of_stored_rows_only_still_reports_its_broken_lines(store, tmp_path: Path) -> None:
    good = [r for r in FIRST if r[0] != "e9"]
    import_file(write_csv(tmp_path / "first.csv", EVENT_HEADER, good), "events")
    path = write_csv(tmp_path / "again.csv", EVENT_HEADER, good)
    with path.open("a", encoding="utf-8", newline="") as fh:
        fh.write("e8,2026-11-03\r\n")  # line 5: too few columns
    again = import_file(path, "events")
    assert (again.rows_read, again.rows_loaded, again.rows_duplicate, again.rows_rejected) == (4, 0, 3, 1)
    assert [(r["line"], r["field"]) for r in read_rejects(again.rejects_path)] == [("5", "row")]
    assert _batch(again.batch_id) == (4, 0, 3, 1)
    assert scalar("SELECT count(*) FROM events") == 3
