"""A GBK export whose first Chinese character comes after thousands of ASCII rows: the encoding is
decided on the whole file, so its Chinese rows load instead of being rejected as invalid UTF-8."""

from __future__ import annotations

from pathlib import Path

import pytest
from ingest_helpers import EVENT_HEADER, rows, write_csv

from liebian.ingest.service import import_file

ASCII_ROWS = 3_200  # more than a sniffer's or a first chunk's sample


def _late_gbk_rows() -> list[list[str]]:
    head = [[f"a{i}", "2026-11-03 10:00:00", f"o_{i}", "openid", "view", "app"] for i in range(ASCII_ROWS)]
    tail = [
        ["z1", "2026-11-03 11:00:00", "o_王", "openid", "signup", "小程序"],
        ["z2", "2026-11-03 12:00:00", "o_李", "openid", "share", "抖音"],
        ["z3", "2026-11-03 13:00:00", "o_x", "openid", "view", "企业微信"],
    ]
    return head + tail


@pytest.mark.parametrize("encoding", ["gbk", "gb18030"])
def test_a_gbk_file_with_chinese_only_after_3000_rows_loads_every_row(
    sqlite_store, tmp_path: Path, encoding: str
) -> None:
    path = write_csv(tmp_path / "events.csv", EVENT_HEADER, _late_gbk_rows(), encoding=encoding)
    raw = path.read_bytes()
    assert raw.find("小程序".encode("gbk")) > 3_000 * 40, "the first Chinese bytes come late in the file"
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")  # so a reader that trusts the first rows would take it for UTF-8

    result = import_file(path, "events")

    assert result.encoding == "gb18030"
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (ASCII_ROWS + 3, ASCII_ROWS + 3, 0)
    late = rows("SELECT event_id, channel FROM events WHERE event_id LIKE 'z%' ORDER BY event_id")
    # the Chinese channel names were decoded, or they would be unknown channels (rejected)
    assert late == [("z1", "miniprogram"), ("z2", "douyin"), ("z3", "wecom")]
