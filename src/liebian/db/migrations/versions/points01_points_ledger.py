"""points ledger: points_entries (hash chain), points_head, points_lots (balance projection)

Revision ID: points01
Revises: cbeae31d9d62
Create Date: 2026-12-06 18:10:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "points01"
down_revision = "ledger01"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "points_entries",
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("delta", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.Column("source_ref", sa.String(length=128), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("lots", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("ts", sa.DateTime(), nullable=False),
        sa.Column("idempotency_key", sa.String(length=200), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("seq", name=op.f("pk_points_entries")),
        sa.UniqueConstraint("idempotency_key", name=op.f("uq_points_entries_idempotency_key")),
    )
    op.create_index(op.f("ix_points_entries_campaign_id"), "points_entries", ["campaign_id"], unique=False)
    op.create_index(op.f("ix_points_entries_person_id"), "points_entries", ["person_id"], unique=False)
    op.create_index(op.f("ix_points_entries_source_ref"), "points_entries", ["source_ref"], unique=False)
    op.create_table(
        "points_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_points_head")),
    )
    op.create_table(
        "points_lots",
        sa.Column("earn_seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("person_id", sa.BigInteger(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("remaining", sa.BigInteger(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("source_ref", sa.String(length=128), nullable=False),
        sa.Column("campaign_id", sa.String(length=64), nullable=False),
        sa.CheckConstraint(
            "remaining >= 0 AND remaining <= amount", name=op.f("ck_points_lots_remaining_in_range")
        ),
        sa.PrimaryKeyConstraint("earn_seq", name=op.f("pk_points_lots")),
    )
    op.create_index(op.f("ix_points_lots_expires_at"), "points_lots", ["expires_at"], unique=False)
    op.create_index(op.f("ix_points_lots_person_id"), "points_lots", ["person_id"], unique=False)
    op.create_index(op.f("ix_points_lots_source_ref"), "points_lots", ["source_ref"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_points_lots_source_ref"), table_name="points_lots")
    op.drop_index(op.f("ix_points_lots_person_id"), table_name="points_lots")
    op.drop_index(op.f("ix_points_lots_expires_at"), table_name="points_lots")
    op.drop_table("points_lots")
    op.drop_table("points_head")
    op.drop_index(op.f("ix_points_entries_source_ref"), table_name="points_entries")
    op.drop_index(op.f("ix_points_entries_person_id"), table_name="points_entries")
    op.drop_index(op.f("ix_points_entries_campaign_id"), table_name="points_entries")
    op.drop_table("points_entries")
