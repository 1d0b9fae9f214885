"""The console overview: Chinese by default, English on request, figures formatted per locale."""

from __future__ import annotations

from datetime import datetime

from fastapi.testclient import TestClient

from liebian.engine import warehouse
from liebian.web.app import create_app


def _load_two_buyers() -> None:
    with warehouse.connect() as con:
        for i, (person, ts) in enumerate([(1, "2026-11-01 02:00:00"), (2, "2026-11-01 03:00:00")]):
            con.execute(
                "INSERT INTO events (event_id, ts, person_id, id_type, user_id, event, channel, batch_id,"
                " ingested_at) VALUES (?, ?, ?, 'unionid', ?, 'exposure', 'wecom', 'b', ?)",
                [f"e{i}", ts, person, f"u{person}", datetime(2026, 11, 2)],
            )
            con.execute(
                "INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status,"
                " channel, status_ts, batch_id, ingested_at) VALUES (?, ?, ?, 'unionid', ?, ?, 'CNY', 'paid',"
                " 'wecom', ?, 'b', ?)",
                [f"o{i}", ts, person, f"u{person}", 1_250_000, ts, datetime(2026, 11, 2)],
            )


def test_overview_in_chinese_then_english(sqlite_store, admin_headers) -> None:
    _load_two_buyers()
    with TestClient(create_app(), headers=admin_headers) as client:
        zh = client.get("/")
        assert zh.status_code == 200
        assert 'lang="zh-CN"' in zh.text and "北极星指标总览" in zh.text and "成交额 GMV" in zh.text
        # two orders of ¥12,500 = ¥25,000 → 2.50万 in Chinese, ¥25,000.00 in English
        assert "¥2.50万" in zh.text
        en = client.get("/?lang=en")
        assert 'lang="en"' in en.text and "North-star overview" in en.text and "¥25,000.00" in en.text
        # the choice sticks through the cookie
        assert 'lang="en"' in client.get("/").text


def test_overview_without_data_says_how_to_get_some(sqlite_store, admin_headers) -> None:
    with TestClient(create_app(), headers=admin_headers) as client:
        page = client.get("/")
    assert page.status_code == 200 and "liebian demo" in page.text
