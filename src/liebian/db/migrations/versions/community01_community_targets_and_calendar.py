"""community: per-group weekly-active targets, the content calendar

Revision ID: community01
Revises: costs01
Create Date: 2026-12-06 22:35:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "community01"
down_revision = "costs01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "community_group_targets",
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("target", sa.Float(), nullable=False),
        sa.Column("updated_by", sa.String(length=128), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("group_id", name=op.f("pk_community_group_targets")),
    )
    op.create_table(
        "community_calendar",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("group_id", sa.String(length=128), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("theme", sa.String(length=32), nullable=True),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_community_calendar")),
    )
    with op.batch_alter_table("community_calendar", schema=None) as batch_op:
        batch_op.create_index("ix_community_calendar_group_day", ["group_id", "day"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("community_calendar", schema=None) as batch_op:
        batch_op.drop_index("ix_community_calendar_group_day")
    op.drop_table("community_calendar")
    op.drop_table("community_group_targets")
