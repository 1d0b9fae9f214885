"""Migrations build the whole schema on SQLite and PostgreSQL, and match the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from typer.testing import CliRunner

from liebian.cli import app
from liebian.db import migrate
from liebian.db.base import Base
from liebian.db.session import get_engine


def test_upgrade_creates_every_model_table(store: str) -> None:
    migrate.import_all_models()
    tables = set(inspect(get_engine()).get_table_names())
    assert set(Base.metadata.tables) <= tables
    assert migrate.current_revision() == migrate.head_revision()


def test_migrations_match_models(store: str) -> None:
    """A model change without a migration would make the database differ from the code."""
    migrate.import_all_models()
    with get_engine().connect() as connection:
        diff = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    assert diff == []


def test_upgrade_is_idempotent_and_cli_reports_revision(data_dir) -> None:
    runner = CliRunner()
    first = runner.invoke(app, ["db", "upgrade"])
    second = runner.invoke(app, ["db", "upgrade"])
    assert first.exit_code == 0, first.output
    assert second.exit_code == 0, second.output
    assert migrate.head_revision() in second.output
    assert (data_dir / "liebian.db").exists()
