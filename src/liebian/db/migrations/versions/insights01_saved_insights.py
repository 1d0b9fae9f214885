"""saved insights and dashboards of the insight builder

Revision ID: insights01
Revises: options25_01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "insights01"
down_revision = "options25_01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "saved_insights",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_insights")),
    )
    op.create_table(
        "dashboards",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dashboards")),
    )
    op.create_table(
        "dashboard_items",
        sa.Column("dashboard_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("insight_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["dashboard_id"],
            ["dashboards.id"],
            name=op.f("fk_dashboard_items_dashboard_id_dashboards"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["insight_id"],
            ["saved_insights.id"],
            name=op.f("fk_dashboard_items_insight_id_saved_insights"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("dashboard_id", "position", name=op.f("pk_dashboard_items")),
    )
    with op.batch_alter_table("dashboard_items", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dashboard_items_insight_id"), ["insight_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dashboard_items", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dashboard_items_insight_id"))
    op.drop_table("dashboard_items")
    op.drop_table("dashboards")
    op.drop_table("saved_insights")
