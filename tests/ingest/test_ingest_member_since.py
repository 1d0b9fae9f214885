"""`member_since` on imported events and orders: persons who were members before their first
registration in the data are existing members, never new users (issue #18), read from a real CSV
import through the KPI sheet; a bad member_since is rejected naming the column."""

from __future__ import annotations

import json
import os

import pytest
from ingest_helpers import EVENT_HEADER, read_rejects, rows, write_csv
from typer.testing import CliRunner

from liebian.analytics import kpis
from liebian.analytics import service as analytics
from liebian.cli import app as cli_app
from liebian.engine.backend import export_parquet
from liebian.ingest.service import import_file

ORDER_HEADER = ["order_id", "ts", "user_id", "id_type", "amount", "status", "channel", "member_since"]


def _new_users(start: str = "2026-11-01", end: str = "2026-11-30") -> int:
    out = CliRunner().invoke(cli_app, ["analyze", "kpis", "--start", start, "--end", end, "--format", "json"])
    assert out.exit_code == 0, out.output
    got = json.loads(out.stdout)["new_users"]
    return got["value"] if isinstance(got, dict) else got


@pytest.fixture
def imported(store, tmp_path):
    events = write_csv(
        tmp_path / "events.csv",
        [*EVENT_HEADER, "member_since"],
        [
            [
                "e1",
                "2026-11-05 10:00",
                "u_old",
                "openid",
                "register",
                "app",
                "2024-03-01",
            ],  # member for years
            ["e2", "2026-11-05 10:00", "u_new", "openid", "register", "app", ""],
            [
                "e3",
                "2026-11-05 10:00",
                "u_today",
                "openid",
                "register",
                "app",
                "2026-11-05",
            ],  # joined that day
            ["e4", "2026-11-06 10:00", "u_bad", "openid", "register", "app", "someday"],
        ],
    )
    result = import_file(events, "events")
    orders = write_csv(
        tmp_path / "orders.csv",
        ORDER_HEADER,
        [  # the mini-program has no registration event: a first order registers the buyer
            ["o1", "2026-11-07 10:00", "b_member", "openid", "10", "paid", "miniprogram", "2025-01-01 09:00"],
            ["o2", "2026-11-07 10:00", "b_new", "openid", "10", "paid", "miniprogram", ""],
        ],
    )
    assert import_file(orders, "orders").rows_loaded == 2
    return result


def test_members_since_before_their_first_registration_are_not_new(imported) -> None:
    assert (imported.rows_loaded, imported.rows_rejected) == (3, 1)
    # by hand: u_new, u_today and b_new are new; u_old and b_member were members before the data
    assert _new_users() == 3
    assert _new_users("2026-11-05", "2026-11-05") == 2  # u_new, u_today
    assert _new_users("2026-11-07", "2026-11-07") == 1  # b_new
    members = rows("SELECT count(*), min(member_since) FROM members")[0]
    assert members[0] == 3 and str(members[1]).startswith("2024-02-29 16:00")  # midnight in Shanghai


def test_a_bad_member_since_is_rejected_naming_the_column(imported) -> None:
    (reject,) = read_rejects(imported.rejects_path)
    assert (reject["line"], reject["field"]) == ("5", "member_since")
    assert "someday" in reject["reason"]


def test_an_earlier_member_since_imported_later_wins(imported, tmp_path) -> None:
    later = write_csv(
        tmp_path / "more.csv",
        [*EVENT_HEADER, "member_since"],
        [["e9", "2026-11-20 10:00", "u_new", "openid", "login", "app", "2023-01-01"]],
    )
    assert import_file(later, "events").rows_loaded == 1
    assert _new_users() == 2  # u_new turns out to be a member since 2023
    with analytics.frame(analytics.make_filters("2026-11-01", "2026-11-30")) as fr:
        assert kpis.new_users(fr).count().execute() == 2


@pytest.mark.spark
def test_spark_counts_the_same_new_users(imported) -> None:
    if os.environ.get("LIEBIAN_TEST_SPARK") != "1":
        pytest.skip("Spark tests need LIEBIAN_TEST_SPARK=1 and java on PATH (CI sets both)")
    export_parquet()
    for start, end, want in (("2026-11-01", "2026-11-30", 3), ("2026-11-05", "2026-11-05", 2)):
        filters = analytics.make_filters(start, end)
        got = analytics.run_kpis(filters, "spark", reward_cost_fen=0, other_cost_fen=0)["new_users"]
        assert (got["value"] if isinstance(got, dict) else got) == want


def test_a_preset_export_with_a_member_column_carries_member_since(store, tmp_path) -> None:
    path = tmp_path / "mp.csv"
    path.write_text(
        "订单号,下单时间,用户openid,实付金额（元）,订单状态,入会时间\n"
        "MP1,2026-11-03 10:00:00,oOPEN1,10,已支付,2025-06-01\n"
        "MP2,2026-11-03 11:00:00,oOPEN2,20,已支付,\n",
        encoding="utf-8",
    )
    result = import_file(path, "orders", preset="miniprogram_orders")
    assert (result.rows_loaded, result.rows_rejected) == (2, 0)
    assert rows("SELECT count(*) FROM members") == [(1,)]
    assert _new_users() == 1  # oOPEN2 only: oOPEN1 was a member since June 2025
