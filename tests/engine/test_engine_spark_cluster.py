"""The analytics on a Spark standalone cluster (conftest.spark_cluster: a master and two workers
on 127.0.0.1) read the event store and give DuckDB's values, value for value."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

from liebian.analytics import service
from liebian.config import reset_settings_cache
from liebian.engine import eventstore, warehouse
from liebian.engine.spark import spark_session, stop_spark_session

# the hand-made scenario and random rows of the analytics tests (tests dirs are not packages)
_spec = importlib.util.spec_from_file_location(
    "analytics_fixtures", Path(__file__).parents[1] / "analytics" / "conftest.py"
)
assert _spec and _spec.loader
fixtures = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(fixtures)

PERIOD = ("2026-03-01", "2026-03-07")


@pytest.fixture
def on_cluster(spark_cluster: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    stop_spark_session()  # a local session of an earlier test would be reused otherwise
    monkeypatch.setenv("LIEBIAN_SPARK_MASTER", spark_cluster)
    reset_settings_cache()
    yield spark_cluster
    stop_spark_session()  # later tests start their local session again


def analytics_runs(engine: str) -> dict:
    """The analyses of tests/analytics' DuckDB-vs-Spark test, on one engine."""
    f = service.make_filters(*PERIOD, campaigns=["c1", "c2"])
    return {
        "kpis": service.run_kpis(f, engine, reward_cost_fen=5000),
        "funnel": service.run_funnel(f, breakdown="channel", engine=engine),
        "dropped": service.run_dropped(f, 3, engine=engine),
        "retention": service.run_retention(f, unit="day", periods=8, engine=engine),
        "revenue": service.run_revenue(f, unit="week", periods=2, cohort_by="referral", engine=engine),
        "tree": service.run_referral_tree(f, engine=engine),
    }


@pytest.mark.spark
def test_the_standalone_cluster_gives_duckdbs_values_from_the_event_store(
    sqlite_store, data_dir: Path, on_cluster: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LIEBIAN_EVENT_STORE", f"file://{data_dir.parent / 'store'}")
    reset_settings_cache()
    rows = fixtures.Rows()
    fixtures.fill_scenario(rows)
    fixtures.random_rows(rows, seed=11)
    rows.write()  # straight into the warehouse: publish it to the store as a rebuild would
    with warehouse.connect() as con:
        assert eventstore.commit(con) is not None
    duck = analytics_runs("duckdb")
    spark = analytics_runs("spark")
    assert spark_session().sparkContext.master == on_cluster
    assert duck["kpis"]["participants"] > 0 and duck["tree"]
    assert spark == duck
