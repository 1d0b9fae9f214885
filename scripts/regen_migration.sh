#!/usr/bin/env bash
# Until the first release the schema is one initial migration, regenerated from the models.
# After a release, add new revisions with `alembic revision --autogenerate` instead.
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
rm -f src/liebian/db/migrations/versions/0001_*.py
LIEBIAN_DATA_DIR="$tmp" .venv/bin/python -c "
from alembic import command
from liebian.db.migrate import alembic_config
command.revision(alembic_config(), message='initial schema', autogenerate=True, rev_id='0001')
"
.venv/bin/ruff check -q --fix src/liebian/db/migrations/versions/ || true
.venv/bin/ruff format -q src/liebian/db/migrations/versions/
rm -rf "$tmp"
