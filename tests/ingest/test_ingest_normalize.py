"""The normalisation rules, run as the SQL both the importer and the collector use."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pyarrow as pa
import pytest

from liebian.config import Settings
from liebian.ingest.normalize import canonical_channel, channel_map, generic_columns, normalize_query, ts_sql


def _ts(values: list[str | None], tz: str = "Asia/Shanghai") -> list[datetime | None]:
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("t", pa.table({"x": pa.array(values, pa.string())}))
    return [r[0] for r in con.execute(f"SELECT {ts_sql('x', tz)} FROM t").fetchall()]


@pytest.mark.parametrize(
    ("text", "utc"),
    [
        # naive local midnight in Shanghai (UTC+8) is 16:00 UTC the day before
        ("2026-11-03 00:00:00", datetime(2026, 11, 2, 16, 0)),
        ("2026-11-03", datetime(2026, 11, 2, 16, 0)),
        ("2026-11-03T14:05:00", datetime(2026, 11, 3, 6, 5)),
        ("2026-11-03T14:05:00.250", datetime(2026, 11, 3, 6, 5, 0, 250000)),
        ("2026-11-03T14:05:00+08:00", datetime(2026, 11, 3, 6, 5)),
        ("2026-11-03T14:05:00Z", datetime(2026, 11, 3, 14, 5)),
        ("2026-11-03T14:05:00-05:00", datetime(2026, 11, 3, 19, 5)),
        ("2026-11-03 14:05:00+0000", datetime(2026, 11, 3, 14, 5)),
        ("2026/11/03 14:05", datetime(2026, 11, 3, 6, 5)),
        ("2026/11/3 14:05:06", datetime(2026, 11, 3, 6, 5, 6)),
        ("2026年11月3日 14:05", datetime(2026, 11, 3, 6, 5)),
        ("2026年11月3日", datetime(2026, 11, 2, 16, 0)),
        # epoch seconds and milliseconds are UTC instants whatever the zone
        ("1793000000", datetime(2026, 10, 26, 7, 33, 20)),
        ("1793000000.5", datetime(2026, 10, 26, 7, 33, 20, 500000)),
        ("1793000000123", datetime(2026, 10, 26, 7, 33, 20, 123000)),
        ("yesterday", None),
        ("2026-13-40", None),
        ("12345", None),
    ],
)
def test_timestamps_become_naive_utc(text: str, utc: datetime | None) -> None:
    assert _ts([text]) == [utc]


def test_epoch_seconds_and_milliseconds_name_the_same_instant() -> None:
    seconds, millis = _ts(["1793000000", "1793000000000"])
    assert seconds == millis == datetime.fromtimestamp(1793000000, UTC).replace(tzinfo=None)


def test_naive_times_follow_the_configured_zone_including_daylight_saving() -> None:
    # New York is UTC-4 in summer and UTC-5 in winter: the per-row zone rules apply.
    assert _ts(["2026-07-01 00:00:00", "2026-12-01 00:00:00"], tz="America/New_York") == [
        datetime(2026, 7, 1, 4, 0),
        datetime(2026, 12, 1, 5, 0),
    ]
    assert _ts(["2026-07-01 00:00:00"], tz="UTC") == [datetime(2026, 7, 1)]


@pytest.mark.parametrize(
    ("alias", "canonical"),
    [
        ("企业微信", "wecom"),
        ("企微", "wecom"),
        ("WeCom", "wecom"),
        ("wecom", "wecom"),
        ("小程序", "miniprogram"),
        ("微信小程序", "miniprogram"),
        ("mini-program", "miniprogram"),
        ("抖音", "douyin"),
        ("小红书", "xiaohongshu"),
        ("RED", "xiaohongshu"),
        ("APP", "app"),
        ("门店", "store"),
        ("线下门店", "store"),
        ("公众号", "official_account"),
        ("视频号", "channels"),
        ("天猫", "tmall"),
        ("京东", "jd"),
        ("火星", None),
    ],
)
def test_channel_aliases(alias: str, canonical: str | None) -> None:
    assert canonical_channel(alias, Settings()) == canonical


def test_configured_aliases_and_extra_channels() -> None:
    settings = Settings(
        channel_aliases={"直播间": "douyin", "社区团购": "tuangou"}, extra_channels=["tuangou"]
    )
    mapping = channel_map(settings)
    assert mapping["直播间"] == "douyin"
    assert mapping["社区团购"] == "tuangou"
    assert mapping["tuangou"] == "tuangou"
    with pytest.raises(ValueError, match="not a known channel"):
        channel_map(Settings(channel_aliases={"x": "nowhere"}))


def _normalize(kind: str, records: list[dict], settings: Settings | None = None) -> list[dict]:
    cols = generic_columns(kind)
    table = {
        "_line": pa.array(range(len(records)), pa.int64()),
        "_props": pa.array([None] * len(records), pa.string()),
    }
    for col in cols:
        table[col] = pa.array([r.get(col) for r in records], pa.string())
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("src", pa.table(table))
    query = normalize_query(kind, "src", settings or Settings())
    cur = con.execute(query.sql + " ORDER BY _line")
    names = [d[0] for d in cur.description]
    return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]


ORDER = {"order_id": "o1", "ts": "2026-11-03 10:00", "user_id": "u", "id_type": "openid", "channel": "app"}


@pytest.mark.parametrize(
    ("given", "fen", "error"),
    [
        ({"amount": "12.5"}, 1250, None),
        ({"amount": "¥1,234.56"}, 123456, None),
        ({"amount": "￥ 99 元"}, 9900, None),
        ({"amount": "0"}, 0, None),
        ({"amount_fen": "1999"}, 1999, None),
        ({"amount": "-3.00"}, None, ("amount", "negative amount")),
        ({"amount_fen": "-100"}, None, ("amount_fen", "negative amount")),
        ({"amount": "12.345"}, None, ("amount", "not an amount in yuan with at most 2 decimals: 12.345")),
        ({"amount": "abc"}, None, ("amount", "not an amount in yuan with at most 2 decimals: abc")),
        ({"amount_fen": "12.5"}, None, ("amount_fen", "not an integer number of fen: 12.5")),
        ({}, None, ("amount", "missing amount")),
    ],
)
def test_money_becomes_integer_fen(given: dict, fen: int | None, error: tuple | None) -> None:
    (row,) = _normalize("orders", [{**ORDER, **given}])
    errors = [(e["field"], e["reason"]) for e in row["_errors"]]
    if error is None:
        assert errors == []
        assert row["amount_fen"] == fen
        assert row["currency"] == "CNY"
        assert row["status"] == "paid"
    else:
        assert error in errors


def test_order_status_words_from_exports() -> None:
    got = _normalize(
        "orders",
        [
            {**ORDER, "amount": "1", "status": s}
            for s in ("已支付", "已退款", "已取消", "交易关闭", "REFUNDED", "待付款")
        ],
    )
    assert [r["status"] for r in got] == ["paid", "refunded", "cancelled", "cancelled", "refunded", None]
    assert got[-1]["_errors"][0]["reason"] == "unknown order status 待付款"


def test_every_problem_of_a_row_is_named() -> None:
    (row,) = _normalize(
        "events",
        [
            {
                "event_id": None,
                "ts": "soon",
                "user_id": "123",
                "id_type": "phone",
                "event": "x",
                "channel": "火星",
            }
        ],
    )
    assert sorted((e["field"], e["reason"]) for e in row["_errors"]) == [
        ("channel", "unknown channel 火星"),
        ("event_id", "missing event_id"),
        ("ts", "unreadable timestamp soon"),
        ("user_id", "not a phone number"),
    ]


def test_values_are_trimmed_and_phones_reduced_to_digits() -> None:
    (row,) = _normalize(
        "events",
        [
            {
                "event_id": "\te1 ",
                "ts": " 2026-11-03 ",
                "user_id": "+86 138-0013-8000",
                "id_type": " Phone",
                "event": "view",
                "channel": " 企微 ",
            }
        ],
    )
    assert row["_errors"] == []
    assert (row["event_id"], row["id_type"], row["user_raw"], row["channel"]) == (
        "e1",
        "phone",
        "13800138000",
        "wecom",
    )


@pytest.mark.parametrize("kind", ["events", "orders", "messages", "identities"])
def test_columns_a_file_lacks_come_apart_as_one_row_with_the_same_values(kind: str) -> None:
    """A file without some columns: the outputs computed from those alone leave the batch's
    table (they are the same in every row) and come back as one row; together they give what the
    full query gives, row by row, and the columns read from the file stay in the table."""
    cols = generic_columns(kind)
    present = cols[: len(cols) // 2]
    absent = frozenset([*cols[len(cols) // 2 :], "_props"])
    records = [{c: v for c, v in row.items() if c in present} for row in ([{**ORDER, "amount": "1"}] * 2)]
    records += [{c: f"{c} {i}" for c in present} for i in range(3)]
    records.append({c: v for c, v in {"id_type": "phone", "user_id": "13800138000"}.items() if c in present})
    table = {
        "_line": pa.array(range(len(records)), pa.int64()),
        "_props": pa.array([None] * len(records), pa.string()),
    }
    table |= {c: pa.array([r.get(c) for r in records], pa.string()) for c in cols}
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    con.register("src", pa.table(table))
    full = normalize_query(kind, "src", Settings())
    split = normalize_query(kind, "src", Settings(), absent=absent)
    assert split.constants is not None
    constant = [d[0] for d in con.execute(split.constants).description]
    assert "_props" in constant and not set(constant) & set(present)
    kept = con.execute(f"SELECT * FROM ({split.sql}) ORDER BY _line")
    assert not set(constant) & {d[0] for d in kept.description}
    joined = con.execute(f"SELECT * FROM ({split.sql}) s, ({split.constants}) c ORDER BY _line").fetchall()
    names = [d[0] for d in con.execute(f"SELECT * FROM ({split.sql}) s, ({split.constants}) c").description]
    expected = con.execute(f"SELECT {', '.join(names)} FROM ({full.sql}) ORDER BY _line").fetchall()
    assert joined == expected
    assert normalize_query(kind, "src", Settings()).constants is None  # nothing absent: nothing apart
