"""Opening the warehouse: its schema version is read once per process and file state — re-opening
an unchanged, current file reads nothing and migrates nothing; any write makes it checked again."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from liebian.engine import warehouse, warehouse_migrations
from liebian.engine.warehouse_migrations import LATEST_VERSION, WarehouseTooNew


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[list[int]]:
    """What each schema check of `warehouse.connect` applied (the real migrate, recorded)."""
    done: list[list[int]] = []
    real = warehouse_migrations.migrate

    def recorded(con, *args):
        done.append(real(con, *args))
        return done[-1]

    monkeypatch.setattr(warehouse_migrations, "migrate", recorded)
    return done


def test_an_unchanged_current_warehouse_is_checked_once(tmp_path: Path, checks: list[list[int]]) -> None:
    path = tmp_path / "wh.duckdb"
    with warehouse.connect(path=path):
        pass  # created: every migration applied
    for _ in range(3):
        with warehouse.connect(read_only=True, path=path) as con:
            assert con.execute("SELECT count(*) FROM events").fetchall() == [(0,)]
    assert checks == [list(range(1, LATEST_VERSION + 1)), []]  # then found current once, not again


def test_a_written_warehouse_is_checked_again(tmp_path: Path, checks: list[list[int]]) -> None:
    path = tmp_path / "wh.duckdb"
    for _ in range(2):
        with warehouse.connect(path=path):
            pass
    with warehouse.connect(path=path) as con:
        con.execute("CREATE TABLE scratch (x INTEGER)")
    with warehouse.connect(read_only=True, path=path):
        pass
    assert checks == [list(range(1, LATEST_VERSION + 1)), [], []]


def test_a_warehouse_a_newer_release_migrated_since_is_refused(tmp_path: Path) -> None:
    """Another process (a newer liebian) writes its version into a file this process found current."""
    path = tmp_path / "wh.duckdb"
    for _ in range(2):
        with warehouse.connect(path=path):
            pass
    other = duckdb.connect(str(path))
    try:
        other.execute("INSERT INTO schema_version VALUES (?, now()::TIMESTAMP)", [LATEST_VERSION + 1])
    finally:
        other.close()
    with pytest.raises(WarehouseTooNew), warehouse.connect(read_only=True, path=path):
        pytest.fail("a newer warehouse was opened")
