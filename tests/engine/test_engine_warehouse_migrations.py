"""The warehouse schema is versioned: new files record the latest version, files of the previous
release upgrade in place with their rows, re-opening changes nothing, newer files are refused."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from previous_release_warehouse import (
    PREVIOUS_RELEASE_DDL,
    PREVIOUS_RELEASE_IDENTITY_SYNC_DDL,
    PREVIOUS_RELEASE_ROWS,
    build_previous_release_warehouse,
)
from typer.testing import CliRunner

from liebian.cli import app
from liebian.engine import warehouse
from liebian.engine.warehouse_migrations import (
    LATEST_VERSION,
    MIGRATIONS,
    Migration,
    WarehouseTooNew,
    current_version,
    migrate,
)


def _definitions(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Each table's CREATE statement as DuckDB normalises it (columns, types, NOT NULL), bar ours."""
    rows = con.execute(
        "SELECT table_name, sql FROM duckdb_tables() WHERE schema_name = 'main' AND table_name <> 'schema_version'"
    ).fetchall()
    return dict(rows)


def _contents(con: duckdb.DuckDBPyConnection) -> dict[str, list[tuple]]:
    return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr) for t in _definitions(con)}


def _version_rows(path: Path) -> list[tuple]:
    con = duckdb.connect(str(path))
    try:
        return con.execute("SELECT version, applied_at FROM schema_version ORDER BY version").fetchall()
    finally:
        con.close()


def test_a_new_warehouse_records_the_latest_version(tmp_path: Path) -> None:
    path = tmp_path / "new.duckdb"
    with warehouse.connect(path=path) as con:
        assert current_version(con) == LATEST_VERSION
    assert [v for v, _ in _version_rows(path)] == list(range(1, LATEST_VERSION + 1))
    assert warehouse.schema_versions(path) == (LATEST_VERSION, LATEST_VERSION)


def test_migration_1_is_the_previous_release_schema_exactly() -> None:
    previous = duckdb.connect()
    for ddl in PREVIOUS_RELEASE_DDL:
        previous.execute(ddl)
    versioned = duckdb.connect()
    assert migrate(versioned, MIGRATIONS[:1]) == [1]
    assert _definitions(versioned) == _definitions(previous)
    assert len(_definitions(previous)) == 8


def test_a_new_warehouse_has_the_tables_of_an_upgraded_one(tmp_path: Path) -> None:
    old = tmp_path / "old.duckdb"
    build_previous_release_warehouse(old)
    with warehouse.connect(path=old) as con:
        upgraded = _definitions(con)
    with warehouse.connect(path=tmp_path / "new.duckdb") as con:
        assert _definitions(con) == upgraded


@pytest.mark.parametrize("synced", [True, False], ids=["after-identity-sync", "never-synced"])
def test_a_previous_release_warehouse_upgrades_in_place_keeping_its_rows(
    tmp_path: Path, synced: bool
) -> None:
    path = tmp_path / "previous.duckdb"
    build_previous_release_warehouse(path, synced=synced)
    con = duckdb.connect(str(path))
    before = _contents(con)
    assert current_version(con) == 0  # no version table: made by the previous release
    con.close()
    assert sum(len(rows) for rows in before.values()) >= len(PREVIOUS_RELEASE_ROWS)

    with warehouse.connect(path=path) as con:
        assert current_version(con) == LATEST_VERSION
        after = _contents(con)
        watermark = con.execute("SELECT coalesce(max(last_identifier_id), 0) FROM identity_sync").fetchall()
    # the previous release's columns keep their values; columns added since follow them
    width = {t: len(rows[0]) for t, rows in before.items() if rows}
    kept = {t: sorted((r[: width.get(t, len(r))] for r in after[t]), key=repr) for t in before}
    assert kept == before
    # migration 3: an order loaded before conversion existed is its own original (orig_amount, …)
    assert [r[width["orders"] :] for r in after["orders"]] == [(9900, "CNY", None)]
    assert watermark == [(42 if synced else 0,)]
    assert [v for v, _ in _version_rows(path)] == list(range(1, LATEST_VERSION + 1))
    with warehouse.connect(path=path) as con:
        assert warehouse.table_counts(con)["events"] == len(PREVIOUS_RELEASE_ROWS["events"])


def test_the_identity_sync_table_is_the_one_the_previous_release_made() -> None:
    previous = duckdb.connect()
    for ddl in [*PREVIOUS_RELEASE_DDL, PREVIOUS_RELEASE_IDENTITY_SYNC_DDL]:
        previous.execute(ddl)
    versioned = duckdb.connect()
    migrate(versioned, MIGRATIONS[:2])  # migration 2 made the table; later ones change others
    assert _definitions(versioned) == _definitions(previous)


