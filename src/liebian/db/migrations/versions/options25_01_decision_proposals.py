"""decision proposals: campaign rules changes awaiting review

Revision ID: options25_01
Revises: community01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "options25_01"
down_revision = "community01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "decision_proposals",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("base_version", sa.Integer(), nullable=False),
        sa.Column("option", sa.String(length=32), nullable=False),
        sa.Column("source", sa.String(length=64), nullable=False),
        sa.Column("rules", sa.Text(), nullable=False),
        sa.Column("expected", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=128), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("decided_by", sa.String(length=128), nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.Column("applied_version", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_decision_proposals")),
    )
    with op.batch_alter_table("decision_proposals", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_decision_proposals_campaign_id"), ["campaign_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("decision_proposals", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_decision_proposals_campaign_id"))
    op.drop_table("decision_proposals")
