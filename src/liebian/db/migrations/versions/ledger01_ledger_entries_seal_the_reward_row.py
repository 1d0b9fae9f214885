"""ledger entries seal the reward row: ledger_entries.v and ledger_entries.reward_after

Entries written before keep v = 1 (their hash covers their own fields only) and verify as before;
new entries are v = 2 and also commit to the reward row after the entry. Nothing is re-sealed.

Revision ID: ledger01
Revises: cbeae31d9d62
Create Date: 2026-12-06 18:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "ledger01"
down_revision = "cbeae31d9d62"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.add_column(sa.Column("v", sa.Integer(), server_default="1", nullable=False))
        batch_op.add_column(sa.Column("reward_after", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries") as batch_op:
        batch_op.drop_column("reward_after")
        batch_op.drop_column("v")
