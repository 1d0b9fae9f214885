"""Exchange rates imported into the operational store (`liebian fx import FILE`, CSV
currency,date,rate) convert foreign orders like the settings' rates do: a USD order with a stored
rate is counted in CNY; without one it is rejected naming its line. `GET /api/v1/fx/rates` lists
what conversion uses (a settings rate wins over a stored one of the same currency and day)."""

from __future__ import annotations

import json
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from ingest_helpers import read_rejects, rows, write_csv
from typer.testing import CliRunner

from liebian import fx
from liebian.cli import app as cli_app
from liebian.config import reset_settings_cache
from liebian.db.session import session_scope
from liebian.web.app import create_app

HEADER = ["order_id", "ts", "user_id", "id_type", "amount", "currency", "status", "channel"]


def _import_rates(path: Path) -> None:
    out = CliRunner().invoke(cli_app, ["fx", "import", str(path)])
    assert out.exit_code == 0, out.output


def _revenue() -> int:
    out = CliRunner().invoke(
        cli_app, ["analyze", "kpis", "--start", "2026-11-01", "--end", "2026-11-30", "--format", "json"]
    )
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)["revenue_fen"]
    return got["value"] if isinstance(got, dict) else got


def test_a_usd_order_with_a_stored_rate_counts_in_cny_and_one_without_is_rejected(store, tmp_path):
    rates = write_csv(tmp_path / "rates.csv", ["currency", "date", "rate"],
                      [["USD", "2026-11-10", "7.2345"], ["usd", "2026-11-12", "9.9"]])  # fmt: skip
    _import_rates(rates)
    orders = write_csv(
        tmp_path / "orders.csv",
        HEADER,
        [
            ["U1", "2026-11-11 10:00", "o_a", "openid", "100.01", "USD", "paid", "app"],
            ["U0", "2026-11-02 10:00", "o_b", "openid", "10", "USD", "paid", "app"],  # before every rate
        ],
    )
    out = CliRunner().invoke(cli_app, ["import", "orders", str(orders), "--format", "json"])
    assert out.exit_code in (0, 1), out.output
    # 10001 US cents × 7.2345 (the 10th's rate; the 12th's is later) = 72352.2345 → 72352 fen
    assert rows("SELECT order_id, amount_fen, currency, orig_amount, fx_rate FROM orders") == [
        ("U1", 72352, "CNY", 10001, Decimal("7.234500000000"))
    ]
    assert _revenue() == 72352
    result = json.loads(out.stdout)
    rejects = read_rejects(result["rejects_path"])
    assert [(r["line"], r["field"], r["reason"]) for r in rejects] == [
        ("3", "currency", "no USD→CNY rate on or before 2026-11-02 (at most 7 days old)")
    ]


def test_the_settings_rate_wins_over_a_stored_one_of_the_same_day(
    store, tmp_path, monkeypatch, admin_headers
):
    _import_rates(write_csv(tmp_path / "rates.csv", ["currency", "date", "rate"],
                            [["USD", "2026-11-10", "7.0"], ["HKD", "2026-11-10", "0.92"]]))  # fmt: skip
    monkeypatch.setenv("LIEBIAN_FX_RATES", json.dumps({"USD": {"2026-11-10": "7.5"}}))
    reset_settings_cache()
    assert fx.to_cny(100, "USD", datetime(2026, 11, 10, 4)).amount_fen == 750
    assert fx.to_cny(100, "HKD", datetime(2026, 11, 10, 4)).amount_fen == 92
    with TestClient(create_app(run_migrations=False), headers=admin_headers) as client:
        listed = client.get("/api/v1/fx/rates").json()
        only_usd = client.get("/api/v1/fx/rates", params={"currency": "usd"}).json()
        bad = client.get("/api/v1/fx/rates", params={"currency": "US$"})
    assert listed == [
        {"currency": "HKD", "date": "2026-11-10", "cny_per_unit": "0.92", "source": "imported"},
        {"currency": "USD", "date": "2026-11-10", "cny_per_unit": "7.5", "source": "settings"},
    ]
    assert only_usd == listed[1:]
    assert bad.status_code == 422 and "currency" in bad.text


def test_a_bad_rates_file_is_refused_naming_its_line_and_stores_nothing(store, tmp_path):
    bad = write_csv(tmp_path / "rates.csv", ["currency", "date", "rate"],
                    [["USD", "2026-11-10", "7.2"], ["HKD", "2026-11-31", "0.9"]])  # fmt: skip
    out = CliRunner().invoke(cli_app, ["fx", "import", str(bad)])
    assert out.exit_code == 2 and "rates.csv:3" in out.output and "2026-11-31" in out.output
    wrong_header = write_csv(tmp_path / "h.csv", ["cur", "day", "rate"], [["USD", "2026-11-10", "7"]])
    out = CliRunner().invoke(cli_app, ["fx", "import", str(wrong_header)])
    assert out.exit_code == 2 and "currency,date,rate" in out.output
    with session_scope() as s:
        assert fx.stored_rates(s) == []


def test_reimporting_a_day_replaces_its_rate(store, tmp_path):
    _import_rates(write_csv(tmp_path / "a.csv", ["currency", "date", "rate"], [["USD", "2026-11-10", "7.1"]]))
    _import_rates(write_csv(tmp_path / "b.csv", ["currency", "date", "rate"], [["USD", "2026-11-10", "7.2"]]))
    with session_scope() as s:
        assert [(r.currency, str(r.day), r.cny_per_unit) for r in fx.stored_rates(s)] == [
            ("USD", "2026-11-10", Decimal("7.2"))
        ]
    listed = CliRunner().invoke(cli_app, ["fx", "list", "--format", "json"])
    assert json.loads(listed.stdout) == [{"date": "2026-11-10", "currency": "USD", "cny_per_unit": "7.2"}]


@pytest.fixture(autouse=True)
def _fresh_settings(data_dir):
    reset_settings_cache()
    yield
    reset_settings_cache()
