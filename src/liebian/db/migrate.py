"""Alembic, driven from code: `liebian db upgrade`, the server's start-up and the tests use this."""

from __future__ import annotations

import ast
import importlib
import pkgutil
from pathlib import Path
from typing import TYPE_CHECKING

from sqlalchemy import exc as sa_exc
from sqlalchemy import text

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
    """Upgrade only when the store is behind (a cheap check on every CLI and server start: the
    stored revision read with one query, the head read from the migration files; Alembic is
    imported only to upgrade)."""
    if stored_revision(url) != files_head():
        upgrade(url)


def stored_revision(url: str | None = None) -> str | None:
    """The store's revision (Alembic's alembic_version table), None for a store without one.
    Several rows (a store on several branches) read as None: Alembic then sorts it out."""
    try:
        with get_engine(url).connect() as connection:
            rows = connection.execute(text("SELECT version_num FROM alembic_version")).all()
    except (sa_exc.ProgrammingError, sa_exc.OperationalError):  # no such table: a fresh store
        return None
    return rows[0][0] if len(rows) == 1 else None


def files_head() -> str | None:
    """The head revision of the migration files, read without Alembic (start-up time): the one
    revision no other names as its down_revision; None when that is not one (Alembic decides)."""
    revisions: set[str] = set()
    parents: set[str] = set()
    for path in (MIGRATIONS_DIR / "versions").glob("*.py"):
        values = _assignments(path, ("revision", "down_revision"))
        revision = values.get("revision")
        if not isinstance(revision, str):
            return None
        revisions.add(revision)
        down = values.get("down_revision")
        parents.update(down if isinstance(down, tuple | list) else [down] if isinstance(down, str) else [])
    heads = revisions - parents
    return heads.pop() if len(heads) == 1 else None


def _assignments(path: Path, names: tuple[str, ...]) -> dict[str, object]:
    """The literal values assigned to `names` at the top of a migration file."""
    text = path.read_text(encoding="utf-8")
    # Alembic's template assigns them before upgrade(): the header alone is parsed (a tenth of the
    # file; every command and server start reads every migration file), the whole file if they are
    # not all there
    header = text.partition("\ndef ")[0]
    try:
        values = _literal_assignments(header, names)
    except SyntaxError:  # the header ends inside a statement
        values = {}
    return values if set(names) <= values.keys() else _literal_assignments(text, names)


def _literal_assignments(source: str, names: tuple[str, ...]) -> dict[str, object]:
    values: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target, value = node.targets[0], node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            target, value = node.target, node.value
        else:
            continue
        if isinstance(target, ast.Name) and target.id in names:
            try:
                values[target.id] = ast.literal_eval(value)
            except ValueError:
                return {}
    return values


def current_revision(url: str | None = None) -> str | None:
    # deferred: Alembic loads only when the store's revision is checked (start-up time)
    from alembic.runtime.migration import MigrationContext

    with get_engine(url).connect() as connection:
        return MigrationContext.configure(connection).get_current_revision()


def head_revision() -> str | None:
    # deferred: Alembic loads only when the store's revision is checked (start-up time)
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head()
