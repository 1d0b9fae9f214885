"""The start-up's migration check (db/migrate.py ensure_current) reads the store's revision with one
query and the head from the migration files, without Alembic: both agree with Alembic's answers."""

from __future__ import annotations

import json
from pathlib import Path

from sqlalchemy import text

from liebian.db import migrate
from liebian.db.session import get_engine
from shared_helpers import fresh_python


def test_the_files_head_is_alembics_head() -> None:
    assert migrate.files_head() == migrate.head_revision() is not None


def test_the_stored_revision_is_alembics_on_a_fresh_and_a_migrated_store(data_dir) -> None:
    assert migrate.stored_revision() is None and migrate.current_revision() is None
    migrate.ensure_current()  # a fresh store is migrated to the head
    assert migrate.stored_revision() == migrate.current_revision() == migrate.head_revision()
    with get_engine().begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'older01'"))
    assert migrate.stored_revision() == migrate.current_revision() == "older01"


def test_a_store_at_the_head_is_checked_without_alembic(data_dir: Path) -> None:
    migrate.ensure_current()
    script = (
        "import sys, json\nfrom liebian.db import migrate\nmigrate.ensure_current()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] == 'alembic')))"
    )
    lines = fresh_python(script, data_dir)
    assert json.loads(lines[-1]) == []
