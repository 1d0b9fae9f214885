"""campaign invite visits: distinct visitors and the inviter's own identifiers per campaign

Revision ID: visits01
Revises: cbeae31d9d62
Create Date: 2026-12-06 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "visits01"
down_revision = "defaults01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "campaign_invite_visits",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("inviter_person_id", sa.BigInteger(), nullable=False),
        sa.Column("visitor_key", sa.String(length=80), nullable=False),
        sa.Column("own", sa.Boolean(), nullable=False),
        sa.Column("invite_id", sa.Integer(), nullable=True),
        sa.Column("clicks", sa.Integer(), nullable=False),
        sa.Column("visits", sa.Integer(), nullable=False),
        sa.Column("first_at", sa.DateTime(), nullable=False),
        sa.Column("last_at", sa.DateTime(), nullable=False),
        sa.Column("counted_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["campaign_id"], ["campaigns.id"], name=op.f("fk_campaign_invite_visits_campaign_id_campaigns")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_campaign_invite_visits")),
        sa.UniqueConstraint(
            "campaign_id",
            "inviter_person_id",
            "visitor_key",
            name="uq_campaign_invite_visits_visitor",
        ),
    )


def downgrade() -> None:
    op.drop_table("campaign_invite_visits")