def test_reopening_a_current_warehouse_is_a_no_op(tmp_path: Path) -> None:
    path = tmp_path / "wh.duckdb"
    build_previous_release_warehouse(path)
    with warehouse.connect(path=path):
        pass
    stamped = _version_rows(path)
    state = warehouse.file_state(path)
    for _ in range(2):
        with warehouse.connect(path=path) as con:
            assert migrate(con) == []
    assert _version_rows(path) == stamped
    assert warehouse.file_state(path) == state  # nothing written: caches keyed on it stay valid


def test_a_warehouse_newer_than_the_code_is_refused_naming_both_versions(tmp_path: Path) -> None:
    path = tmp_path / "future.duckdb"
    with warehouse.connect(path=path) as con:
        con.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [LATEST_VERSION + 3])
    newer = LATEST_VERSION + 3
    with pytest.raises(WarehouseTooNew) as refused, warehouse.connect(path=path):
        pytest.fail("a newer warehouse was opened")
    message = str(refused.value)
    assert f"version {newer}" in message and f"version {LATEST_VERSION}" in message
    assert [v for v, _ in _version_rows(path)][-1] == newer
    assert warehouse.schema_versions(path) == (newer, LATEST_VERSION)


def _recording(version: int, log: list[int]) -> Migration:
    def apply(con: duckdb.DuckDBPyConnection) -> None:
        log.append(version)
        if version == LATEST_VERSION + 1:
            con.execute("ALTER TABLE events ADD COLUMN region VARCHAR")
        else:  # needs the step before it
            con.execute("CREATE TABLE regions AS SELECT DISTINCT region FROM events")

    return Migration(version, f"test step {version}", apply)


def test_added_migrations_run_once_and_in_order(tmp_path: Path) -> None:
    path = tmp_path / "previous.duckdb"
    build_previous_release_warehouse(path)
    log: list[int] = []
    steps = (*MIGRATIONS, _recording(LATEST_VERSION + 1, log), _recording(LATEST_VERSION + 2, log))
    con = duckdb.connect(str(path))
    try:
        assert migrate(con, steps) == list(range(1, LATEST_VERSION + 3))
        assert migrate(con, steps) == []
        assert log == [LATEST_VERSION + 1, LATEST_VERSION + 2]
        assert current_version(con) == LATEST_VERSION + 2
        assert con.execute("SELECT count(*) FROM regions").fetchall() == [(1,)]  # every region NULL
    finally:
        con.close()
    # the product's own migrations no longer suffice for it
    with pytest.raises(WarehouseTooNew), warehouse.connect(path=path):
        pass


def test_a_failing_migration_leaves_the_last_complete_version(tmp_path: Path) -> None:
    def half_done(con: duckdb.DuckDBPyConnection) -> None:
        con.execute("CREATE TABLE half (x INTEGER)")
        raise RuntimeError("boom")

    con = duckdb.connect(str(tmp_path / "wh.duckdb"))
    try:
        migrate(con)
        with pytest.raises(RuntimeError, match="boom"):
            migrate(con, (*MIGRATIONS, Migration(LATEST_VERSION + 1, "fails", half_done)))
        assert current_version(con) == LATEST_VERSION
        assert "half" not in _definitions(con)
    finally:
        con.close()


def test_migrations_must_be_numbered_without_gaps() -> None:
    gap = (*MIGRATIONS, Migration(LATEST_VERSION + 2, "skips one", lambda con: None))
    with pytest.raises(ValueError, match="without gaps"):
        migrate(duckdb.connect(), gap)


def test_db_warehouse_shows_the_version_without_creating_the_file(data_dir: Path) -> None:
    runner = CliRunner()
    before = runner.invoke(app, ["db", "warehouse"])
    assert before.exit_code == 0, before.output
    assert "no warehouse file yet" in before.output and f"latest: {LATEST_VERSION}" in before.output
    assert not warehouse.warehouse_path().exists()
    warehouse.warehouse_path().parent.mkdir(parents=True, exist_ok=True)
    build_previous_release_warehouse(warehouse.warehouse_path())
    shown = runner.invoke(app, ["db", "warehouse"])
    assert f"current: 0  latest: {LATEST_VERSION}" in shown.output
    with warehouse.connect():
        pass
    assert f"current: {LATEST_VERSION}  latest" in runner.invoke(app, ["db", "warehouse"]).output
