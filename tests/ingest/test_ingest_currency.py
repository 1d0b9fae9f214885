"""Orders in USD/HKD are converted to CNY with the user's dated rates before anything sums them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ingest_helpers import read_rejects, rows, write_csv
from typer.testing import CliRunner

from liebian import fx
from liebian.auth import service as auth
from liebian.cli import app as cli_app
from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.engine import warehouse
from liebian.ingest.service import import_file
from liebian.web.app import create_app

HEADER = ["order_id", "ts", "user_id", "id_type", "amount", "currency", "status", "channel"]


@pytest.fixture
def rates(data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "rates.csv"
    write_csv(
        path,
        ["date", "currency", "cny_per_unit"],
        [
            ["2026-11-09", "USD", "7.1000"],
            ["2026-11-10", "USD", "7.2345"],
            ["2026-11-12", "USD", "9.9999"],  # after the orders of the 11th: never used for them
            ["2026-11-10", "HKD", "0.9215"],
        ],
    )
    monkeypatch.setenv("LIEBIAN_FX_RATES_FILE", str(path))
    reset_settings_cache()
    return path


def _kpis_revenue() -> int:
    out = CliRunner().invoke(
        cli_app, ["analyze", "kpis", "--start", "2026-11-01", "--end", "2026-11-30", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    return json.loads(out.stdout)["revenue_fen"]


def test_a_usd_order_is_counted_in_cny_with_the_latest_rate_not_after_its_day(store, rates, tmp_path):
    path = write_csv(
        tmp_path / "orders.csv",
        HEADER,
        [["U1", "2026-11-11 10:00", "o_a", "openid", "100.01", "USD", "paid", "app"]],
    )
    result = import_file(path, "orders")
    assert (result.rows_loaded, result.rows_rejected) == (1, 0)
    # 10001 US cents × 7.2345 (the rate of the 10th; the 12th's is later than the order) = 72352.2345
    assert rows("SELECT amount_fen, currency, orig_amount, orig_currency, fx_rate FROM orders") == [
        (72352, "CNY", 10001, "USD", Decimal("7.234500000000"))
    ]
    assert _kpis_revenue() == 72352


def test_without_a_covering_rate_the_row_is_rejected_naming_it(store, rates, tmp_path):
    path = write_csv(
        tmp_path / "orders.csv",
        HEADER,
        [
            ["C1", "2026-11-11 10:00", "o_a", "openid", "50", "CNY", "paid", "app"],
            ["E1", "2026-11-11 10:00", "o_b", "openid", "10", "EUR", "paid", "app"],
            ["H1", "2026-11-25 10:00", "o_c", "openid", "10", "HKD", "paid", "app"],  # rate 15 days old
            ["U0", "2026-11-01 10:00", "o_d", "openid", "10", "USD", "paid", "app"],  # only later rates
            ["U9", "someday", "o_e", "openid", "10", "USD", "paid", "app"],  # no day: its ts is the fault
        ],
    )
    result = import_file(path, "orders")
    assert (result.rows_loaded, result.rows_rejected) == (1, 4)
    rejects = {(r["line"], r["field"]): r["reason"] for r in read_rejects(result.rejects_path)}
    assert rejects == {
        ("3", "currency"): "no EUR→CNY rate on or before 2026-11-11 (at most 7 days old)",
        ("4", "currency"): "no HKD→CNY rate on or before 2026-11-25 (at most 7 days old)",
        ("5", "currency"): "no USD→CNY rate on or before 2026-11-01 (at most 7 days old)",
        ("6", "ts"): "unreadable timestamp someday",
    }
    assert rows("SELECT order_id FROM orders") == [("C1",)]
    assert _kpis_revenue() == 5000


def test_a_mixed_file_sums_to_the_hand_computed_cny_total(store, rates, tmp_path):
    path = write_csv(
        tmp_path / "orders.csv",
        HEADER,
        [
            ["C1", "2026-11-10 09:00", "o_a", "openid", "¥1,299.00", "", "paid", "app"],
            ["U1", "2026-11-10 09:00", "o_b", "openid", "19.99", "usd", "paid", "app"],
            ["H1", "2026-11-11 09:00", "o_c", "openid", "88.8", "HKD", "paid", "app"],
            ["H2", "2026-11-11 09:00", "o_c", "openid", "0.05", "HKD", "paid", "app"],
        ],
    )
    result = import_file(path, "orders")
    assert (result.rows_loaded, result.rows_rejected) == (4, 0)
    # 129900 + 1999×7.2345 (14461.7655 → 14462) + 8880×0.9215 (8182.92 → 8183) + 5×0.9215 (4.6075 → 5)
    assert rows("SELECT order_id, amount_fen FROM orders ORDER BY order_id") == [
        ("C1", 129900),
        ("H1", 8183),
        ("H2", 5),
        ("U1", 14462),
    ]
    assert _kpis_revenue() == 129900 + 14462 + 8183 + 5


@pytest.fixture
def collector(rates, store, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("LIEBIAN_SCHEDULER_ENABLED", "false")  # no background jobs racing the test
    reset_settings_cache()
    with session_scope() as session:
        key, _record = auth.create_api_key(
            session, name="collector", actor="test", kind="public", scopes=["ingest:write"]
        )
    with TestClient(create_app()) as c:
        c.headers["X-API-Key"] = key
        yield c


def test_the_collector_converts_and_rejects_the_item_without_a_rate_naming_currency(collector) -> None:
    base = {"ts": "2026-11-11T10:00:00+08:00", "id_type": "openid", "channel": "app", "status": "paid"}
    items = [
        {**base, "order_id": "U1", "user_id": "o_a", "amount": "100.01", "currency": "USD"},
        {**base, "order_id": "E1", "user_id": "o_b", "amount": "10", "currency": "EUR"},
    ]
    r = collector.post("/api/v1/orders/batch", json={"items": items})
    assert r.status_code == 200, r.text
    body = r.json()
    assert [(i["index"], i["status"]) for i in body["items"]] == [(0, "accepted"), (1, "rejected")]
    assert body["items"][1]["errors"] == [
        {"field": "currency", "reason": "no EUR→CNY rate on or before 2026-11-11 (at most 7 days old)"}
    ]
    assert rows("SELECT order_id, amount_fen, orig_amount, orig_currency FROM orders") == [
        ("U1", 72352, 10001, "USD")
    ]


def test_a_bad_rates_file_stops_a_foreign_order_import_naming_its_line(store, rates, tmp_path):
    write_csv(
        rates,
        ["date", "currency", "cny_per_unit"],
        [["2026-11-10", "USD", "7.2"], ["2026-11-10", "HKD", "-1"]],
    )
    path = write_csv(
        tmp_path / "orders.csv",
        HEADER,
        [["U1", "2026-11-11 10:00", "o_a", "openid", "1", "USD", "paid", "app"]],
    )
    with pytest.raises(fx.FxRatesInvalid, match=r"rates.csv:3: cny_per_unit '-1' must be a positive number"):
        import_file(path, "orders")
    assert rows("SELECT count(*) FROM orders") == [(0,)]


def test_fx_cli_lists_the_rates_and_converts_with_the_one_of_the_day(store, rates):
    runner = CliRunner()
    out = runner.invoke(cli_app, ["fx", "list", "--currency", "usd", "--format", "json"])
    assert out.exit_code == 0, out.output
    assert [(r["date"], r["cny_per_unit"]) for r in json.loads(out.stdout)] == [
        ("2026-11-09", "7.1000"),
        ("2026-11-10", "7.2345"),
        ("2026-11-12", "9.9999"),
    ]
    out = runner.invoke(cli_app, ["fx", "convert", "1999", "USD", "--date", "2026-11-11", "--format", "json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)
    assert (got["amount_fen"], got["fx_rate"], got["rate_date"]) == (14462, "7.2345", "2026-11-10")
    out = runner.invoke(cli_app, ["fx", "convert", "1999", "EUR", "--date", "2026-11-11"])
    assert out.exit_code == 2 and "no EUR→CNY rate on or before 2026-11-11" in out.output


def test_an_order_left_unconverted_by_an_older_release_is_not_summed_into_cny(store, rates, tmp_path):
    path = write_csv(
        tmp_path / "orders.csv",
        HEADER,
        [["C1", "2026-11-11 10:00", "o_a", "openid", "50", "", "paid", "app"]],
    )
    import_file(path, "orders")
    with warehouse.connect() as con:  # as the previous release stored a USD order: not converted
        con.execute(
            "INSERT INTO orders SELECT * REPLACE ('OLD1' AS order_id, 999999 AS amount_fen, 'USD' AS currency)"
            " FROM orders WHERE order_id = 'C1'"
        )
    assert _kpis_revenue() == 5000
