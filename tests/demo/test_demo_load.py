"""End to end: a small demo generated, loaded through the real importer, summarised by the CLI.

What is loaded must be what was generated minus the injected bad rows and duplicate ids, file by
file and table by table. The load is slow-ish (OneID registers every identifier), so the brand is
the smallest the generator allows and is built once for the module.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liebian.config import reset_settings_cache
from liebian.db.session import dispose_engines

pytest.importorskip(
    "liebian.ingest.service", reason="the importer (liebian.ingest.service) is not in this tree yet"
)

from liebian.analytics.overview import overview  # noqa: E402
from liebian.demo.generator import DemoSpec  # noqa: E402
from liebian.demo.service import DemoError, build  # noqa: E402
from liebian.engine import warehouse  # noqa: E402
from liebian.engine.backend import analytics_backend  # noqa: E402

SPEC = DemoSpec(seed=11, persons=600)
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory):
    """The demo built once into its own data directory (module scope, so set up by hand)."""
    data = tmp_path_factory.mktemp("demo_data") / "data"
    saved = {
        k: os.environ.get(k)
        for k in ("LIEBIAN_DATA_DIR", "LIEBIAN_DATABASE_URL", "LIEBIAN_WAREHOUSE_PATH", "LIEBIAN_ENGINE")
    }
    for key in saved:
        os.environ.pop(key, None)
    os.environ["LIEBIAN_DATA_DIR"] = str(data)
    reset_settings_cache()
    dispose_engines()
    try:
        yield data, build(SPEC)
    finally:
        dispose_engines()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings_cache()


def test_every_file_loads_minus_the_injected_bad_rows_and_duplicates(loaded) -> None:
    _data, result = loaded
    truth = result.ground_truth
    assert not result.reused
    for imp in result.imports:
        expected = truth["files"][imp["file"]]
        assert imp["rows_read"] == expected["rows"], imp["file"]
        assert imp["rows_rejected"] == expected["bad_rows"], imp["file"]
        if imp["kind"] == "identities":
            # a link between identifiers OneID already joined through other links counts as a duplicate
            assert imp["rows_loaded"] + imp["rows_duplicate"] == expected["valid_rows"]
        else:
            assert imp["rows_duplicate"] == expected["duplicate_ids"], imp["file"]
            assert imp["rows_loaded"] == expected["valid_rows"], imp["file"]
    bad = truth["quality"]["bad_rows"]
    reasons: dict[str, int] = {}
    for imp in result.imports:
        for reason, n in imp["reasons"].items():
            reasons[reason] = reasons.get(reason, 0) + n
    assert reasons.get("unreadable timestamp") == bad["bad_timestamp"]
    assert reasons.get("missing user_id") == bad["missing_id"]
    assert reasons.get("unknown channel") == bad["unknown_channel"]
    assert reasons.get("negative amount") == bad["negative_amount"]
    with warehouse.connect(read_only=True) as con:
        counts = warehouse.table_counts(con)
        refunded = con.execute("SELECT count(*) FROM orders WHERE status = 'refunded'").fetchone()[0]
        gbk_store = con.execute("SELECT count(*) FROM events WHERE props LIKE '%茶语·%'").fetchone()[0]
    sizes = truth["sizes"]
    assert counts["events"] == sizes["events"]
    assert counts["orders"] == sizes["orders"]["orders"]
    assert refunded == sizes["orders"]["refunded"]
    assert counts["messages"] == sizes["messages"]
    assert gbk_store == truth["files"]["events_store_gbk.csv"]["valid_rows"]  # Chinese survived GBK


def test_overview_after_the_load_is_close_to_the_truth(loaded) -> None:
    _data, result = loaded
    truth = result.ground_truth["kpis"]
    with analytics_backend("duckdb") as backend:
        got = overview(backend)
    assert got["events"] == result.ground_truth["sizes"]["events"]
    assert got["placed_orders"] == truth["orders"]
    assert got["gmv_fen"] == pytest.approx(truth["gmv_yuan"] * 100, abs=1)
    assert got["refund_rate"] == pytest.approx(truth["refund_rate"], abs=1e-4)
    # OneID cannot join identifiers no evidence links, so it sees more persons than there are
    assert truth["persons"] < got["persons"] < 1.5 * truth["persons"]
    assert got["new_referred_users"] == pytest.approx(truth["referred_persons"], rel=0.1)
    assert got["retention_d1"] == pytest.approx(truth["d1_retention"], abs=0.03)
    assert got["ltv_multiplier"] > 1  # referred users are worth more, through OneID as in truth


def test_the_summary_and_the_kpi_sheet_are_one_set_of_numbers(loaded) -> None:
    """The demo summary and `liebian analyze kpis` (the API, the console) on the same warehouse agree,
    and new users are the persons who registered: as many as the generator made (existing members,
    who have no sign-up, are never new); D1 retention of new users within 3 points of the truth."""
    from liebian.cli import app

    data, result = loaded
    truth = result.ground_truth["kpis"]
    with analytics_backend("duckdb") as backend:
        summary = overview(backend)
    res = CliRunner().invoke(app, ["--data-dir", str(data), "analyze", "kpis", "--format", "json"])
    assert res.exit_code == 0, res.output
    sheet = json.loads(res.stdout)
    shared = [key for key in summary if key in sheet]
    assert len(shared) >= 9  # the summary's growth metrics are the sheet's, under the same keys
    for key in shared:
        assert summary[key] == pytest.approx(sheet[key]), key
    # an independent count in SQL: persons with a sign-up event (every demo channel has sign-ups)
    with warehouse.connect(read_only=True) as con:
        signed_up = con.execute(
            "SELECT count(DISTINCT person_id) FROM events WHERE event = 'signup'"
        ).fetchone()[0]
    assert sheet["new_users"] == signed_up
    assert sheet["new_users"] == pytest.approx(truth["new_persons"], rel=0.05)
    assert sheet["retention_d1"] == pytest.approx(truth["d1_retention"], abs=0.03)
    for key in ("participation_rate", "referred_share_of_new", "retention_d1", "invite_conversion"):
        assert 0 <= sheet[key] <= 1, key


def test_rerun_reuses_the_load_and_a_different_spec_needs_force(loaded) -> None:
    data, _result = loaded
    with warehouse.connect(read_only=True) as con:
        batches = con.execute("SELECT count(*) FROM import_batches").fetchone()[0]
    again = build(SPEC)
    assert again.reused
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM import_batches").fetchone()[0] == batches
    with pytest.raises(DemoError, match="--force"):
        build(DemoSpec(seed=12, persons=600))
    assert (
        json.loads((data / "demo" / "loaded.json").read_text(encoding="utf-8"))["spec"]["seed"] == SPEC.seed
    )


def test_cli_prints_the_kpi_summary_of_the_loaded_demo(loaded) -> None:
    from liebian.cli import app

    data, _result = loaded
    runner = CliRunner()
    res = runner.invoke(
        app, ["--data-dir", str(data), "demo", "--seed", "11", "--persons", "600", "--format", "json"]
    )
    assert res.exit_code == 0, res.output
    values = json.loads(res.stdout.strip().splitlines()[-1])
    with analytics_backend("duckdb") as backend:
        assert values == overview(backend)
    res = runner.invoke(app, ["--data-dir", str(data), "demo", "--persons", "10"])
    assert res.exit_code != 0 and "persons must be at least 500" in res.output


def test_serve_after_the_demo_runs_the_web_app_with_the_settings(loaded, monkeypatch) -> None:
    """`demo --serve` serves through liebian.serving (the demo does not import the web layer)."""
    import uvicorn

    from liebian import serving
    from liebian.cli import app

    data, _result = loaded
    runs: list[tuple[str, dict]] = []
    monkeypatch.setattr(uvicorn, "run", lambda target, **options: runs.append((target, options)))
    res = CliRunner().invoke(
        app, ["--data-dir", str(data), "demo", "--seed", "11", "--persons", "600", "--serve"]
    )
    assert res.exit_code == 0, res.output
    assert "demo ready; starting the server" in res.output
    assert [
        (target, options["host"], options["port"], options["workers"], options["timeout_worker_healthcheck"])
        for target, options in runs
    ] == [("liebian.web.asgi:app", "127.0.0.1", 8000, 1, serving.HEALTHCHECK_TIMEOUT_S)]


def test_demo_refuses_a_data_dir_holding_other_data(data_dir: Path) -> None:
    with warehouse.connect() as con:
        con.execute("INSERT INTO identity_map VALUES ('openid', 'someone', 1)")
    with pytest.raises(DemoError, match="already holds data"):
        build(SPEC)
    assert not (data_dir / "demo").exists()


def test_rejects_options_it_cannot_honour(tmp_path: Path) -> None:
    from liebian.cli import app

    res = CliRunner().invoke(app, ["--data-dir", str(tmp_path / "d"), "demo", "--days", "3"])
    assert res.exit_code != 0 and "days must be at least 28" in res.output
    assert not (tmp_path / "d" / "demo").exists()


def test_force_replaces_the_demo_with_a_fresh_load(loaded) -> None:
    """Last in the module: it replaces the shared demo with another seed through the CLI."""
    from liebian.cli import app

    data, _result = loaded
    args = [
        "--data-dir",
        str(data),
        "demo",
        "--seed",
        "12",
        "--persons",
        "600",
        "--force",
        "--format",
        "json",
    ]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    truth = json.loads((data / "demo" / "ground_truth.json").read_text(encoding="utf-8"))
    assert truth["spec"]["seed"] == 12
    with warehouse.connect(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM import_batches").fetchone()[0] == 6  # the old load is gone
        assert con.execute("SELECT count(*) FROM events").fetchone()[0] == truth["sizes"]["events"]
    assert json.loads(res.stdout.strip().splitlines()[-1])["events"] == truth["sizes"]["events"]
