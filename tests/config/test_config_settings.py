"""Settings come from LIEBIAN_* variables, then liebian.toml, then defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from liebian.config import Settings


def test_defaults_keep_all_state_in_one_data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIEBIAN_DATA_DIR", raising=False)
    settings = Settings()
    assert settings.sqlalchemy_url.endswith("liebian-data/liebian.db")
    assert settings.warehouse_file == Path("liebian-data") / "warehouse.duckdb"
    assert settings.timezone == "Asia/Shanghai"


def test_toml_file_then_environment_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LIEBIAN_DATA_DIR", raising=False)
    (tmp_path / "liebian.toml").write_text(
        'data_dir = "/srv/liebian"\nport = 9000\n[channel_aliases]\n"天猫" = "tmall"\n', encoding="utf-8"
    )
    settings = Settings()
    assert settings.data_dir == Path("/srv/liebian")
    assert settings.port == 9000
    assert settings.channel_aliases == {"天猫": "tmall"}
    monkeypatch.setenv("LIEBIAN_PORT", "9100")
    assert Settings().port == 9100


def test_bad_setting_names_the_field(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("LIEBIAN_ENGINE", "oracle")
    with pytest.raises(ValueError, match="engine"):
        Settings()
