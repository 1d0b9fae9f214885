"""The data directory and every file liebian creates in it are owner-only (0700 / 0600), whatever
the umask of the shell that started it; files left readable by an older version are tightened."""

from __future__ import annotations

import csv
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from liebian.cli import app as cli_app
from liebian.config import get_settings, reset_settings_cache
from liebian.db.session import dispose_engines
from liebian.engine import warehouse
from liebian.ingest.service import import_file
from liebian.privacy import crypto


@pytest.fixture
def shell_umask():
    """A usual login shell's umask (files 0644): what liebian must not rely on."""
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def _loose(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} {stat.filemode(path.stat().st_mode)}"
        for path in [root, *root.rglob("*")]
        if path.stat().st_mode & 0o077
    ]


def test_store_warehouse_keys_and_rejects_are_created_owner_only(
    data_dir: Path, shell_umask, tmp_path
) -> None:
    reset_settings_cache()
    assert CliRunner().invoke(cli_app, ["db", "upgrade"]).exit_code == 0  # creates liebian.db
    crypto.identifier_hmac("13800138000")  # creates keys.json
    with warehouse.connect() as con:  # creates warehouse.duckdb
        con.execute("SELECT 1")
    source = tmp_path / "events.csv"
    with source.open("w", newline="") as fh:
        csv.writer(fh).writerows(
            [["event_id", "ts", "user_id", "id_type", "event", "channel"],
             ["e1", "2026-11-03 00:00:00", "o_alice", "openid", "signup", "小程序"],
             ["e2", "not a time", "o_bob", "openid", "view", "小程序"]]
        )  # fmt: skip
    result = import_file(source, "events")  # writes a rejects file
    dispose_engines()
    assert result.rejects_path is not None
    settings = get_settings()
    made = {p.name for p in settings.data_dir.rglob("*") if p.is_file()}
    assert {"liebian.db", "keys.json", "warehouse.duckdb"} <= made
    assert _loose(settings.data_dir) == []


def test_files_left_readable_by_an_older_version_are_tightened(data_dir: Path, shell_umask) -> None:
    data_dir.mkdir(parents=True)
    for name in ("liebian.db", "warehouse.duckdb", "keys.json"):
        (data_dir / name).write_bytes(b"")
        (data_dir / name).chmod(0o644)
    reset_settings_cache()
    get_settings()  # every liebian process starts here
    modes = {
        name: stat.S_IMODE((data_dir / name).stat().st_mode)
        for name in ("liebian.db", "warehouse.duckdb", "keys.json")
    }
    assert modes == {"liebian.db": 0o600, "warehouse.duckdb": 0o600, "keys.json": 0o600}
