"""The console overview: Chinese by default, English on request, figures formatted per locale."""

from __future__ import annotations

import time
from datetime import datetime

from fastapi.testclient import TestClient

from liebian.engine import warehouse
from liebian.web.app import create_app
from shared_helpers import export_lines


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
        assert 'lang="zh-CN"' in zh.text and "北极星指标总览" in zh.text and "成交额" in zh.text
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


def test_exports_refuse_an_unknown_table_or_format(sqlite_store, admin_headers) -> None:
    _load_two_buyers()
    with TestClient(create_app(), headers=admin_headers) as client:
        assert client.get("/?export=nope&format=csv").status_code == 404
        bad = client.get("/?export=daily&format=pdf")
        assert bad.status_code == 422 and "csv or xlsx" in bad.text
        lines = export_lines(client.get("/?export=daily&format=csv").content)
    # one day of data: header + 2026-11-01 (02:00/03:00 UTC are 10:00/11:00 in Shanghai), ¥25,000 in fen
    assert len(lines) == 2 and lines[1].startswith("2026-11-01,") and lines[1].endswith(",2500000")


def test_a_bad_filter_is_named_on_the_page(sqlite_store, admin_headers) -> None:
    _load_two_buyers()
    with TestClient(create_app(), headers=admin_headers) as client:
        page = client.get("/?start=2026-11-05&end=2026-11-01")
    assert page.status_code == 422 and "is after end" in page.text


def test_the_overview_is_recomputed_when_the_warehouse_changes(sqlite_store, admin_headers) -> None:
    _load_two_buyers()
    with TestClient(create_app(), headers=admin_headers) as client:
        assert "¥2.50万" in client.get("/").text
        assert "¥2.50万" in client.get("/").text  # served again (cached while nothing changed)
        with warehouse.connect() as con:
            con.execute(
                "INSERT INTO orders (order_id, ts, person_id, id_type, user_id, amount_fen, currency, status,"
                " channel, status_ts, batch_id, ingested_at) VALUES ('o9', '2026-11-01 04:00:00', 1,"
                " 'unionid', 'u1', 2500000, 'CNY', 'paid', 'wecom', '2026-11-01 04:00:00', 'b2', ?)",
                [datetime(2026, 11, 2)],
            )
        assert "¥5.00万" in client.get("/").text


def test_a_stale_result_is_served_at_once_and_recomputed_behind(sqlite_store, monkeypatch) -> None:
    from liebian.web import console

    computed: list[int] = []

    def compute() -> int:
        computed.append(1)
        return len(computed)

    key = ("test", "stale-while-revalidate")
    assert console.cached(key, compute) == 1
    assert console.cached(key, compute) == 1 and len(computed) == 1  # fresh: not computed again
    monkeypatch.setattr(console, "CACHE_TTL_SECONDS", 0)  # every entry is now past its TTL
    assert console.cached(key, compute) == 1  # the old value, at once...
    deadline = time.monotonic() + 10
    while len(computed) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    monkeypatch.setattr(console, "CACHE_TTL_SECONDS", 60)
    assert console.cached(key, compute) == 2  # ...and the recomputed one next time
    _load_two_buyers()  # a change of the warehouse is never served stale
    assert console.cached(key, compute) == 3 and len(computed) == 3


def test_the_warm_up_computes_the_default_views_before_anyone_asks(sqlite_store, admin_headers) -> None:
    from liebian.web import console
    from liebian.web.pages.warmup import WARMERS

    _load_two_buyers()
    runs = console.WARM_STATUS["runs"]
    console.warm_once(WARMERS)
    assert console.WARM_STATUS["runs"] == runs + 1

    def not_warmed() -> None:
        raise AssertionError("the warm-up did not compute this view")

    everything = console.ConsoleFilters().to_analytics()
    for name, args in [("run_kpis", ()), ("run_channels", ()), ("run_funnel", ()), ("run_dropped", (2,)),
                       ("run_retention", ("week", "first_event"))]:  # fmt: skip
        console.cached(("analytics", name, everything, args, ()), not_warmed)
    # and the pages answer with the warmed numbers
    with TestClient(create_app(), headers=admin_headers) as client:
        assert "¥2.50万" in client.get("/").text
        assert client.get("/api/v1/health").json()["console_warmup"]["runs"] >= runs + 1
