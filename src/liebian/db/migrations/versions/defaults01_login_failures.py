"""auth_login_failures: failed logins per client address and per account, in a window

Revision ID: defaults01
Revises: cbeae31d9d62
Create Date: 2026-12-06 18:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "defaults01"
down_revision = "stages01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "auth_login_failures",
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("window_start", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("key", name=op.f("pk_auth_login_failures")),
    )


def downgrade() -> None:
    op.drop_table("auth_login_failures")
