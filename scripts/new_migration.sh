#!/usr/bin/env bash
# Add an Alembic revision for model changes: scripts/new_migration.sh "what changed".
# The initial schema (0001) shipped with the first landing and is never regenerated again.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 1 ] || { echo "usage: $0 \"message\"" >&2; exit 2; }
tmp=$(mktemp -d)
LIEBIAN_DATA_DIR="$tmp" .venv/bin/liebian db upgrade >/dev/null
LIEBIAN_DATA_DIR="$tmp" .venv/bin/python -c "
import sys
from alembic import command
from liebian.db.migrate import alembic_config
command.revision(alembic_config(), message=sys.argv[1], autogenerate=True)
" "$1"
.venv/bin/ruff check -q --fix src/liebian/db/migrations/versions/ || true
.venv/bin/ruff format -q src/liebian/db/migrations/versions/
rm -rf "$tmp"
