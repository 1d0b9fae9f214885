"""Alembic, driven from code: `liebian db upgrade`, the server's start-up and the tests use this."""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

import liebian
from liebian.config import get_settings
from liebian.db.session import get_engine
from liebian.lazy import lazy_import

if TYPE_CHECKING:  # the type only; the module itself is imported on first use (below)
    from alembic.config import Config

# deferred: Alembic (and SQLAlchemy with it) costs ~0.5 s of every CLI and server start-up
command = lazy_import("alembic.command")
alembic_config_module = lazy_import("alembic.config")

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


def import_all_models() -> None:
    """Import every domain's models.py so that Base.metadata knows every table."""
    for module in pkgutil.iter_modules(liebian.__path__):
        if module.ispkg:
            try:
                importlib.import_module(f"liebian.{module.name}.models")
            except ModuleNotFoundError as exc:
                if exc.name != f"liebian.{module.name}.models":
                    raise


def alembic_config(url: str | None = None) -> Config:
    config = alembic_config_module.Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", (url or get_settings().sqlalchemy_url).replace("%", "%%"))
    return config


def upgrade(url: str | None = None, revision: str = "head") -> None:
    command.upgrade(alembic_config(url), revision)


def ensure_current(url: str | None = None) -> None:
    """Upgrade only when the store is behind (a cheap check on every CLI start)."""
    if current_revision(url) != head_revision():
        upgrade(url)


def current_revision(url: str | None = None) -> str | None:
    # deferred: Alembic loads only when the store's revision is checked (start-up time)
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    # deferred: Alembic loads only when the store's revision is checked (start-up time)
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
